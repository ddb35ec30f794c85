"""The decision table: every site, injectate and variance set, through the real engine."""

from __future__ import annotations

import csv
import io
import subprocess
import sys

from guidance_rules import recommend
from guidance_rules.audit.table import decision_tables, to_csv, to_markdown
from guidance_rules.rulebase.load import KnowledgeBase
from tests.conftest import ROOT


def test_table_agrees_with_recommend_cell_by_cell(knowledge: KnowledgeBase) -> None:
    rows = list(csv.DictReader(io.StringIO(to_csv(decision_tables(knowledge)))))
    assert len(rows) == len(knowledge.sites) * 6 * 16
    for row in rows[::37]:  # a spread of cells across every site
        case = {
            "site": row["site"],
            "injectate": row["injectate"],
            "anatomy_variance": [v for v in row["anatomy_variance"].split(";") if v],
        }
        assert recommend(case).modality.value == row["modality"], case


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
