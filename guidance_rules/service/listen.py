"""One listening socket per worker process, so the kernel spreads connections over the workers.

uvicorn's `--workers N` binds one socket in the supervisor and hands every worker the same one:
the workers then race to accept from one queue, and a keep-alive client's connections all land
on whichever worker was awake (measured: 31 of 32 connections on one of two workers, the other
worker idle while requests queued for seconds). On Linux, sockets bound with SO_REUSEPORT form a
group and the kernel spreads new connections over the group's members by their address hash.

So the supervisor's socket pickles, for a worker started by `spawn`, not as a copy of its file
descriptor but as "bind a socket of your own to this address": each worker listens on its own
member of the group. The supervisor's socket is bound (it holds the port and reports a busy one
at start) but never listens, so it takes no connections. Workers the supervisor restarts get
their own socket the same way. Where SO_REUSEPORT is missing, uvicorn's shared socket is used.

The sockets are created as TCP explicitly (IPPROTO_TCP, not uvicorn's 0), which asyncio needs to
turn off Nagle's delay on accepted connections.
"""

from __future__ import annotations

import socket
import sys
from typing import Any

import uvicorn

# Linux spreads connections over a SO_REUSEPORT group; macOS and the BSDs accept the option but
# give every connection to one member
SUPPORTED = sys.platform == "linux" and hasattr(socket, "SO_REUSEPORT")


def _listener(family: int, address: tuple[Any, ...]) -> socket.socket:
    sock = ReusePortSocket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.bind(address)
    except OSError:
        sock.close()
        raise
    sock.set_inheritable(True)
    return sock


class ReusePortSocket(socket.socket):
    """A bound socket that a spawned worker re-creates as its own member of the port's group."""

    def __reduce__(self) -> tuple[Any, ...]:
        return (_listener, (self.family, self.getsockname()))


class ReusePortConfig(uvicorn.Config):
    """uvicorn's configuration with the supervisor's socket bound as a `ReusePortSocket`."""

    def bind_socket(self) -> socket.socket:
        if not SUPPORTED or self.uds is not None or self.fd is not None:
            return super().bind_socket()
        family = socket.AF_INET6 if self.host and ":" in self.host else socket.AF_INET
        return _listener(family, (self.host, self.port))


def run(workers: int, **options: Any) -> None:
    """Serve as `uvicorn.run` does, one listening socket per worker when there are several."""
    config = ReusePortConfig(workers=workers, **options)
    if workers > 1:
        from uvicorn.supervisors import Multiprocess

        Multiprocess(config, sockets=[config.bind_socket()]).run()
    else:
        uvicorn.Server(config).run()
