# One image for every role: compose starts it once per ROLE (bot, app, worker) and once with `migrate`.
# Two stages: the first builds the project's wheel (runtime packages only: the sandbox and the contract
# stay out of it), the second installs the runtime lock file with its hashes, then that wheel. Neither
# the embedded servers (the `local` extra) nor the dev tools are installed; production always sets
# DATABASE_URL and REDIS_URL.

FROM python:3.11-slim AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
COPY . .
RUN pip wheel --no-deps --wheel-dir /wheels .

FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

# A fixed numeric uid/gid: Kubernetes checks runAsNonRoot against it (deploy/kubernetes sets runAsUser 10001).
RUN groupadd --system --gid 10001 app \
    && useradd --system --uid 10001 --gid app --home-dir /app --no-create-home --shell /usr/sbin/nologin app

WORKDIR /app

# Dependencies first, from the lock file alone (exact pins, every file's hash checked), so a code
# change does not reinstall them. Upgrading is `make lock-upgrade` in a checkout, never a build.
COPY requirements/runtime.txt /tmp/runtime.txt
RUN pip install --require-hashes --no-deps -r /tmp/runtime.txt \
    && rm /tmp/runtime.txt

# The project's wheel without resolving anything again; app.py is the entry point the roles run.
COPY --from=build /wheels /tmp/wheels
COPY app.py ./
RUN pip install --no-deps /tmp/wheels/*.whl \
    && rm -rf /tmp/wheels \
    && mkdir -p /app/data \
    && chown app:app /app/data

# Defaults for a container: listen on all interfaces so published ports and Prometheus reach it.
ENV ROLE=all \
    APP_HOST=0.0.0.0 \
    APP_PORT=8080 \
    METRICS_PORT=9100 \
    DATA_DIR=/app/data

USER app

EXPOSE 8080 9100

# Every role serves /healthz and /metrics on METRICS_PORT; urllib raises (exit 1) on refusal or non-2xx.
HEALTHCHECK --interval=15s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/healthz' % os.environ.get('METRICS_PORT', '9100'), timeout=4)"]

# Exec form: python is PID 1 and receives SIGTERM directly, so the supervisor can drain in-flight sends.
ENTRYPOINT ["python", "app.py"]
