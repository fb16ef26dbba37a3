"""storage.data_lock: one owner of DATA_DIR's embedded servers at a time (flock, released on exit)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from config.settings import SettingsError
from storage.data_lock import LOCK_FILE, DataDirBusy, DataDirLock


class FakeTime:
    """The lock's clock and sleep: sleeping advances the clock and may run a callback (the other owner)."""

    def __init__(self) -> None:
        self.now = 0.0
        self.on_sleep: list[object] = []

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds
        for callback in list(self.on_sleep):
            callback(self.now)  # type: ignore[operator]


def test_a_second_owner_is_refused_while_the_first_runs(tmp_path: Path) -> None:
    first = DataDirLock(tmp_path)
    first.acquire()
    assert json.loads((tmp_path / LOCK_FILE).read_text())["state"] == "running"
    fake = FakeTime()
    second = DataDirLock(tmp_path, busy_wait=10, poll=1, clock=fake.clock, sleep=fake.sleep)
    with pytest.raises(DataDirBusy) as caught:
        second.acquire()
    assert fake.now == 10
    assert isinstance(caught.value, SettingsError)  # the supervisor exits 2 with the message, no traceback
    assert "DATA_DIR" in str(caught.value) and "another run" in str(caught.value)
    assert not second.held
    first.release()
    second.acquire()
    assert second.held
    second.release()


def test_a_second_start_waits_for_a_stopping_owner(tmp_path: Path) -> None:
    first = DataDirLock(tmp_path)
    first.acquire()
    first.stopping()
    fake = FakeTime()
    fake.on_sleep.append(lambda now: first.release() if now >= 2.0 else None)
    second = DataDirLock(tmp_path, stop_wait=60, poll=0.5, clock=fake.clock, sleep=fake.sleep)
    second.acquire()
    assert second.held and fake.now == 2.0
    assert json.loads((tmp_path / LOCK_FILE).read_text())["state"] == "running"
    second.release()


def test_a_stopping_owner_that_never_finishes_is_reported(tmp_path: Path) -> None:
    first = DataDirLock(tmp_path)
    first.acquire()
    first.stopping()
    fake = FakeTime()
    second = DataDirLock(tmp_path, stop_wait=10, poll=1, clock=fake.clock, sleep=fake.sleep)
    with pytest.raises(DataDirBusy, match="did not finish stopping"):
        second.acquire()
    assert fake.now == 10
    first.release()


def test_release_is_idempotent_and_a_fresh_lock_file_is_fine(tmp_path: Path) -> None:
    lock = DataDirLock(tmp_path / "new" / "dir")
    lock.release()
    lock.acquire()
    lock.release()
    lock.release()
    assert (tmp_path / "new" / "dir" / LOCK_FILE).read_text() == ""


def test_a_running_owner_that_stops_within_the_grace_is_waited_for(tmp_path: Path) -> None:
    first = DataDirLock(tmp_path)
    first.acquire()
    fake = FakeTime()
    fake.on_sleep.append(lambda now: first.stopping() if now >= 3 else None)  # Ctrl-C reaches it at 3 s
    fake.on_sleep.append(lambda now: first.release() if now >= 30 else None)  # its servers stop at 30 s
    second = DataDirLock(tmp_path, busy_wait=10, stop_wait=60, poll=1, clock=fake.clock, sleep=fake.sleep)
    second.acquire()
    assert second.held and fake.now == 30
    second.release()
