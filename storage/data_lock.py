"""One owner at a time for the embedded servers under DATA_DIR.

The supervisor that starts (or adopts) the embedded PostgreSQL and Redis holds an exclusive ``flock`` on
``DATA_DIR/.owner.lock`` until it has stopped them; the kernel drops the lock when the process dies, so
a crash never leaves a stale lock behind. The file says who holds it and whether that run is still
running or already stopping: a second start waits for a stopping owner to finish (Ctrl-C, then
``make run`` again at once), waits a few seconds for a running one (it may have just been told to
stop), and then refuses, by name, while another run is still using DATA_DIR.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import IO

from config.settings import SettingsError

log = logging.getLogger(__name__)

LOCK_FILE = ".owner.lock"
RUNNING, STOPPING = "running", "stopping"


class DataDirBusy(SettingsError):
    """Another run still uses DATA_DIR (a configuration matter: exit 2 with this message, no traceback)."""


class DataDirLock:
    """The exclusive ownership of ``data_dir``'s embedded servers by this process."""

    def __init__(self, data_dir: Path, *, busy_wait: float = 10.0, stop_wait: float = 60.0, poll: float = 0.1,
                 clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        self.path = data_dir / LOCK_FILE
        self.busy_wait = busy_wait  # a running owner may be about to stop (Ctrl-C just pressed)
        self.stop_wait = stop_wait  # a stopping owner is waited for until it has stopped its servers
        self.poll = poll
        self.clock = clock
        self.sleep = sleep
        self._file: IO[str] | None = None

    @property
    def held(self) -> bool:
        return self._file is not None

    def holder(self) -> dict[str, object]:
        """What the lock file says about its holder (``{}`` when unreadable or empty)."""
        try:
            data = json.loads(self.path.read_text(encoding="utf-8") or "{}")
        except (OSError, ValueError):
            return {}
        return data if isinstance(data, dict) else {}

    def acquire(self) -> None:
        """Take the lock; wait while its holder is stopping, refuse while it is running."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        handle = open(self.path, "a+", encoding="utf-8")  # noqa: SIM115 - held open as the lock itself
        started = self.clock()
        reported = ""
        try:
            while True:
                try:
                    fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    holder = self.holder()
                    pid, state = holder.get("pid", "?"), str(holder.get("state", RUNNING))
                    if state != reported:
                        reported = state
                        log.info("another run (pid %s, %s) still uses DATA_DIR %s; waiting for it to stop",
                                 pid, state, self.path.parent)
                    waited = self.clock() - started
                    if state == STOPPING and waited >= self.stop_wait:
                        raise DataDirBusy(
                            f"the previous run (pid {pid}) did not finish stopping the embedded servers "
                            f"under DATA_DIR {self.path.parent} within {self.stop_wait:.0f}s; "
                            "check it, then start again"
                        ) from None
                    if state != STOPPING and waited >= self.busy_wait:
                        raise DataDirBusy(
                            f"DATA_DIR {self.path.parent} is in use by another run (pid {pid}); "
                            "stop it first, or set another DATA_DIR"
                        ) from None
                    self.sleep(self.poll)
        except BaseException:
            handle.close()
            raise
        self._file = handle
        self._write(RUNNING)

    def stopping(self) -> None:
        """Tell a waiting second start that this run is stopping its servers now."""
        if self._file is not None:
            self._write(STOPPING)

    def release(self) -> None:
        if self._file is None:
            return
        with contextlib.suppress(OSError):
            self._file.truncate(0)
        fcntl.flock(self._file.fileno(), fcntl.LOCK_UN)
        self._file.close()
        self._file = None

    def _write(self, state: str) -> None:
        assert self._file is not None
        self._file.seek(0)
        self._file.truncate(0)
        self._file.write(json.dumps({"pid": os.getpid(), "state": state}))
        self._file.flush()
