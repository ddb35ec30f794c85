"""The consultation store without a server (issue 24: its unknown-consultation check was caught
only by the HTTP tests): feedback is stored only for recorded consultations, all or nothing."""

from __future__ import annotations

import datetime as dt
import uuid
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("sqlalchemy", reason="the service extra is not installed (pip install -e '.[service]')")

from guidance_rules.service.errors import NotFound
from guidance_rules.service.store import Consultation, Store


def consultation(cid: str) -> Consultation:
    return Consultation(
        cid, "svc", "order-select", str(uuid.uuid4()), None, "ServiceRequest/inj-1", "answered", "knee",
        {"site": "knee", "injectate": "prp"}, "landmark", None, "info", None, ["LM-SUITABLE"], [], "1", "abc",
    )  # fmt: skip


def item(cid: str, outcome: str = "accepted") -> dict[str, Any]:
    return {"consultation_id": cid, "outcome": outcome, "outcome_at": dt.datetime(2026, 1, 2, 3, 4, 5, tzinfo=dt.UTC)}


@pytest.fixture
def store(tmp_path: Path) -> Store:
    return Store(f"sqlite:///{tmp_path / 'record.sqlite3'}")


def test_feedback_for_a_recorded_consultation_is_stored_once(store: Store) -> None:
    known = str(uuid.uuid4())
    store.add_consultations([consultation(known)])
    assert store.add_feedback([item(known)]) == [item(known)]
    assert store.add_feedback([item(known)]) == []  # a retried request: not stored again
    assert [f["outcome"] for f in store.consultation(known)["feedback"]] == ["accepted"]


def test_feedback_naming_an_unknown_consultation_is_refused_and_nothing_is_stored(store: Store) -> None:
    known, unknown = str(uuid.uuid4()), str(uuid.uuid4())
    store.add_consultations([consultation(known)])
    with pytest.raises(NotFound, match=f"no consultation with card uuid {unknown};"):
        store.add_feedback([item(known, "overridden"), item(unknown)])
    assert store.consultation(known)["feedback"] == []  # the known card's item was not stored either
    with pytest.raises(NotFound, match=unknown):
        store.add_feedback([item(unknown)])


def test_an_unknown_consultation_cannot_be_read(store: Store) -> None:
    with pytest.raises(NotFound, match="no consultation 'nope'"):
        store.consultation("nope")
