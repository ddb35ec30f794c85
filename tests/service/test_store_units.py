"""The consultation store in-process (issue 24: most store tests drove a `serve` subprocess, which
no planted bug reaches): every field kept and read back, the report key, the replay table, the
report's rows, readiness, and each failure named. SQLite in tmp_path; PostgreSQL (the throwaway
cluster) where the database makes the difference."""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
import sqlite3
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("sqlalchemy", reason="the service extra is not installed (pip install -e '.[service]')")

from sqlalchemy import insert, select, text
from sqlalchemy.exc import IntegrityError, OperationalError

from guidance_rules.service import store as store_module
from guidance_rules.service.errors import NoRecord, NotFound, StoreUnavailable
from guidance_rules.service.store import Consultation, Store, feedback, normalise_url, redact, report_key, tokens

from .conftest import empty_postgres_database

T0 = dt.datetime(2026, 3, 4, 5, 6, 7, tzinfo=dt.UTC)
ISS = "https://ehr.example.org"


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return tmp_path / "record.sqlite3"


@pytest.fixture
def store(db: Path) -> Iterator[Store]:
    opened = Store(f"sqlite:///{db}")
    yield opened
    opened.close()


@pytest.fixture
def pg_store(postgres_url: str) -> Iterator[Store]:
    """A record on a server whose sessions run in another time zone than UTC (instants come back with +05:30)."""
    import psycopg

    with empty_postgres_database(postgres_url) as url:
        with psycopg.connect(postgres_url, autocommit=True) as admin:
            admin.execute(f"ALTER DATABASE {url.rsplit('/', 1)[1]} SET timezone = 'Asia/Kolkata'")
        opened = Store(url)
        yield opened
        opened.close()


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> list[dt.datetime]:
    """The store's clock, set by the test: now() is the last instant in the list."""
    times = [T0]
    monkeypatch.setattr(store_module, "now", lambda: times[-1])
    return times


def row(cid: str | None = None, **changes: Any) -> Consultation:
    fields: dict[str, Any] = {
        "id": cid or str(uuid.uuid4()),
        "service_id": "guidance-rules-order-sign",
        "hook": "order-sign",
        "hook_instance": "hook-instance-7",
        "patient_hash": "ab" * 32,
        "order_ref": "ServiceRequest/inj-9",
        "status": "recommended",
        "site": "glenohumeral",
        "case": {"site": "glenohumeral", "injectate": "corticosteroid", "anatomy_variance": ["obesity"]},
        "modality": "ultrasound",
        "ordered_guidance": "landmark",
        "indicator": "warning",
        "ratings": {"ultrasound": "usually_appropriate", "landmark": "may_be_appropriate"},
        "rules": ["US-DEFAULT", "LU-VARIANCE"],
        "problems": ["a problem"],
        "ruleset_version": "7",
        "ruleset_digest": "sha256:feed",
    }
    fields.update(changes)
    return Consultation(**fields)


def item(card: str, outcome: str = "overridden", code: str | None = "clinical-judgement", **more: Any) -> dict[str, Any]:
    return {"consultation_id": card, "outcome": outcome, "override_code": code, "outcome_at": T0, **more}


# --- URLs and opening -------------------------------------------------------------------------


def test_a_postgresql_url_means_psycopg_3() -> None:
    assert normalise_url("postgresql://gr@db.example:5433/rec") == "postgresql+psycopg://gr@db.example:5433/rec"
    assert normalise_url("postgres://gr@db.example/rec") == "postgresql+psycopg://gr@db.example/rec"
    for kept in ("postgresql+psycopg://gr@h/rec", "sqlite:///c.sqlite3", "mysql://postgresql://x"):
        assert normalise_url(kept) == kept


def test_a_url_is_shown_without_its_password() -> None:
    assert redact("postgresql+psycopg://gr:s3cret@db.example/rec") == "postgresql+psycopg://gr:***@db.example/rec"
    with pytest.raises(StoreUnavailable) as refused:
        Store("postgresql://gr:s3cret@127.0.0.1:1/rec")  # nothing listens on port 1
    assert refused.value.message.startswith("cannot open the consultation database postgresql+psycopg://gr:***@127.0.0.1:1/rec: ")
    assert "s3cret" not in refused.value.message


