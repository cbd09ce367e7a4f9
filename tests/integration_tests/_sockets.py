"""Which client sockets this process holds open to a given server port.

Leak tests count these, never every file descriptor of the process: the in-process server
(``LocalServer`` runs in a thread here) has its own accepted sockets, which come and go with
keep-alive timeouts and would make a process-wide count fail without a leak, and hide one.

A socket counts when it is a TCP socket of this process whose *peer* is ``127.0.0.1:port``
(the server's accepted sockets have that address as their *local* end instead), in any state:
a socket the server has already closed (CLOSE_WAIT) is still a descriptor the client leaks.
Each is identified by its local (ephemeral) port, unique while it is open, so a set
difference says which sockets appeared between two points.
"""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["client_sockets"]


def client_sockets(port: int, host: str = "127.0.0.1") -> set[int]:
    """Local ports of this process's open TCP sockets connected to ``host:port``.

    Uses psutil when installed, else ``/proc`` (Linux).

    Args:
        port: The server's port.
        host: The server's address.

    Returns:
        The local port of each such socket.
    """
    try:
        import psutil
    except ImportError:  # pragma: no cover - psutil comes with the test dependencies
        return _from_proc(port, host)
    return {
        c.laddr.port
        for c in psutil.Process().net_connections(kind="tcp")
        if c.raddr and c.raddr.ip == host and c.raddr.port == port
    }


def _from_proc(port: int, host: str) -> set[int]:
    inodes = set()
    for fd in os.listdir("/proc/self/fd"):
        try:
            target = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:  # closed meanwhile
            continue
        if target.startswith("socket:["):
            inodes.add(target[len("socket:[") : -1])
    a, b, c, d = (int(x) for x in host.split("."))
    want = f"{d:02X}{c:02X}{b:02X}{a:02X}:{port:04X}"  # /proc/net/tcp: little-endian IPv4
    found = set()
    for line in Path("/proc/self/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        local, remote, inode = fields[1], fields[2], fields[9]
        if remote == want and inode in inodes:
            found.add(int(local.split(":")[1], 16))
    return found
