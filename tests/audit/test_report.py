"""The HTML audit report: its content, and how it renders in a real headless browser (Chromium)."""

from __future__ import annotations

import shutil
import struct
import subprocess
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from guidance_rules.audit.check import AuditReport
from guidance_rules.audit.findings import Finding, SpaceResult
from guidance_rules.audit.report import render_html

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def sample_report() -> AuditReport:
    heat: Counter[tuple[str, ...]] = Counter(
        {
            ("prp", "peripheral", "superficial", "joint", "landmark"): 3,
            ("prp", "peripheral", "superficial", "joint", "ultrasound"): 9,
            ("prp", "spinal", "deep", "epidural", "fluoroscopy"): 12,
        }
    )
    space = SpaceResult("free", 589_824, valid=307_200, heat=heat)
    findings = [
        Finding("error", "monotone", "changing depth <from> superficial to intermediate turns ultrasound into landmark", {"site": "knee"}),
        Finding("warning", "subsumed", "A is subsumed by B"),
    ]
    return AuditReport(
        {"version": "9.9.9", "digest": "sha256:abc"},
        findings,
        [space],
        {"LU-DEPTH": 10, "LU-SMALL": 0},
        {"ultrasound": 9, "fluoroscopy": 12, "both": 0, "landmark": 3},
        1.5,
        2,
    )


def test_report_content_is_escaped_and_complete() -> None:
    page = render_html(sample_report())
    assert page.startswith("<!doctype html>") and "FAILED" in page
    assert "&lt;from&gt;" in page and "<from>" not in page
    assert page.count('class="panel"') == 12  # 6 injectates x 2 regions
    assert "Never fired: LU-SMALL" in page
    assert "<script" not in page and "http" not in page  # self-contained: no scripts, no external assets


def _png_size(path: Path) -> tuple[int, int]:
    header = path.read_bytes()[:24]
    assert header[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = struct.unpack(">II", header[16:24])
    return width, height


@pytest.mark.skipif(CHROMIUM is None, reason="Debian's chromium is not installed (CI installs it)")
def test_report_renders_in_headless_chromium(tmp_path: Path) -> None:
    page = tmp_path / "report.html"
    page.write_text(render_html(sample_report()))
    profile = ["--user-data-dir=" + str(tmp_path / "profile")]
    dom = subprocess.run([str(CHROMIUM), *FLAGS, *profile, "--dump-dom", page.as_uri()], capture_output=True, text=True, timeout=120)
    assert dom.returncode == 0, dom.stderr[-2000:]
    # the browser parsed the page into the structure we wrote
    assert dom.stdout.count('class="panel"') == 12
    assert dom.stdout.count('class="cell"') == 12 * 3 * 8
    assert "changing depth &lt;from&gt; superficial" in dom.stdout
    shot = tmp_path / "report.png"
    result = subprocess.run(
        [str(CHROMIUM), *FLAGS, *profile, "--window-size=1400,1600", f"--screenshot={shot}", page.as_uri()],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0 and shot.exists(), result.stderr[-2000:]
    assert _png_size(shot) == (1400, 1600)
    assert shot.stat().st_size > 20_000  # a rendered page, not a blank image


def test_a_rare_modality_is_drawn_visibly() -> None:
    """Regression: landmark in 1 of 1,000 cases of a cell was drawn 0.1% wide (invisible)."""
    from guidance_rules.audit.report import MIN_SHARE, widths

    shares = widths(Counter({"ultrasound": 999, "landmark": 1}))
    assert shares["landmark"] == MIN_SHARE and abs(sum(shares.values()) - 100) < 1e-9
    assert shares["ultrasound"] > shares["landmark"]


def test_site_space_and_decision_table_are_drawn(knowledge: Any) -> None:
    from guidance_rules.audit.table import decision_tables

    report = sample_report()
    heat: Counter[tuple[str, ...]] = Counter(
        {
            ("prp", "peripheral", "superficial", "joint", "landmark", "knee"): 1,
            ("prp", "peripheral", "deep", "joint", "ultrasound", "hip"): 5,
        }
    )
    report.spaces.append(SpaceResult("sites", 129_024, valid=6, heat=heat))
    page = render_html(report, decision_tables(knowledge))
    assert 'id="site-grid"' in page and page.count("<tr><th><a href=") == 2
    assert page.count('class="site-table"') == len(knowledge.sites)
    assert 'title="landmark">LM<' in page  # the knee's landmark cells in the decision table
