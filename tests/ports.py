"""Ports the tests choose for servers they start themselves.

``bind(0)`` then close then hand the number to a server is a race: until that server binds it, the
kernel may give the same port to anyone who binds port 0 (another xdist worker's sandbox, PostgreSQL,
a Bot API stub), and the test then talks to a stranger (a 404 where ``/healthz`` should be). The
ports here come from below the kernel's ephemeral range, which port-0 binds never use, and each
xdist worker has its own slice of them, walked in turn, so two workers (or two calls in one) never
pick the same port.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator

FIRST, SLICE = 20_000, 2_000  # below the default ephemeral range (32768-60999): 6 slices of 2,000


def _ephemeral_floor() -> int:
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range", encoding="ascii") as fh:
            return int(fh.read().split()[0])
    except (OSError, ValueError, IndexError):
        return 32_768


def _slice() -> range:
    worker = os.environ.get("PYTEST_XDIST_WORKER", "")
    index = int(worker[2:]) + 1 if worker.startswith("gw") and worker[2:].isdigit() else 0
    start = FIRST + (index % 6) * SLICE
    stop = min(start + SLICE, _ephemeral_floor())
    if stop - start < 100:  # a machine whose ephemeral range starts low: fall back to the kernel's choice
        return range(0)
    return range(start, stop)


class _Walk:
    """This process's slice, walked in turn from an offset (two runs of the suite on one machine start apart)."""

    def __init__(self, ports: range) -> None:
        self.ports = ports
        self.next = os.getpid() % len(ports) if ports else 0

    def take(self, span: int) -> Iterator[int]:
        """First ports of ``span`` consecutive ones, each block handed out once per lap."""
        for _ in range(len(self.ports)):
            if self.next + span > len(self.ports):
                self.next = 0
            first = self.ports[self.next]
            self.next += span
            yield first


_walk = _Walk(_slice())


def _bindable(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def free_port(span: int = 1) -> int:
    """A port free on 127.0.0.1 now that neither the kernel nor another test worker will hand out.

    ``span``: the ports after it are free and kept out of later answers too, for a server that also
    binds the next ones (the sandbox's MTProto endpoint puts data centre 4 on its port + 1).
    """
    for first in _walk.take(span):
        if all(_bindable(port) for port in range(first, first + span)):
            return first
    if span > 1:
        raise RuntimeError(f"no {span} consecutive free ports in {_walk.ports}")
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])
