#!/bin/sh
# Install the queue benchmark's contenders outside the repository and the project's virtualenv.
# Their pins don't fit the project's environment (redis-py 8.1) nor each other:
#   venv/         arq 0.28 (redis-py < 6) and saq 0.26 (redis-py < 8): gets redis-py 5.x
#   venv-bullmq/  BullMQ for Python 3.4.4 (redis-py >= 6.2, < 9; exact pins on msgpack, semver,
#                 croniter 2.0.7): given the project's redis-py 8.1.0, so it runs on the same client
#   node_modules/ BullMQ for Node.js (informative line only)
set -eu
DEPS="${BENCH_QUEUE_DEPS:-/tmp/bench-queue-deps}"
mkdir -p "$DEPS"
python3 -m venv "$DEPS/venv"
"$DEPS/venv/bin/pip" install -q "arq==0.28.0" "saq==0.26.4" typing_extensions
python3 -m venv "$DEPS/venv-bullmq"
"$DEPS/venv-bullmq/bin/pip" install -q "bullmq==3.4.4" "redis==8.1.0"
if command -v npm >/dev/null 2>&1; then
    (cd "$DEPS" && npm install --silent "bullmq@5")
else
    echo "npm not found: the BullMQ (Node.js) line will be skipped"
fi
echo "contenders installed under $DEPS"