def test_a_database_that_cannot_be_opened_is_named(tmp_path: Path) -> None:
    missing = tmp_path / "no" / "such" / "folder" / "c.sqlite3"
    with pytest.raises(StoreUnavailable) as refused:
        Store(f"sqlite:///{missing}")
    assert refused.value.message == f"cannot open the consultation database sqlite:///{missing}: unable to open database file"
    with pytest.raises(StoreUnavailable, match="cannot open the consultation database mysql://gr@h/rec: No module named"):
        Store("mysql://gr@h/rec")  # its driver is not installed


def test_a_reader_refuses_what_holds_no_record(tmp_path: Path) -> None:
    """`create=False` (the report): a mistyped path is named, never created and read as zeros."""
    typo = tmp_path / "typo.sqlite3"
    with pytest.raises(NoRecord) as refused:
        Store(f"sqlite:///{typo}", create=False)
    assert refused.value.message == f"no consultation database at sqlite:///{typo}: no such file"
    assert not typo.exists()
    for nowhere in ("sqlite://", "sqlite:///:memory:"):
        with pytest.raises(NoRecord, match="no such file"):
            Store(nowhere, create=False)
    other = tmp_path / "other.sqlite3"
    with sqlite3.connect(other) as conn:
        conn.execute("CREATE TABLE feedback (x)")
    with pytest.raises(NoRecord) as refused:
        Store(f"sqlite:///{other}", create=False)
    assert refused.value.message == f"sqlite:///{other} holds no consultation record (no table consultations, jwt_seen)"


def test_a_reader_never_takes_memory_for_a_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """sqlite:///:memory: is an empty database in memory, also where a file of that name lies."""
    monkeypatch.chdir(tmp_path)
    Store(f"sqlite:///{tmp_path / ':memory:'}").close()  # a real record in a file named ':memory:'
    with pytest.raises(NoRecord, match="no such file"):
        Store("sqlite:///:memory:", create=False)


def test_a_reader_opens_a_record_as_it_is(store: Store, db: Path) -> None:
    store.add_consultations([row("c-1")])
    reader = Store(f"sqlite:///{db}", create=False)
    try:
        assert [r["id"] for r in reader.rows()] == ["c-1"]
    finally:
        reader.close()


def test_databases_without_a_file_open_and_are_never_checked_for_one(tmp_path: Path) -> None:
    """In memory, or a SQLite URI: nothing on disk to compare against (no FileNotFoundError)."""
    for url in ("sqlite://", "sqlite:///:memory:", f"sqlite:///file:{tmp_path}/uri.sqlite3?uri=true"):
        opened = Store(url)
        try:
            opened.add_consultations([row("c-1")])
            opened.ping()
            assert opened.consultation("c-1")["site"] == "glenohumeral"
        finally:
            opened.close()


def test_sqlite_connections_wait_for_a_lock_and_enforce_the_schema(store: Store) -> None:
    with store.engine.connect() as conn:
        settings = {
            p: conn.exec_driver_sql(f"PRAGMA {p}").scalar() for p in ("journal_mode", "synchronous", "foreign_keys", "busy_timeout")
        }
    assert settings == {"journal_mode": "wal", "synchronous": 1, "foreign_keys": 1, "busy_timeout": 10_000}
    with pytest.raises(IntegrityError), store.engine.begin() as conn:  # feedback for no consultation: refused by the database too
        conn.execute(insert(feedback), {"consultation_id": "nope", "outcome": "accepted", "received_at": T0})


def test_one_store_serves_every_thread(store: Store) -> None:
    store.add_consultations([row("c-1")])
    seen: list[Any] = []
    worker = threading.Thread(target=lambda: seen.append(store.cards({"c-1"})))
    worker.start()
    worker.join()
    assert seen == [{"c-1": {"id": "c-1", "service_id": "guidance-rules-order-sign", "status": "recommended", "modality": "ultrasound"}}]


