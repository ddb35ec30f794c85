"""`serve --workers N`: each worker accepts its own share of the connections (service/listen.py)."""

from __future__ import annotations

import socket
import sys
import time
from collections import Counter
from pathlib import Path

import pytest

from guidance_rules.service import listen

from .conftest import Server

pytestmark = pytest.mark.skipif(not listen.SUPPORTED, reason="SO_REUSEPORT spreads connections only on Linux")


def _workers(pid: int) -> list[int]:
    """The worker processes uvicorn's supervisor `pid` spawned (not multiprocessing's resource tracker)."""
    children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    return [int(child) for child in children if "spawn_main" in Path(f"/proc/{child}/cmdline").read_text(errors="replace")]


def _socket_inodes(pid: int) -> set[str]:
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            target = fd.readlink().as_posix()
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    return inodes


def _sockets_on(port: int, state: str) -> set[str]:
    """Inodes of the TCP sockets on local `port` in `state` (01 established, 0A listening)."""
    found = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            local_port = int(fields[1].rsplit(":", 1)[1], 16)
            if local_port == port and fields[3] == state:
                found.add(fields[9])
    return found


def _wait_until_listening(server: Server, workers: int) -> list[int]:
    """The workers, once each has a listening socket (the first to start answers /healthz alone)."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        pids = _workers(server.proc.pid)
        listening = _sockets_on(server.port, "0A")
        if len(pids) == workers and all(_socket_inodes(pid) & listening for pid in pids):
            return pids
        time.sleep(0.1)
    raise AssertionError(f"the workers did not all listen within 60 s:\n{server.output()}")


def _get(conn: socket.socket) -> bytes:
    conn.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
    return conn.recv(65536)


def test_connections_spread_over_the_workers(tmp_path: Path) -> None:
    """32 keep-alive connections opened at once, as a load generator or a proxy's pool opens them."""
    server = Server(f"sqlite:///{tmp_path}/c.sqlite3", "--insecure-no-auth", "--workers", "2")
    conns = []
    try:
        pids = _wait_until_listening(server, 2)
        conns = [socket.create_connection(("127.0.0.1", server.port), timeout=30) for _ in range(32)]
        assert all(_get(conn).startswith(b"HTTP/1.1 200") for conn in conns)
        established = _sockets_on(server.port, "01")
        per_worker = Counter({pid: len(_socket_inodes(pid) & established) for pid in pids})
        assert len(per_worker) == 2 and sum(per_worker.values()) == 32, per_worker
        # the kernel spreads by address hash: fewer than 4 of 32 on one worker has odds of about 3 in a million;
        # one socket shared by both workers gave 32 and 0, or 31 and 1
        assert min(per_worker.values()) >= 4, per_worker
    finally:
        for conn in conns:
            conn.close()
        server.stop()


def test_the_supervisor_socket_is_bound_but_does_not_listen() -> None:
    """A worker's socket is its own: pickled for a spawned worker, the socket is bound anew to the
    same address, and the supervisor's takes no connections (it never listens)."""
    import pickle

    config = listen.ReusePortConfig(app="x:y", host="127.0.0.1", port=0)
    first = config.bind_socket()
    try:
        again = pickle.loads(pickle.dumps(first))
        try:
            assert again.fileno() != first.fileno()
            assert again.getsockname() == first.getsockname()
            assert again.proto == socket.IPPROTO_TCP
            again.listen()
            probe = socket.create_connection(first.getsockname(), timeout=5)
            conn, _ = again.accept()  # the connection reached the worker's socket
            conn.close()
            probe.close()
        finally:
            again.close()
    finally:
        first.close()


def test_a_busy_port_is_an_error_naming_it(tmp_path: Path) -> None:
    import subprocess

    holder = socket.socket()
    holder.bind(("127.0.0.1", 0))
    holder.listen()
    port = holder.getsockname()[1]
    try:
        done = subprocess.run(
            [
                sys.executable,
                "-m",
                "guidance_rules",
                "serve",
                "--insecure-no-auth",
                "--workers",
                "2",
                "--port",
                str(port),
                "--db",
                f"sqlite:///{tmp_path}/c.sqlite3",
            ],
            capture_output=True,
            text=True,
            timeout=120,
        )
    finally:
        holder.close()
    assert done.returncode == 1, done
    assert f"cannot listen on 127.0.0.1:{port}" in done.stderr and "Traceback" not in done.stderr
