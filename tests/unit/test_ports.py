"""The ports tests choose for their own servers (tests/ports.py): never one the kernel hands to a bind(0),
never one another xdist worker or an earlier call got, and a span kept whole."""

from __future__ import annotations

import socket

import pytest

from tests import ports


def test_ports_are_below_the_ephemeral_range_and_distinct() -> None:
    taken = [ports.free_port() for _ in range(50)]
    assert len(set(taken)) == 50
    assert all(ports.FIRST <= port < ports._ephemeral_floor() for port in taken)


def test_a_span_keeps_the_next_port_out_of_later_answers() -> None:
    first = ports.free_port(span=2)
    later = [ports.free_port() for _ in range(20)]
    assert first not in later and first + 1 not in later


def test_a_port_someone_holds_is_skipped() -> None:
    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        held.listen()
        blocked = held.getsockname()[1]
        walk = ports._Walk(range(blocked, blocked + 8))
        walk.next = 0  # the held port comes first
        saved, ports._walk = ports._walk, walk
        try:
            got = ports.free_port()
        finally:
            ports._walk = saved
    assert blocked < got < blocked + 8


@pytest.mark.parametrize(("worker", "index"), [("", 0), ("gw0", 1), ("gw2", 3)])
def test_each_worker_has_its_own_slice(monkeypatch: pytest.MonkeyPatch, worker: str, index: int) -> None:
    monkeypatch.setenv("PYTEST_XDIST_WORKER", worker)
    assert ports._slice()[0] == ports.FIRST + index * ports.SLICE