def test_the_store_clock_is_utc() -> None:
    assert store_module.now().utcoffset() == dt.timedelta(0)


# --- what is kept -----------------------------------------------------------------------------


def test_every_field_of_a_consultation_is_kept_and_read_back(store: Store, clock: list[dt.datetime]) -> None:
    store.add_consultations([row("c-1"), row("c-2", case=None, ratings=None, site=None, modality=None, status="unreadable")])
    expected = {
        "id": "c-1",
        "created_at": "2026-03-04T05:06:07+00:00",
        "service_id": "guidance-rules-order-sign",
        "hook": "order-sign",
        "hook_instance": "hook-instance-7",
        "patient_hash": "ab" * 32,
        "order_ref": "ServiceRequest/inj-9",
        "status": "recommended",
        "site": "glenohumeral",
        "case": {"site": "glenohumeral", "injectate": "corticosteroid", "anatomy_variance": ["obesity"]},
        "modality": "ultrasound",
        "ordered_guidance": "landmark",
        "indicator": "warning",
        "ratings": {"ultrasound": "usually_appropriate", "landmark": "may_be_appropriate"},
        "rules": ["US-DEFAULT", "LU-VARIANCE"],
        "problems": ["a problem"],
        "ruleset_version": "7",
        "ruleset_digest": "sha256:feed",
        "feedback": [],
    }
    assert store.consultation("c-1") == expected
    unreadable = store.consultation("c-2")
    assert (unreadable["case"], unreadable["ratings"], unreadable["site"], unreadable["status"]) == (None, None, None, "unreadable")
    assert store.cards({"c-1", "c-2", "c-3"}) == {
        "c-1": {"id": "c-1", "service_id": "guidance-rules-order-sign", "status": "recommended", "modality": "ultrasound"},
        "c-2": {"id": "c-2", "service_id": "guidance-rules-order-sign", "status": "unreadable", "modality": None},
    }


def test_the_record_holds_canonical_json_and_sql_null(store: Store) -> None:
    """The same case is the same text in the record (keys sorted), and a consultation without a
    case or ratings holds SQL NULL there, not the JSON text null (SQL over the record can tell)."""
    store.add_consultations([row("c-1"), row("c-2", case=None, ratings=None)])
    with store.engine.connect() as conn:
        stored = conn.execute(text("SELECT case_json, ratings_json FROM consultations ORDER BY id")).all()
    assert stored == [
        (
            '{"anatomy_variance": ["obesity"], "injectate": "corticosteroid", "site": "glenohumeral"}',
            '{"landmark": "may_be_appropriate", "ultrasound": "usually_appropriate"}',
        ),
        (None, None),
    ]


def test_no_rows_is_no_write(store: Store) -> None:
    store.add_consultations([])
    assert list(store.rows()) == []


def test_feedback_is_kept_with_every_field_in_the_order_received(store: Store, clock: list[dt.datetime]) -> None:
    store.add_consultations([row("c-1")])
    clock.append(T0 + dt.timedelta(minutes=1))
    first = item("c-1", override_display="Clinical judgement", user_comment="obese", accepted_suggestions_json=json.dumps(["s1"]))
    second = item("c-1", "accepted", None, outcome_at=T0 + dt.timedelta(seconds=1))
    assert store.add_feedback([first, second]) == [first, second]
    assert store.consultation("c-1")["feedback"] == [
        {
            "id": 1,
            "consultation_id": "c-1",
            "outcome": "overridden",
            "override_code": "clinical-judgement",
            "override_display": "Clinical judgement",
            "user_comment": "obese",
            "accepted_suggestions": ["s1"],
            "outcome_at": "2026-03-04T05:06:07+00:00",
            "received_at": "2026-03-04T05:07:07+00:00",
            "report_key": report_key(first),
        },
        {
            "id": 2,
            "consultation_id": "c-1",
            "outcome": "accepted",
            "override_code": None,
            "override_display": None,
            "user_comment": None,
            "accepted_suggestions": None,
            "outcome_at": "2026-03-04T05:06:08+00:00",
            "received_at": "2026-03-04T05:07:07+00:00",
            "report_key": report_key(second),
        },
    ]
    third = item("c-1", "accepted", None, outcome_at=T0 + dt.timedelta(seconds=2))
    assert store.add_feedback([second, third]) == [third]  # only the new one is returned


