"""The decision table: every site, injectate and variance set, through the real engine."""

from __future__ import annotations

import csv
import io
import subprocess
import sys

import pytest
from pydantic import ValidationError

from guidance_rules import recommend
from guidance_rules.audit.table import decision_tables, to_csv, to_markdown
from guidance_rules.rulebase.domain import KnowledgeBase
from tests.conftest import ROOT


def test_table_agrees_with_recommend_cell_by_cell(knowledge: KnowledgeBase) -> None:
    tables = decision_tables(knowledge)
    assert all(len(t.rows) + len(t.omitted) == 16 for t in tables)  # every variance set: shown, or said why not
    rows = list(csv.DictReader(io.StringIO(to_csv(tables))))
    assert len(rows) == sum(len(t.rows) for t in tables) * 6
    for row in rows[::37]:  # a spread of cells across every site
        case = {
            "site": row["site"],
            "injectate": row["injectate"],
            "anatomy_variance": [v for v in row["anatomy_variance"].split(";") if v],
        }
        assert recommend(case).modality.value == row["modality"], case


def test_a_variance_set_the_site_contradicts_is_left_out_and_said(knowledge: KnowledgeBase) -> None:
    """An effusion at the epidural space is no case (C-EFFUSION-TISSUE): the table omits the row and
    names the constraint instead of stopping at the first contradictory cell."""
    [table] = [t for t in decision_tables(knowledge) if t.site == "epidural_interlaminar"]
    assert table.omitted and all("effusion" in variances for variances, _ in table.omitted)
    assert all("effusion" not in variances for variances, _ in table.rows)
    for variances, reason in table.omitted:
        assert reason.startswith("C-EFFUSION-TISSUE: ")
        with pytest.raises(ValidationError, match="effusion"):
            recommend({"site": "epidural_interlaminar", "injectate": "prp", "anatomy_variance": list(variances)})
    assert "Not valid here, so not shown: effusion," in to_markdown([table])


def test_markdown_has_one_table_per_site(knowledge: KnowledgeBase) -> None:
    text = to_markdown(decision_tables(knowledge))
    assert text.count("\n## ") == len(knowledge.sites)
    assert "| none | LM |" in text  # the plain knee is a landmark injection


def test_table_command_formats_and_bad_format_exit_2() -> None:
    for fmt, marker in (("md", "# Decision table"), ("csv", "site,injectate,anatomy_variance,modality"), ("html", "<!doctype html>")):
        result = subprocess.run(
            [sys.executable, "-m", "guidance_rules", "table", "--format", fmt], capture_output=True, text=True, cwd=ROOT, timeout=300
        )
        assert result.returncode == 0 and result.stdout.startswith(marker), result.stderr
    bad = subprocess.run(
        [sys.executable, "-m", "guidance_rules", "table", "--format", "pdf"], capture_output=True, text=True, cwd=ROOT, timeout=300
    )
    assert bad.returncode == 2 and "pdf" in bad.stderr and "Traceback" not in bad.stderr
