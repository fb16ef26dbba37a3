#!/bin/sh
# Install the queue benchmark's contenders outside the repository and the project's virtualenv:
# arq and saq want an older redis-py than the project pins, and BullMQ is a Node package.
set -eu
DEPS="${BENCH_QUEUE_DEPS:-/tmp/bench-queue-deps}"
mkdir -p "$DEPS"
python3 -m venv "$DEPS/venv"
"$DEPS/venv/bin/pip" install -q "arq==0.28.0" "saq==0.26.4" typing_extensions
cd "$DEPS" && npm install --silent "bullmq@5"
echo "contenders installed under $DEPS"
