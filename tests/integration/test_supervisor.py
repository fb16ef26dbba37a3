"""The supervisor as a real process: roles start, report health, and stop cleanly on SIGTERM."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import asyncpg
import pytest

from tests.ports import free_port

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DATABASE_", "REDIS_", "SANDBOX_", "ROLE"))}
    env.update(PYTHONUNBUFFERED="1", LOG_LEVEL="INFO", SANDBOX_ENABLED="0", ACCOUNT_GATEWAY="sandbox", **extra)
    return env


def _get(url: str, timeout: float = 2.0) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def _wait_http(url: str, deadline: float, proc: subprocess.Popen[bytes] | None = None) -> tuple[int, bytes]:
    last: Exception | None = None
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            out = proc.stdout.read().decode(errors="replace") if proc.stdout else ""
            raise AssertionError(f"the supervisor exited with {proc.returncode}:\n{out}")
        try:
            return _get(url)
        except OSError as exc:
            last = exc
            time.sleep(0.2)
    raise AssertionError(f"{url} never answered: {last}")


def _start(env: dict[str, str], *args: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "app.py", *args], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)


def _stop(proc: subprocess.Popen[bytes], timeout: float = 30) -> str:
    proc.send_signal(signal.SIGTERM)
    out, _ = proc.communicate(timeout=timeout)
    return out.decode(errors="replace")


def test_migrate_command_applies_migrations(empty_db_url, redis_url):
    result = subprocess.run([sys.executable, "app.py", "migrate"], cwd=ROOT, capture_output=True, timeout=60,
                            env=_env(DATABASE_URL=empty_db_url, REDIS_URL=redis_url))
    assert result.returncode == 0, result.stderr.decode()
    assert b"0001_core_schema.sql" in result.stderr


def test_app_role_serves_health_readiness_metrics_and_stops_on_sigterm(empty_db_url, redis_url):
    app_port, metrics_port = free_port(), free_port()
    proc = _start(_env(DATABASE_URL=empty_db_url, REDIS_URL=redis_url, ROLE="app", APP_PORT=str(app_port),
                       METRICS_PORT=str(metrics_port)))
    try:
        deadline = time.monotonic() + 30
        status, body = _wait_http(f"http://127.0.0.1:{app_port}/healthz", deadline, proc)
        assert status == 200 and b"ok" in body
        status, body = _wait_http(f"http://127.0.0.1:{app_port}/readyz", deadline)
        assert status == 200, body
        status, body = _wait_http(f"http://127.0.0.1:{metrics_port}/metrics", deadline)
        assert status == 200 and b'role_up{role="app"} 1.0' in body
        status, body = _wait_http(f"http://127.0.0.1:{metrics_port}/readyz", deadline)
        assert status == 200 and b'"ready"' in body  # every role's probe port answers readiness too
    finally:
        output = _stop(proc)
    assert proc.returncode == 0, output
    assert "role app stopped" in output


def test_production_start_refuses_a_missing_key(empty_db_url, redis_url):
    result = subprocess.run([sys.executable, "app.py"], cwd=ROOT, capture_output=True, timeout=60,
                            env=_env(PRODUCTION="1", DATABASE_URL=empty_db_url, REDIS_URL=redis_url,
                                     BOT_TOKEN="123:abc", TELEGRAM_API_ID="1", TELEGRAM_API_HASH="h" * 32))
    assert result.returncode == 2
    assert b"SESSION_ENCRYPTION_KEY" in result.stderr


PRODUCTION_START = {"PRODUCTION": "1", "DATABASE_URL": "postgresql://u:p@db.invalid:5432/x",
                    "REDIS_URL": "redis://cache.invalid:6379/0", "BOT_TOKEN": "123:abc", "TELEGRAM_API_ID": "1",
                    "TELEGRAM_API_HASH": "h" * 32}


@pytest.mark.parametrize(("extra", "variable"), [
    ({"SESSION_ENCRYPTION_KEY": "not-a-fernet-key", "ACCOUNT_GATEWAY": "telethon"}, "SESSION_ENCRYPTION_KEY"),
    ({"SESSION_ENCRYPTION_KEY": "k" * 44, "ACCOUNT_GATEWAY": "telethon"}, "SESSION_ENCRYPTION_KEY"),
    ({"SESSION_ENCRYPTION_KEY": "ZmVybmV0LWtleS0zMi1ieXRlcy1sb25nLWV4YWN0bHk=", "ACCOUNT_GATEWAY": "sandbox"},
     "ACCOUNT_GATEWAY"),
])
def test_production_start_refuses_by_variable_name_without_a_traceback(extra, variable):
    """Refused before any server is reached (the URLs point nowhere): exit 2, the variable named."""
    result = subprocess.run([sys.executable, "app.py"], cwd=ROOT, capture_output=True, timeout=60,
                            env={**_env(**PRODUCTION_START), **extra})
    stderr = result.stderr.decode()
    assert result.returncode == 2, stderr
    assert variable in stderr and "Traceback" not in stderr
    assert extra["SESSION_ENCRYPTION_KEY"] not in stderr


def test_embedded_default_keeps_its_data_across_restarts(tmp_path):
    """No DATABASE_URL/REDIS_URL: real servers start under DATA_DIR, stop on SIGTERM, and the data stays."""
    env = _env(DATA_DIR=str(tmp_path / "data"), ROLE="app", APP_PORT=str(free_port()), METRICS_PORT="0")
    url = f"http://127.0.0.1:{env['APP_PORT']}/readyz"

    proc = _start(env)
    try:
        status, _ = _wait_http(url, time.monotonic() + 90, proc)
        assert status == 200
        port = int((tmp_path / "data" / "pg" / "postmaster.pid").read_text().splitlines()[3])

        async def write() -> None:
            conn = await asyncpg.connect(f"postgresql://postgres@127.0.0.1:{port}/broadcast")
            await conn.execute("INSERT INTO users (user_id, first_name) VALUES (7, 'kept')")
            await conn.close()

        import asyncio

        asyncio.run(write())
    finally:
        output = _stop(proc)
    assert proc.returncode == 0, output
    assert not (tmp_path / "data" / "pg" / "postmaster.pid").exists(), "postgres left running"

    proc = _start(env)
    try:
        status, _ = _wait_http(url, time.monotonic() + 90, proc)
        assert status == 200
        port = int((tmp_path / "data" / "pg" / "postmaster.pid").read_text().splitlines()[3])

        async def read() -> str:
            conn = await asyncpg.connect(f"postgresql://postgres@127.0.0.1:{port}/broadcast")
            name = await conn.fetchval("SELECT first_name FROM users WHERE user_id = 7")
            await conn.close()
            return str(name)

        import asyncio

        assert asyncio.run(read()) == "kept"
    finally:
        output = _stop(proc)
    assert proc.returncode == 0, output


def test_interrupt_then_restart_at_once_waits_for_the_first_run_to_stop(tmp_path):
    """Ctrl-C and `make run` again at once: the second run waits until the first has stopped the embedded
    servers, then starts its own, with no traceback anywhere. The second is started before the first is
    interrupted (it waits while the first still runs), so the overlap is certain, not a matter of timing."""
    import threading

    env = _env(DATA_DIR=str(tmp_path / "data"), ROLE="app", APP_PORT=str(free_port()), METRICS_PORT="0")
    url = f"http://127.0.0.1:{env['APP_PORT']}/readyz"
    first = _start(env)
    second: subprocess.Popen[bytes] | None = None
    try:
        status, _ = _wait_http(url, time.monotonic() + 90, first)
        assert status == 200
        second = _start(env)
        lines: list[str] = []
        waiting = threading.Event()

        def read_second() -> None:
            assert second is not None and second.stdout is not None
            for raw in second.stdout:
                lines.append(raw.decode(errors="replace"))
                if "still uses DATA_DIR" in lines[-1]:
                    waiting.set()

        reader = threading.Thread(target=read_second, daemon=True)
        reader.start()
        assert waiting.wait(30), "".join(lines)
        first.send_signal(signal.SIGINT)
        first_out, _ = first.communicate(timeout=60)
        status, _ = _wait_http(url, time.monotonic() + 90, None)
        assert status == 200
        second.send_signal(signal.SIGTERM)
        second.wait(timeout=30)
        reader.join(timeout=10)
    finally:
        for proc in (first, second):
            if proc is not None and proc.poll() is None:
                proc.kill()
    first_text, second_text = first_out.decode(errors="replace"), "".join(lines)
    assert first.returncode == 0, first_text
    assert second.returncode == 0, second_text
    assert "embedded postgres started" in second_text  # its own servers, not the dying first's
    for output in (first_text, second_text):
        assert "Traceback" not in output and "ConnectionRefusedError" not in output
    server_log = tmp_path / "data" / "pg" / "server.log"
    assert not (tmp_path / "data" / "pg" / "postmaster.pid").exists(), (
        "postgres left running", second_text, server_log.read_text(errors="replace")[-3000:])


def test_a_concurrent_run_on_the_same_data_dir_is_refused_by_name(tmp_path):
    env = _env(DATA_DIR=str(tmp_path / "data"), ROLE="app", APP_PORT=str(free_port()), METRICS_PORT="0")
    first = _start(env)
    try:
        status, _ = _wait_http(f"http://127.0.0.1:{env['APP_PORT']}/readyz", time.monotonic() + 90, first)
        assert status == 200
        busy = subprocess.run([sys.executable, "app.py", "migrate"], cwd=ROOT, env=env, capture_output=True,
                              timeout=60)
    finally:
        output = _stop(first)
    assert first.returncode == 0, output
    stderr = busy.stderr.decode()
    assert busy.returncode == 2, stderr
    assert "is in use by another run" in stderr and "DATA_DIR" in stderr and "Traceback" not in stderr