def test_feedback_naming_unknown_cards_names_them_all_and_stores_nothing(store: Store) -> None:
    store.add_consultations([row("c-1")])
    with pytest.raises(NotFound) as refused:
        store.add_feedback([item("c-1"), item("z-9"), item("a-0")])
    assert refused.value.message == "no consultation with card uuid a-0, z-9; feedback is accepted only for cards this service returned"
    assert store.consultation("c-1")["feedback"] == []


def test_a_patient_is_kept_only_as_a_keyed_hash(db: Path) -> None:
    keyed = Store(f"sqlite:///{db}", patient_key=b"k1")
    try:
        assert keyed.patient_hash("1288992") == hmac.new(b"k1", b"1288992", hashlib.sha256).hexdigest()
        assert keyed.patient_hash("1288992") != keyed.patient_hash("1288993")
        assert keyed.patient_hash(None) is None and keyed.patient_hash("") is None
    finally:
        keyed.close()
    unkeyed = Store(f"sqlite:///{db}")
    try:
        assert unkeyed.patient_hash("1288992") is None  # no key configured: nothing about the patient is kept
    finally:
        unkeyed.close()


# --- the report key -----------------------------------------------------------------------------


def test_the_report_key_is_the_stored_one() -> None:
    """Keys already in a record must match the retries a newer version receives: the key is the
    SHA-256 of the JSON of card, outcome, reason and the UTC time without its offset."""
    plus_one = dt.timezone(dt.timedelta(hours=1))
    sent = {"consultation_id": "c-1", "outcome": "overridden", "override_code": "clinical-judgement",
            "outcome_at": dt.datetime(2026, 1, 2, 4, 4, 5, tzinfo=plus_one)}  # fmt: skip
    parts = ["c-1", "overridden", "clinical-judgement", "2026-01-02T03:04:05"]
    assert report_key(sent) == hashlib.sha256(json.dumps(parts).encode()).hexdigest()
    assert report_key({**sent, "outcome_at": dt.datetime(2026, 1, 2, 3, 4, 5)}) == report_key(sent)  # SQLite gives it back without offset
    untimed = {"consultation_id": "c-1", "outcome": "accepted"}
    assert report_key(untimed) == hashlib.sha256(json.dumps(["c-1", "accepted", None, None]).encode()).hexdigest()


def test_the_report_key_does_not_depend_on_the_machine_s_time_zone(monkeypatch: pytest.MonkeyPatch) -> None:
    sent = item("c-1")
    in_utc = report_key(sent)
    monkeypatch.setenv("TZ", "America/New_York")
    time.tzset()
    try:
        assert report_key(sent) == in_utc
    finally:
        monkeypatch.undo()
        time.tzset()


@pytest.mark.parametrize(
    "change",
    [
        {"consultation_id": "c-2"},
        {"outcome": "accepted"},
        {"override_code": "patient-preference"},
        {"outcome_at": T0 + dt.timedelta(seconds=1)},
        {"outcome_at": None},
    ],
)
def test_each_part_of_a_report_tells_reports_apart(change: dict[str, Any]) -> None:
    assert report_key({**item("c-1"), **change}) != report_key(item("c-1"))


# --- the replay table ---------------------------------------------------------------------------


def test_a_token_id_is_remembered_per_issuer(store: Store, clock: list[dt.datetime]) -> None:
    later = T0 + dt.timedelta(minutes=5)
    assert store.remember_token(ISS, "j1", later) is True
    assert store.remember_token(ISS, "j1", later) is False
    assert store.remember_token(ISS, "j2", later) is True
    assert store.remember_token("https://other.example", "j1", later) is True


