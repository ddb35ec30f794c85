"""Replaying the consultation record through a rule change (`diff --consultations`) and the
per-rule override report (`consultations report`), on SQLite and on PostgreSQL."""

from __future__ import annotations

import datetime as dt
import json
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("sqlalchemy", reason="the service extra is not installed (pip install 'guidance-rules[service]')")

from sqlalchemy import create_engine, text

from guidance_rules.cli import main
from guidance_rules.recommendation.recommender import Recommender
from guidance_rules.rulebase.load import default_rules_dir, load
from guidance_rules.service.replay import replay
from guidance_rules.service.report import override_report
from guidance_rules.service.store import Consultation, Store
from tests.audit.test_diff import _retire

SITES = ("knee", "hip", "glenohumeral", "elbow", "tibiotalar")
VARIANCES = ([], ["effusion"], ["effusion", "obesity"], ["prior_surgery"])


def cases() -> list[dict[str, Any]]:
    return [
        {"site": site, "injectate": injectate, "anatomy_variance": variance}
        for site in SITES
        for injectate in ("corticosteroid", "prp")
        for variance in VARIANCES
    ]


def record(store: Store, recommender: Recommender) -> list[Consultation]:
    """Consultations as the service records them (answered under `recommender`'s rules), and one
    order that could not be read."""
    rows = []
    for case in cases():
        rec = recommender.recommend(case)
        rows.append(
            Consultation(
                id=str(uuid.uuid4()),
                service_id="guidance",
                hook="order-select",
                hook_instance="h",
                patient_hash=None,
                order_ref="ServiceRequest/1",
                status="recommended",
                site=case["site"],
                case=case,
                modality=rec.modality.value,
                ordered_guidance=None,
                indicator="info",
                ratings=rec.model_dump(mode="json")["ratings"],
                rules=list(rec.chain_rules()),
                problems=[],
                ruleset_version=rec.ruleset.version,
                ruleset_digest=rec.ruleset.digest,
            )
        )
    unreadable = Consultation(
        str(uuid.uuid4()),
        "guidance",
        "order-select",
        "h",
        None,
        "ServiceRequest/2",
        "unreadable",
        None,
        None,
        None,
        None,
        "warning",
        None,
        [],
        ["no site"],
        "1",
        "d",
    )
    store.add_consultations([*rows, unreadable])
    return rows


def feedback(store: Store, rows: list[Consultation], outcomes: dict[str, tuple[str, str | None]]) -> None:
    at = dt.datetime(2025, 6, 1, tzinfo=dt.UTC)
    items = [
        {"consultation_id": cid, "outcome": outcome, "override_code": code, "override_display": code, "outcome_at": at}
        for cid, (outcome, code) in outcomes.items()
    ]
    store.add_feedback(items)


@pytest.fixture(params=["sqlite", "postgresql"])
def database(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path}/consultations.sqlite3"
        return
    server: str = request.getfixturevalue("postgres_url")
    name = f"replay_{uuid.uuid4().hex[:12]}"  # a database of its own: other tests record into the default one
    admin = create_engine(server.replace("postgresql://", "postgresql+psycopg://"), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f"CREATE DATABASE {name}"))
    yield server.rsplit("/", 1)[0] + "/" + name
    with admin.connect() as conn:
        conn.execute(text(f"DROP DATABASE {name} WITH (FORCE)"))
    admin.dispose()


def answer(recommender: Recommender, case: dict[str, Any]) -> tuple[Any, ...]:
    rec = recommender.recommend(case)
    ratings = tuple(getattr(rec.ratings, m).category.value for m in ("ultrasound", "fluoroscopy", "both", "landmark"))
    return rec.modality.value, ratings, rec.chain_rules()


