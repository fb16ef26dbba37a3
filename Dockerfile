# One image for every role: compose starts it once per ROLE (bot, app, worker) and once with `migrate`.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

RUN groupadd --system app \
    && useradd --system --gid app --home-dir /app --no-create-home --shell /usr/sbin/nologin app

WORKDIR /app

# Dependencies first, read from pyproject.toml alone, so a code change does not reinstall them.
COPY pyproject.toml ./
RUN python -c "import tomllib; print('\n'.join(tomllib.load(open('pyproject.toml', 'rb'))['project']['dependencies']))" \
        > /tmp/requirements.txt \
    && pip install -r /tmp/requirements.txt \
    && rm /tmp/requirements.txt

COPY . .
# The project itself without dev extras; the data dir is only used if no DATABASE_URL/REDIS_URL is given.
RUN pip install --no-deps . \
    && rm -rf build ./*.egg-info \
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