def test_token_ids_are_forgotten_ten_minutes_after_they_expire(store: Store, clock: list[dt.datetime]) -> None:
    ten = dt.timedelta(minutes=10)
    for jti, expired in [("long-gone", ten + dt.timedelta(seconds=30)), ("edge", ten), ("recent", ten - dt.timedelta(seconds=30))]:
        assert store.remember_token(ISS, jti, T0 - expired)
    assert store.remember_token(ISS, "fresh", T0 + dt.timedelta(minutes=5))  # prunes what expired more than ten minutes ago
    with store.engine.connect() as conn:
        kept = sorted(r[0] for r in conn.execute(select(tokens.c.jti)))
    assert kept == ["edge", "fresh", "recent"]
    assert store.remember_token(ISS, "recent", T0 - ten) is False  # still a replay


# --- the report's rows --------------------------------------------------------------------------


def test_rows_in_a_period_with_their_latest_outcome(store: Store, clock: list[dt.datetime]) -> None:
    for cid, minutes in [("c-3", 3), ("c-1", 1), ("c-2", 2)]:
        clock.append(T0 + dt.timedelta(minutes=minutes))
        store.add_consultations([row(cid)])
    store.add_feedback([item("c-1")])
    store.add_feedback([item("c-1", "accepted", None)])
    rows = list(store.rows())
    assert [r["id"] for r in rows] == ["c-1", "c-2", "c-3"]
    assert [r["outcome"]["outcome"] if r["outcome"] else None for r in rows] == ["accepted", None, None]
    assert rows[0]["case"]["site"] == "glenohumeral" and rows[0]["created_at"] == "2026-03-04T05:07:07+00:00"
    at = [T0 + dt.timedelta(minutes=m) for m in range(4)]
    assert [r["id"] for r in store.rows(since=at[2])] == ["c-2", "c-3"]  # from this instant on
    assert [r["id"] for r in store.rows(until=at[3])] == ["c-1", "c-2"]  # up to, not including, this one
    assert [r["id"] for r in store.rows(at[2], at[3])] == ["c-2"]


# --- failures -----------------------------------------------------------------------------------


def drop(db: Path, *tables: str) -> None:
    with sqlite3.connect(db) as conn:
        for table in tables:
            conn.execute(f"DROP TABLE {table}")


