"""Readiness tells whether a record can be written now, and the service recovers by itself
once it can again (issue 20, point 6)."""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from .conftest import Server
from .fhir_examples import SCT, coding, hook_request, injection

SELECT = "/cds-services/guidance-rules-order-select"


@contextmanager
def read_only(path: Path) -> Iterator[None]:
    """The file cannot be written, also by root (who ignores file modes): immutable while inside."""
    if os.geteuid() == 0:
        if shutil.which("chattr") is None or subprocess.run(["chattr", "+i", str(path)], capture_output=True).returncode:
            pytest.skip("running as root without chattr +i on this file system: cannot make the database read-only")
        try:
            yield
        finally:
            subprocess.run(["chattr", "-i", str(path)], check=True)
    else:
        path.chmod(0o444)
        try:
            yield
        finally:
            path.chmod(0o644)


def order(srv: Server) -> Any:
    return srv.post(SELECT, hook_request(injection([coding(SCT, "24136001")])))


def assert_unavailable(srv: Server, fragment: str) -> None:
    ready = srv.get("/readyz")
    assert ready.status_code == 503 and fragment in ready.json()["database"], ready.text
    response = order(srv)
    assert response.status_code == 503 and "cards" not in response.json(), response.text


def make_record(db: Path) -> None:
    """A record on disk with its write-ahead log folded in, as a stopped service leaves it."""
    srv = Server(f"sqlite:///{db}", "--insecure-no-auth")
    srv.stop()
    with sqlite3.connect(db) as conn:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")


def test_a_read_only_database_is_not_ready_and_recovers_without_a_restart(tmp_path: Path) -> None:
    db = tmp_path / "c.sqlite3"
    make_record(db)
    with read_only(db):
        srv = Server(f"sqlite:///{db}", "--insecure-no-auth")
        try:
            assert_unavailable(srv, "readonly")
        except BaseException:
            srv.stop()
            raise
    try:
        assert srv.get("/readyz").status_code == 200
        assert order(srv).status_code == 200
    finally:
        srv.stop()


def test_a_removed_database_file_is_detected(tmp_path: Path) -> None:
    db = tmp_path / "c.sqlite3"
    srv = Server(f"sqlite:///{db}", "--insecure-no-auth")
    try:
        assert order(srv).status_code == 200
        for suffix in ("", "-wal", "-shm"):
            Path(f"{db}{suffix}").unlink(missing_ok=True)
        assert_unavailable(srv, "removed")
        assert not db.exists()  # not made anew, empty, for records to go to
    finally:
        srv.stop()


def test_a_replaced_database_file_is_detected(tmp_path: Path) -> None:
    db, other = tmp_path / "c.sqlite3", tmp_path / "other.sqlite3"
    make_record(other)
    srv = Server(f"sqlite:///{db}", "--insecure-no-auth")
    try:
        assert order(srv).status_code == 200
        other.replace(db)
        assert_unavailable(srv, "replaced")
        # The replaced file alone: beside it lies the old file's write-ahead log (c.sqlite3-wal, holding
        # the first order's record), which SQLite would replay into any file opened at that path.
        alone = tmp_path / "alone" / "c.sqlite3"
        alone.parent.mkdir()
        shutil.copyfile(db, alone)
        with sqlite3.connect(alone) as conn:
            assert conn.execute("SELECT count(*) FROM consultations").fetchone()[0] == 0  # nothing written to either
    finally:
        srv.stop()