def test_replay_names_every_consultation_whose_answer_would_change(
    database: str, rule_copy: Callable[..., Path], capsys: pytest.CaptureFixture[str]
) -> None:
    old = Recommender(load(default_rules_dir()))
    new_dir = rule_copy("landmark.yaml", _retire("LU-EFFUSION"))
    new = Recommender(load(new_dir))
    store = Store(database)
    try:
        rows = record(store, old)
        changed = [row for row in rows if answer(old, row.case or {}) != answer(new, row.case or {})]
        same = [row for row in rows if row not in changed]
        assert changed and same  # the edit changes some recorded answers and not others
        feedback(
            store,
            rows,
            {
                changed[0].id: ("overridden", "clinical-judgement"),
                changed[1].id: ("accepted", None),
                same[0].id: ("overridden", "patient-preference"),
            },
        )
        report = replay(store.rows(), old, new)
    finally:
        store.close()
    assert report["consultations"] == len(rows) + 1 and report["replayed"] == len(rows) and report["not_replayable"] == 1
    assert sorted(c["id"] for c in report["changes"]) == sorted(row.id for row in changed)
    marks = {c["id"]: (c["feedback"], c["override_reason"]) for c in report["changes"]}
    assert marks[changed[0].id] == ("overridden", "clinical-judgement") and marks[changed[1].id] == ("accepted", None)
    assert report["changed_overridden"] == 1 and report["changed_accepted"] == 1
    assert all("LU-EFFUSION" in c["rules_old_only"] for c in report["changes"])
    assert sum(g["count"] for g in report["groups"]) == len(changed)
    for change in report["changes"]:
        row = next(r for r in rows if r.id == change["id"])
        assert (change["recorded"], change["old"], change["new"]) == (
            row.modality,
            answer(old, row.case or {})[0],
            answer(new, row.case or {})[0],
        )

    assert main(["diff", str(default_rules_dir()), str(new_dir), "--consultations", database]) == 1
    out = capsys.readouterr().out
    assert f"CHANGED: {len(changed)} consultations" in out and "OVERRIDDEN (clinical-judgement)" in out
    assert main(["diff", str(default_rules_dir()), str(default_rules_dir()), "--consultations", database, "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["changed"] == 0


def test_replay_refuses_a_database_without_a_record(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rules = str(default_rules_dir())
    assert main(["diff", rules, rules, "--consultations", f"sqlite:///{tmp_path}/none.sqlite3"]) == 2
    assert "--consultations: no consultation database" in capsys.readouterr().err
    assert main(["diff", rules, rules, "--consultations", f"sqlite:///{tmp_path}/none.sqlite3", "--site", "knee"]) == 2
    assert "not used with --consultations" in capsys.readouterr().err


def test_the_report_gives_each_rules_outcomes_and_override_reasons_per_site(database: str, capsys: pytest.CaptureFixture[str]) -> None:
    recommender = Recommender(load(default_rules_dir()))
    store = Store(database)
    try:
        rows = record(store, recommender)
        knee = [row for row in rows if row.site == "knee"]
        hip = [row for row in rows if row.site == "hip"]
        outcomes = {knee[0].id: ("overridden", "clinical-judgement"), knee[1].id: ("overridden", None), knee[2].id: ("accepted", None)}
        outcomes |= {hip[0].id: ("overridden", "equipment"), hip[1].id: ("accepted", None)}
        feedback(store, rows, outcomes)
        report = override_report(store.rows())
    finally:
        store.close()
    decided = {row.id: set(row.rules) for row in rows}
    for rule in {r for row in rows for r in row.rules}:
        for site in SITES:
            mine = [row for row in rows if row.site == site and rule in decided[row.id]]
            cell = report["by_rule_site"].get(rule, {}).get(site)
            if not mine:
                assert cell is None
                continue
            said = [outcomes[row.id] for row in mine if row.id in outcomes]
            reasons: dict[str, int] = {}
            for outcome, code in said:
                if outcome == "overridden":
                    reasons[code or "(no reason given)"] = reasons.get(code or "(no reason given)", 0) + 1
            overridden = sum(o == "overridden" for o, _ in said)
            assert cell == {
                "consultations": len(mine),
                "with_feedback": len(said),
                "accepted": len(said) - overridden,
                "overridden": overridden,
                "override_rate": round(overridden / len(said), 4) if said else None,
                "override_reasons": dict(sorted(reasons.items(), key=lambda kv: (-kv[1], kv[0]))),
            }, (rule, site)
    policy = report["override_reasons_by_rule"]["POLICY-SELECT"]  # every answer's chain ends with the policy
    assert policy == {"(no reason given)": 1, "clinical-judgement": 1, "equipment": 1}

    assert main(["consultations", "report", "--db", database, "--json", "--since", "2000-01-01"]) == 0
    assert json.loads(capsys.readouterr().out)["by_rule_site"] == report["by_rule_site"]
    assert main(["consultations", "report", "--db", database, "--until", "2000-01-01", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["by_rule_site"] == {}  # the period holds none
    assert main(["consultations", "report", "--db", database]) == 0
    assert "overridden for: clinical-judgement 1" in capsys.readouterr().out