def test_a_failed_write_is_named_and_the_pool_is_opened_anew(store: Store, db: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    disposed: list[bool] = []
    dispose = store.engine.dispose
    monkeypatch.setattr(store.engine, "dispose", lambda close=True: (disposed.append(close), dispose(close)))
    drop(db, "jwt_seen", "feedback", "consultations")
    failures = [
        (
            lambda: store.add_consultations([row("c-1")]),
            "could not record the consultation; no card was returned: no such table: consultations",
        ),
        (lambda: store.add_feedback([item("c-1")]), "the feedback could not be recorded, nothing was stored: no such table: consultations"),
        (lambda: store.remember_token(ISS, "j1", T0), "the token id could not be checked for replay: no such table: jwt_seen"),
    ]
    for write, message in failures:
        with pytest.raises(StoreUnavailable) as failed:
            write()
        assert failed.value.message == message
    assert disposed == [True, True, True]


def test_a_failed_read_is_named(store: Store, db: Path) -> None:
    drop(db, "feedback", "consultations")
    reads = [
        (lambda: store.cards({"c-1"}), "consultations"),
        (lambda: store.consultation("c-1"), "consultations"),
        (lambda: list(store.rows()), "feedback"),
    ]
    for read, table in reads:
        with pytest.raises(StoreUnavailable) as failed:
            read()
        assert failed.value.message == f"the consultation record cannot be read: no such table: {table}"


def test_an_unknown_consultation_cannot_be_read(store: Store) -> None:
    with pytest.raises(NotFound) as missing:
        store.consultation("c-404")
    assert missing.value.message == "no consultation 'c-404'"


def another_record(folder: Path) -> Path:
    """A record file of its own, its write-ahead log folded in (as a stopped service leaves it)."""
    folder.mkdir()
    path = folder / "record.sqlite3"
    Store(f"sqlite:///{path}").close()
    with sqlite3.connect(path) as conn:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    return path


def test_a_record_file_removed_is_refused(store: Store, db: Path) -> None:
    """SQLite would go on writing to a file no one reads again: writes and readiness refuse."""
    store.add_consultations([row("c-1")])
    for suffix in ("", "-wal", "-shm"):
        Path(f"{db}{suffix}").unlink(missing_ok=True)
    removed = f"the database file {db.resolve()} was removed while the service ran; restore it and restart"
    with pytest.raises(StoreUnavailable) as failed:
        store.add_consultations([row("c-2")])
    assert failed.value.message == f"could not record the consultation; no card was returned: {removed}"
    with pytest.raises(StoreUnavailable) as failed:
        store.ping()
    assert failed.value.message == f"the consultation database is not usable: {removed}"
    assert not db.exists()  # not made anew, empty, for records to go to


def test_a_record_file_replaced_is_refused(store: Store, db: Path, tmp_path: Path) -> None:
    store.add_consultations([row("c-1")])
    another_record(tmp_path / "other").replace(db)
    with pytest.raises(StoreUnavailable) as failed:
        store.remember_token(ISS, "j1", T0)
    assert failed.value.message == (
        f"the token id could not be checked for replay: the database file {db.resolve()} was replaced while the service ran; "
        "restart to use the new file"
    )
    with pytest.raises(StoreUnavailable, match=r"^the consultation database is not usable: .* was replaced"):
        store.ping()


def test_a_file_replaced_during_a_write_fails_the_write(store: Store, db: Path, tmp_path: Path) -> None:
    other = another_record(tmp_path / "other")
    with (
        pytest.raises(StoreUnavailable, match=r"^what was not done: the database file .* was replaced"),
        store._writing("what was not done"),
    ):
        other.replace(db)


def test_a_report_key_added_by_another_process_meanwhile_is_not_added_again(store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    """Two processes open a record made before the report key: the one that waited for the lock
    finds the column the other added and leaves it (adding it again would fail the start)."""
    real = store_module.inspect
    looks = 0

    class Stale:  # the first look, taken before the lock: the column is not there yet
        def __init__(self, bind: Any):
            self.inspector = real(bind)

        def get_columns(self, table: str) -> list[dict[str, Any]]:
            nonlocal looks
            looks += 1
            return [c for c in self.inspector.get_columns(table) if looks > 1 or c["name"] != "report_key"]

    monkeypatch.setattr(store_module, "inspect", Stale)
    store_module._add_report_keys(store.engine)
    assert looks == 2
    monkeypatch.undo()
    store.add_consultations([row("c-1")])
    assert store.add_feedback([item("c-1")]) == [item("c-1")]


def test_the_first_line_of_a_database_error_is_its_reason() -> None:
    assert (
        store_module._reason(OperationalError("SELECT 1", {}, sqlite3.OperationalError("database is locked\nmore"))) == "database is locked"
    )
    assert store_module._reason(ValueError("first\nsecond")) == "first"
    assert store_module._reason(ValueError("  ")) == "ValueError"


# --- readiness ----------------------------------------------------------------------------------


def test_ready_leaves_no_trace_and_the_connection_as_it_was(store: Store) -> None:
    store.ping()
    store.ping()
    with store.engine.connect() as conn:
        assert conn.execute(select(tokens.c.jti)).all() == []  # the probe's row was rolled back
        assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() == 10_000


def test_not_ready_at_once_while_another_process_holds_the_write_lock(store: Store, db: Path) -> None:
    """A write would wait ten seconds for the lock, then fail: readiness says so at once."""
    store.ping()
    holder = sqlite3.connect(db, isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")
    try:
        started = time.monotonic()
        with pytest.raises(StoreUnavailable) as failed:
            store.ping()
        assert time.monotonic() - started < 3
        assert failed.value.message == "the consultation database is not reachable or not writable now: database is locked"
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    store.ping()


@pytest.mark.parametrize("error", [OperationalError("BEGIN", {}, Exception("disk I/O error")), sqlite3.OperationalError("disk I/O error")])
def test_readiness_tries_once_more_on_a_new_pool(store: Store, monkeypatch: pytest.MonkeyPatch, error: Exception) -> None:
    """A database that came back is ready without a restart; one that did not is named."""
    calls: list[str] = []
    probe = store._probe

    def flaky() -> None:
        calls.append("probe")
        if len(calls) == 1:
            raise error
        probe()

    monkeypatch.setattr(store, "_probe", flaky)
    monkeypatch.setattr(store.engine, "dispose", lambda close=True: calls.append("dispose"))
    store.ping()
    assert calls == ["probe", "dispose", "probe"]

    def down() -> None:
        calls.append("probe")
        raise error

    calls.clear()
    monkeypatch.setattr(store, "_probe", down)
    with pytest.raises(StoreUnavailable) as failed:
        store.ping()
    assert calls == ["probe", "dispose", "probe"]
    assert failed.value.message == "the consultation database is not reachable or not writable now: disk I/O error"


# --- PostgreSQL -----------------------------------------------------------------------------------


def test_postgresql_ready_leaves_no_trace(pg_store: Store) -> None:
    pg_store.ping()
    with pg_store.engine.connect() as conn:
        assert conn.execute(select(tokens.c.jti)).all() == []


def test_postgresql_connections_the_server_dropped_are_replaced(pg_store: Store) -> None:
    """A restarted or failed-over server closes the pooled connections: the next request is served."""
    import psycopg

    pg_store.add_consultations([row("c-1")])
    database = pg_store.engine.url.database
    with psycopg.connect(
        pg_store.engine.url.set(drivername="postgresql", database="postgres").render_as_string(), autocommit=True
    ) as admin:
        ended = admin.execute(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()", (database,)
        ).fetchone()
    assert ended and ended[0] >= 1
    assert pg_store.cards({"c-1"})["c-1"]["status"] == "recommended"


def test_postgresql_pool_per_process(pg_store: Store) -> None:
    """Five connections kept, five more at peak: each replica holds at most ten (the server's
    default allows 100, so ten replicas and the report fit)."""
    pool: Any = pg_store.engine.pool
    assert (pool.size(), pool._max_overflow) == (5, 5)


def test_postgresql_round_trip_and_replay(pg_store: Store, clock: list[dt.datetime]) -> None:
    pg_store.add_consultations([row("c-1")])
    record = pg_store.consultation("c-1")
    assert dt.datetime.fromisoformat(record["created_at"]) == T0
    assert record["case"] == row("c-1").case and record["rules"] == ["US-DEFAULT", "LU-VARIANCE"]
    assert pg_store.remember_token(ISS, "j1", T0 + dt.timedelta(minutes=5)) is True
    assert pg_store.remember_token(ISS, "j1", T0 + dt.timedelta(minutes=5)) is False
    with pg_store.engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM jwt_seen")).scalar() == 1


def test_postgresql_gives_rows_in_the_order_received(pg_store: Store) -> None:
    """PostgreSQL returns rows in no set order (an updated row moves to the end of its table):
    feedback is read in the order received, and the latest report is the outcome."""
    pg_store.add_consultations([row("c-1")])
    pg_store.add_feedback([item("c-1")])
    pg_store.add_feedback([item("c-1", "accepted", None)])
    with pg_store.engine.begin() as conn:
        conn.execute(text("UPDATE feedback SET user_comment = 'moved' WHERE outcome = 'overridden'"))
        assert [r[0] for r in conn.execute(text("SELECT outcome FROM feedback"))] == ["accepted", "overridden"]
    assert [f["outcome"] for f in pg_store.consultation("c-1")["feedback"]] == ["overridden", "accepted"]
    assert [r["outcome"]["outcome"] for r in pg_store.rows()] == ["accepted"]
