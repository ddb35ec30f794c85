"""The consultation record: SQLite in a file by default, PostgreSQL by URL (several replicas).

SQLAlchemy Core, not an ORM: one dialect-neutral schema and plain inserts for both databases,
with pooling, and psycopg 3 as the PostgreSQL driver. Every write either commits or raises
StoreUnavailable, so a card is never returned without its record.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
import sqlite3
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

from sqlalchemy import (
    Column,
    DateTime,
    Engine,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    create_engine,
    event,
    insert,
    inspect,
    select,
    text,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection, make_url
from sqlalchemy.exc import SQLAlchemyError

from .errors import NoRecord, NotFound, StoreUnavailable

DEFAULT_URL = "sqlite:///guidance-rules-consultations.sqlite3"
SQLITE_BUSY_SECONDS = 10  # how long a write waits for another process's lock before it fails (503)

FEEDBACK_KEY_INDEX = "uq_feedback_report_key"

metadata = MetaData()

consultations = Table(
    "consultations",
    metadata,
    Column("id", String(36), primary_key=True),  # the card uuid
    Column("created_at", DateTime(timezone=True), nullable=False, index=True),
    Column("service_id", String(100), nullable=False),
    Column("hook", String(50), nullable=False),
    Column("hook_instance", String(100), nullable=False),
    Column("patient_hash", String(64)),  # keyed hash, only when a key is configured
    Column("order_ref", String(200), nullable=False),
    Column("status", String(20), nullable=False),  # recommended | unreadable
    Column("site", String(50)),
    Column("case_json", Text),
    Column("modality", String(20)),
    Column("ordered_guidance", String(20)),
    Column("indicator", String(20), nullable=False),
    Column("ratings_json", Text),
    Column("rules_json", Text),
    Column("problems_json", Text),
    Column("ruleset_version", String(50), nullable=False),
    Column("ruleset_digest", String(80), nullable=False),
)

feedback = Table(
    "feedback",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("consultation_id", String(36), ForeignKey("consultations.id"), nullable=False, index=True),
    Column("outcome", String(20), nullable=False),  # accepted | overridden
    Column("override_code", String(100)),
    Column("override_display", Text),
    Column("user_comment", Text),
    Column("accepted_suggestions_json", Text),
    Column("outcome_at", DateTime(timezone=True)),
    Column("received_at", DateTime(timezone=True), nullable=False),
    # the same report (a retried request) is one row, also when retries arrive at once: see report_key()
    Column("report_key", String(64)),
    Index(FEEDBACK_KEY_INDEX, "report_key", unique=True),
)

tokens = Table(
    "jwt_seen",
    metadata,
    Column("issuer", String(500), primary_key=True),
    Column("jti", String(500), primary_key=True),
    Column("expires_at", DateTime(timezone=True), nullable=False, index=True),
)


def normalise_url(url: str) -> str:
    """`postgresql://` means psycopg 3 here (SQLAlchemy would otherwise pick psycopg2)."""
    for prefix in ("postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


def redact(url: str) -> str:
    return make_url(url).render_as_string(hide_password=True)


@dataclass(frozen=True)
class Consultation:
    id: str
    service_id: str
    hook: str
    hook_instance: str
    patient_hash: str | None
    order_ref: str
    status: str
    site: str | None
    case: dict[str, Any] | None
    modality: str | None
    ordered_guidance: str | None
    indicator: str
    ratings: dict[str, Any] | None
    rules: list[str]
    problems: list[str]
    ruleset_version: str
    ruleset_digest: str


def now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def report_key(item: dict[str, Any]) -> str:
    """What makes two feedback items the same report: card, outcome, reason and time (in UTC; SQLite
    returns instants without their offset). A unique index on it keeps one row per report, so
    simultaneous retries cannot each find "not stored yet" and all insert."""
    at = item.get("outcome_at")
    if isinstance(at, dt.datetime) and at.tzinfo is not None:
        at = at.astimezone(dt.UTC).replace(tzinfo=None)
    parts = [item["consultation_id"], item["outcome"], item.get("override_code"), at.isoformat() if at else None]
    return hashlib.sha256(json.dumps(parts).encode()).hexdigest()


class Store:
    """All reads and writes of the record. Thread-safe (one pooled engine)."""

    def __init__(self, url: str = DEFAULT_URL, *, patient_key: bytes | None = None, create: bool = True):
        """Open the record; `create=False` (a reader such as the report) refuses a database that
        does not hold one, instead of making an empty one (a mistyped path would report zeros)."""
        self.url = normalise_url(url)
        self.patient_key = patient_key
        self._file: tuple[Path, tuple[int, int]] | None = None  # SQLite: the file opened, and its identity
        try:
            if self.url.startswith("sqlite"):
                database = make_url(self.url).database
                if not create and (not database or database == ":memory:" or not Path(database).is_file()):
                    raise NoRecord(f"no consultation database at {redact(self.url)}: no such file")
                self.engine: Engine = create_engine(self.url, connect_args={"check_same_thread": False, "timeout": SQLITE_BUSY_SECONDS})
                event.listen(self.engine, "connect", _sqlite_pragmas)
            else:
                self.engine = create_engine(self.url, pool_pre_ping=True, pool_size=5, max_overflow=5)
            if create:
                metadata.create_all(self.engine, checkfirst=True)
                _add_report_keys(self.engine)
                self._file = _file_identity(self.engine)
            else:
                lacking = sorted(set(metadata.tables) - set(inspect(self.engine).get_table_names()))
                if lacking:
                    raise NoRecord(f"{redact(self.url)} holds no consultation record (no table {', '.join(lacking)})")
        except (SQLAlchemyError, ImportError, ValueError) as error:
            raise StoreUnavailable(f"cannot open the consultation database {redact(self.url)}: {_reason(error)}") from None

    def patient_hash(self, patient_id: str | None) -> str | None:
        """A keyed hash of the patient id, only when a key is configured; otherwise nothing."""
        if not patient_id or not self.patient_key:
            return None
        return hmac.new(self.patient_key, patient_id.encode(), hashlib.sha256).hexdigest()

    def add_consultations(self, rows: list[Consultation]) -> None:
        if not rows:
            return
        stamp = now()
        values = [
            {
                "id": r.id,
                "created_at": stamp,
                "service_id": r.service_id,
                "hook": r.hook,
                "hook_instance": r.hook_instance,
                "patient_hash": r.patient_hash,
                "order_ref": r.order_ref,
                "status": r.status,
                "site": r.site,
                "case_json": json.dumps(r.case, sort_keys=True) if r.case is not None else None,
                "modality": r.modality,
                "ordered_guidance": r.ordered_guidance,
                "indicator": r.indicator,
                "ratings_json": json.dumps(r.ratings, sort_keys=True) if r.ratings is not None else None,
                "rules_json": json.dumps(r.rules),
                "problems_json": json.dumps(r.problems),
                "ruleset_version": r.ruleset_version,
                "ruleset_digest": r.ruleset_digest,
            }
            for r in rows
        ]
        with self._writing("could not record the consultation; no card was returned") as conn:
            conn.execute(insert(consultations), values)

    def cards(self, ids: set[str]) -> dict[str, dict[str, Any]]:
        """Service, status and modality of each recorded card named (feedback is checked against them)."""
        try:
            with self.engine.connect() as conn:
                columns = (consultations.c.id, consultations.c.service_id, consultations.c.status, consultations.c.modality)
                return {row["id"]: dict(row) for row in conn.execute(select(*columns).where(consultations.c.id.in_(ids))).mappings()}
        except SQLAlchemyError as error:
            raise StoreUnavailable(f"the consultation record cannot be read: {_reason(error)}") from None

    def add_feedback(self, items: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Store feedback; every card id must name a recorded consultation (else 404, nothing stored).
        An item already stored (same card, outcome, reason and time: a retried request) is not
        stored again, also when the retries arrive at once (insert-or-ignore on the unique
        report key, on either database). Returns the items that were new."""
        ids = {item["consultation_id"] for item in items}
        with self._writing("the feedback could not be recorded, nothing was stored") as conn:
            known = {row[0] for row in conn.execute(select(consultations.c.id).where(consultations.c.id.in_(ids)))}
            unknown = sorted(ids - known)
            if unknown:
                raise NotFound(
                    f"no consultation with card uuid {', '.join(unknown)}; feedback is accepted only for cards this service returned"
                )
            stamp, new = now(), []
            for item in items:
                row = {**item, "report_key": report_key(item), "received_at": stamp}
                if self._insert_new(conn, feedback, row, "report_key"):
                    new.append(item)
        return new

    def remember_token(self, issuer: str, jti: str, expires_at: dt.datetime) -> bool:
        """Record a JWT id; False when it was seen before (a replay). Expired ids are pruned."""
        with self._writing("the token id could not be checked for replay") as conn:
            conn.execute(tokens.delete().where(tokens.c.expires_at < now() - dt.timedelta(minutes=10)))
            return self._insert_new(conn, tokens, {"issuer": issuer, "jti": jti, "expires_at": expires_at}, "issuer", "jti")

    def _insert_new(self, conn: Connection, table: Table, row: dict[str, Any], *key: str) -> bool:
        """Insert unless a row with the same unique key is there (also one another process is
        inserting at this moment); True when inserted."""
        upsert = postgresql.insert if self.engine.dialect.name == "postgresql" else sqlite.insert
        statement = upsert(table).values(row).on_conflict_do_nothing(index_elements=list(key))
        return conn.execute(statement.returning(*table.primary_key.columns)).first() is not None  # a row only when inserted

    def consultation(self, consultation_id: str) -> dict[str, Any]:
        try:
            with self.engine.connect() as conn:
                row = conn.execute(select(consultations).where(consultations.c.id == consultation_id)).mappings().first()
                if row is None:
                    raise NotFound(f"no consultation '{consultation_id}'")
                fb = (
                    conn.execute(select(feedback).where(feedback.c.consultation_id == consultation_id).order_by(feedback.c.id))
                    .mappings()
                    .all()
                )
        except SQLAlchemyError as error:
            raise StoreUnavailable(f"the consultation record cannot be read: {_reason(error)}") from None
        out = _decode(dict(row))
        out["feedback"] = [_decode(dict(f)) for f in fb]
        return out

    def rows(self, since: dt.datetime | None = None, until: dt.datetime | None = None) -> Iterator[dict[str, Any]]:
        """Consultations in the period with their latest feedback outcome (for the report)."""
        query = select(consultations)
        if since:
            query = query.where(consultations.c.created_at >= since)
        if until:
            query = query.where(consultations.c.created_at < until)
        try:
            with self.engine.connect() as conn:
                outcomes: dict[str, dict[str, Any]] = {}
                for f in conn.execute(select(feedback).order_by(feedback.c.id)).mappings():
                    outcomes[f["consultation_id"]] = dict(f)
                for row in conn.execute(query.order_by(consultations.c.created_at)).mappings():
                    item = _decode(dict(row))
                    item["outcome"] = outcomes.get(item["id"])
                    yield item
        except SQLAlchemyError as error:
            raise StoreUnavailable(f"the consultation record cannot be read: {_reason(error)}") from None

    def ping(self) -> None:
        """Readiness: a record can be written now. The database file is the one opened, and a
        write (rolled back) succeeds. After a failure the pool is opened anew and tried once more,
        so a database that came back (writable again, restarted) is ready without a restart."""
        try:
            self._probe()
        except (SQLAlchemyError, sqlite3.Error):
            self.engine.dispose()
            try:
                self._probe()
            except (SQLAlchemyError, sqlite3.Error) as error:
                raise StoreUnavailable(f"the consultation database is not reachable or not writable now: {_reason(error)}") from None

    def _probe(self) -> None:
        self._check_file("the consultation database is not usable")
        probe = {"issuer": "readiness probe", "jti": str(uuid.uuid4()), "expires_at": now()}
        with self.engine.connect() as conn:
            if self.engine.dialect.name != "sqlite":
                with conn.begin() as transaction:
                    conn.execute(insert(tokens), probe)
                    transaction.rollback()
                return
            # SQLite: the write lock must be had at once (a file another process holds locked
            # would make every hook call wait, then fail), and a read-only file refuses the write
            cursor = cast(sqlite3.Connection, conn.connection.dbapi_connection).cursor()
            cursor.execute("PRAGMA busy_timeout = 200")
            try:
                cursor.execute("BEGIN IMMEDIATE")
                try:
                    cursor.execute(
                        "INSERT INTO jwt_seen (issuer, jti, expires_at) VALUES (?, ?, '1970-01-01 00:00:00')",
                        (probe["issuer"], probe["jti"]),
                    )
                finally:
                    cursor.execute("ROLLBACK")
            finally:
                cursor.execute(f"PRAGMA busy_timeout = {SQLITE_BUSY_SECONDS * 1000}")  # the connection's own again
                cursor.close()

    def close(self) -> None:
        self.engine.dispose()

    @contextmanager
    def _writing(self, failure: str) -> Iterator[Connection]:
        """One write transaction that either commits to the database this service opened or
        raises StoreUnavailable (`failure` says what was not done). A failed connection is not
        reused: the pool is opened anew, so a transient fault does not outlast itself."""
        self._check_file(failure)
        try:
            with self.engine.begin() as conn:
                yield conn
        except SQLAlchemyError as error:
            self.engine.dispose()
            raise StoreUnavailable(f"{failure}: {_reason(error)}") from None
        self._check_file(failure)  # removed or replaced while writing: the record is not where it is read

    def _check_file(self, failure: str) -> None:
        """SQLite keeps writing to a file removed or replaced under it, where nobody will read the
        records again: refuse instead (until a restart opens the file that is there now)."""
        if self._file is None:
            return
        path, identity = self._file
        try:
            status = path.stat()
        except FileNotFoundError:
            raise StoreUnavailable(
                f"{failure}: the database file {path} was removed while the service ran; restore it and restart"
            ) from None
        if (status.st_dev, status.st_ino) != identity:
            raise StoreUnavailable(f"{failure}: the database file {path} was replaced while the service ran; restart to use the new file")


