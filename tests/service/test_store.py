"""The consultation record's properties, on SQLite and on PostgreSQL alike."""

from __future__ import annotations

import datetime as dt
import threading
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from guidance_rules.service.store import Consultation, Store, report_key

from .conftest import empty_postgres_database


@pytest.fixture(params=["sqlite", "postgresql"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    """An empty record on each database (PostgreSQL: a database of its own in the shared cluster)."""
    if request.param == "sqlite":
        opened = Store(f"sqlite:///{tmp_path}/c.sqlite3")
        yield opened
        opened.close()
        return
    with empty_postgres_database(request.getfixturevalue("postgres_url")) as url:
        opened = Store(url)
        yield opened
        opened.close()


def consultation(store: Store) -> str:
    cid = str(uuid.uuid4())
    row = Consultation(
        id=cid,
        service_id="guidance-rules-order-select",
        hook="order-select",
        hook_instance=str(uuid.uuid4()),
        patient_hash=None,
        order_ref="ServiceRequest/1",
        status="recommended",
        site="hip",
        case={"site": "hip"},
        modality="ultrasound",
        ordered_guidance=None,
        indicator="info",
        ratings=None,
        rules=[],
        problems=[],
        ruleset_version="test",
        ruleset_digest="test",
    )
    store.add_consultations([row])
    return cid


def item(card: str, outcome: str = "overridden", code: str | None = "clinical-judgement") -> dict[str, Any]:
    return {
        "consultation_id": card,
        "outcome": outcome,
        "override_code": code,
        "override_display": None,
        "user_comment": None,
        "accepted_suggestions_json": None,
        "outcome_at": dt.datetime(2025, 6, 1, 12, 0, tzinfo=dt.UTC),
    }


def test_a_retried_feedback_item_is_stored_once_under_concurrency(store: Store) -> None:
    """Twelve simultaneous retries of one item, for several cards: one row each, and exactly one
    of the twelve calls reports it as new (issue 20, point 5: PostgreSQL stored up to 8 rows)."""
    retries = 12
    for outcome, code in [("overridden", "clinical-judgement"), ("accepted", None), ("overridden", "clinical-judgement")]:
        card = consultation(store)
        barrier = threading.Barrier(retries)

        def send(card: str = card, outcome: str = outcome, code: str | None = code, barrier: threading.Barrier = barrier) -> int:
            barrier.wait()
            return len(store.add_feedback([item(card, outcome, code)]))

        with ThreadPoolExecutor(retries) as pool:
            new = list(pool.map(lambda _: send(), range(retries)))
        assert sum(new) == 1, new
        assert len(store.consultation(card)["feedback"]) == 1


def test_one_card_can_be_overridden_then_accepted(store: Store) -> None:
    """Distinct reports about one card are each kept; only the same report is one row."""
    card = consultation(store)
    assert len(store.add_feedback([item(card), item(card, "accepted", None)])) == 2
    assert len(store.add_feedback([item(card), item(card, "accepted", None)])) == 0
    assert [f["outcome"] for f in store.consultation(card)["feedback"]] == ["overridden", "accepted"]


def test_a_record_made_before_the_report_key_keeps_every_row(store: Store) -> None:
    """A database written by the earlier schema (no report key, and duplicates from the race) is
    upgraded when opened: no row is lost, and a further retry is not stored again."""
    from sqlalchemy import text

    card = consultation(store)
    with store.engine.begin() as conn:
        conn.execute(text("DROP INDEX uq_feedback_report_key"))
        conn.execute(text("ALTER TABLE feedback DROP COLUMN report_key"))
        row = {**item(card), "received_at": dt.datetime.now(dt.UTC)}
        insert = f"INSERT INTO feedback ({', '.join(row)}) VALUES ({', '.join(f':{k}' for k in row)})"
        conn.execute(text(insert), [row, row])
        # PostgreSQL then returns the first duplicate last: the key still goes to the first received
        conn.execute(text("UPDATE feedback SET user_comment = 'moved' WHERE id = (SELECT min(id) FROM feedback)"))
    reopened = Store(store.url)
    try:
        assert [f["report_key"] for f in reopened.consultation(card)["feedback"]] == [report_key(item(card)), None]
        assert reopened.add_feedback([item(card)]) == []
        assert len(reopened.add_feedback([item(card, "accepted", None)])) == 1
    finally:
        reopened.close()