def _file_identity(engine: Engine) -> tuple[Path, tuple[int, int]] | None:
    database = engine.url.database if engine.dialect.name == "sqlite" else None
    if not database or database == ":memory:" or database.startswith("file:"):
        return None
    path = Path(database).resolve()
    status = path.stat()
    return path, (status.st_dev, status.st_ino)


def _add_report_keys(engine: Engine) -> None:
    """A record made before feedback had its unique report key gets the column and the index.
    Existing rows are kept: the first of each report gets the key, any earlier duplicate keeps
    none (the index allows several empty keys). One process does it: the others wait for its lock."""
    if "report_key" in {c["name"] for c in inspect(engine).get_columns("feedback")}:
        return
    with engine.connect() as conn:
        if engine.dialect.name == "sqlite":
            conn.exec_driver_sql("BEGIN IMMEDIATE")
        else:
            conn.execute(text("LOCK TABLE feedback IN ACCESS EXCLUSIVE MODE"))
        if "report_key" not in {c["name"] for c in inspect(conn).get_columns("feedback")}:
            _backfill_report_keys(conn)
        conn.commit()


def _backfill_report_keys(conn: Connection) -> None:
    conn.execute(text("ALTER TABLE feedback ADD COLUMN report_key VARCHAR(64)"))
    seen: set[str] = set()
    for row in conn.execute(select(feedback).order_by(feedback.c.id)).mappings().all():
        key = report_key(dict(row))
        if key not in seen:
            seen.add(key)
            conn.execute(feedback.update().where(feedback.c.id == row["id"]).values(report_key=key))
    conn.execute(text(f"CREATE UNIQUE INDEX IF NOT EXISTS {FEEDBACK_KEY_INDEX} ON feedback (report_key)"))


def _decode(row: dict[str, Any]) -> dict[str, Any]:
    for key in [k for k in row if k.endswith("_json")]:
        raw = row.pop(key)
        row[key[: -len("_json")]] = json.loads(raw) if raw is not None else None
    for key, value in row.items():
        if isinstance(value, dt.datetime):
            row[key] = (value if value.tzinfo else value.replace(tzinfo=dt.UTC)).isoformat()
    return row


def _reason(error: BaseException) -> str:
    first = str(getattr(error, "orig", None) or error).strip().splitlines()
    return first[0] if first else type(error).__name__


def _sqlite_pragmas(connection: Any, _record: Any) -> None:
    """WAL lets readers run beside the writer; NORMAL sync is durable across process crashes."""
    cursor = connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()
