"""Fast unit tests of the audit's HTML page (guidance_rules.audit.report): the bar widths, the cells
and grids of both spaces, and each section of the page, on hand-made reports (issue 24: mutation
testing of the audit)."""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from guidance_rules.audit.check import AuditReport
from guidance_rules.audit.findings import Finding, SpaceResult
from guidance_rules.audit.report import MIN_SHARE, heatmaps, render_html, site_heatmap, widths, write_html
from guidance_rules.audit.table import SiteTable, to_html
from guidance_rules.model import Modality
from guidance_rules.rulebase.conditions import CASE_FIELDS

INJECTATES = CASE_FIELDS["injectate"].values
REGIONS = CASE_FIELDS["region"].values
DEPTHS = CASE_FIELDS["depth"].values
TISSUES = CASE_FIELDS["tissue"].values


def report(
    findings: list[Finding] | None = None,
    spaces: list[SpaceResult] | None = None,
    rule_counts: dict[str, int] | None = None,
) -> AuditReport:
    return AuditReport(
        ruleset={"version": "1.2.3", "digest": "sha256:feed"},
        findings=findings or [],
        spaces=spaces if spaces is not None else [],
        rule_counts=rule_counts if rule_counts is not None else {"A": 1},
        modality_counts={"ultrasound": 1234, "fluoroscopy": 5, "both": 0, "landmark": 7},
        seconds=3.14159,
        workers=2,
    )


# ---- widths and cells ----------------------------------------------------------------------


def test_widths_are_proportional_when_no_modality_is_rare() -> None:
    assert widths(Counter({"landmark": 1, "ultrasound": 3})) == {"ultrasound": 75.0, "landmark": 25.0}
    assert list(widths(Counter({"landmark": 1, "both": 1, "fluoroscopy": 1, "ultrasound": 1}))) == [m.value for m in Modality]
    assert widths(Counter({"both": 5, "fluoroscopy": 0})) == {"both": 100.0}


def test_a_rare_modality_gets_the_minimum_and_the_rest_share_what_is_left() -> None:
    got = widths(Counter({"ultrasound": 100, "landmark": 5, "both": 5, "fluoroscopy": 0}))
    assert set(got) == {"ultrasound", "both", "landmark"}
    assert got["landmark"] == got["both"] == MIN_SHARE == 12.0
    assert got["ultrasound"] == pytest.approx(100 - 2 * MIN_SHARE)
    got = widths(Counter({"ultrasound": 600, "fluoroscopy": 300, "landmark": 10}))
    assert got["landmark"] == MIN_SHARE
    assert got["ultrasound"] == pytest.approx((100 - MIN_SHARE) * 2 / 3) and got["fluoroscopy"] == pytest.approx((100 - MIN_SHARE) / 3)


def _cells(html: str) -> list[str]:
    return re.findall(r'<div class="cell"[^>]*>(?:<div style="[^"]*"></div>)*</div>', html)


def test_site_heatmap_rows_are_sites_and_columns_injectates() -> None:
    heat: Counter[tuple[Any, ...]] = Counter(
        {
            ("prp", "peripheral", "superficial", "joint", "ultrasound", "knee"): 2,
            ("prp", "peripheral", "deep", "joint", "ultrasound", "knee"): 1,  # same site and injectate: added
            ("prp", "peripheral", "deep", "joint", "landmark", "knee"): 1,
            ("corticosteroid", "spinal", "deep", "epidural", "fluoroscopy", "epidural_interlaminar"): 4,
            ("prp", "peripheral", "deep", "joint", "ultrasound", ""): 50,  # a case without a site: not in this grid
            ("prp", "peripheral", "deep", "joint", "ultrasound"): 70,  # an old five-part key: no site
        }
    )
    grid = site_heatmap(heat)
    assert grid.startswith('<table class="grid" id="site-grid"><tr><th></th>' + "".join(f'<th class="col">{i}</th>' for i in INJECTATES))
    rows = re.findall(r'<tr><th><a href="#site-([^"]+)">\1</a></th>(.*?)</tr>', grid)
    assert [site for site, _ in rows] == ["knee", "epidural_interlaminar"]
    knee = _cells(rows[0][1])
    assert len(knee) == len(INJECTATES)
    assert knee[INJECTATES.index("prp")] == (
        '<div class="cell" title="ultrasound 3 (75%), landmark 1 (25%)" data-total="4">'
        '<div style="width:75.00%;background:#2f6fb3"></div><div style="width:25.00%;background:#3f9a4a"></div></div>'
    )
    assert [c for i, c in enumerate(knee) if INJECTATES[i] != "prp"] == ['<div class="cell" title="no valid case"></div>'] * (
        len(INJECTATES) - 1
    )
    epidural = _cells(rows[1][1])
    assert 'title="fluoroscopy 4 (100%)" data-total="4"' in epidural[INJECTATES.index("corticosteroid")]


def test_site_heatmap_of_no_site_case_says_so() -> None:
    assert site_heatmap(Counter()) == "<p>The site space was not enumerated.</p>"
    assert (
        site_heatmap(Counter({("prp", "spinal", "deep", "epidural", "fluoroscopy", ""): 3})) == "<p>The site space was not enumerated.</p>"
    )


def test_heatmaps_fold_the_site_away_and_draw_every_panel() -> None:
    heat: Counter[tuple[Any, ...]] = Counter(
        {
            ("prp", "spinal", "deep", "epidural", "fluoroscopy"): 2,
            ("prp", "spinal", "deep", "epidural", "fluoroscopy", "epidural_interlaminar"): 1,
            ("prp", "spinal", "deep", "epidural", "both", "x"): 1,
        }
    )
    page = heatmaps(heat)
    panels = re.findall(r'<div class="panel"><h3>([^<]+)</h3>(.*?)</table></div>', page)
    assert [title for title, _ in panels] == [f"{i} · {r}" for i in INJECTATES for r in REGIONS]
    for title, panel in panels:
        assert panel.startswith('<table class="grid"><tr><th></th>' + "".join(f'<th class="col">{t}</th>' for t in TISSUES) + "</tr>")
        assert re.findall(r"<tr><th>([^<]+)</th>", panel) == list(DEPTHS)
        cells = _cells(panel)
        assert len(cells) == len(DEPTHS) * len(TISSUES)
        filled = [c for c in cells if "data-total" in c]
        if title == "prp · spinal":
            assert filled == [cells[DEPTHS.index("deep") * len(TISSUES) + TISSUES.index("epidural")]]
            assert 'title="fluoroscopy 3 (75%), both 1 (25%)" data-total="4"' in filled[0]
        else:
            assert filled == []
    assert page.startswith('<div class="panels">') and page.endswith("</div></div>")


# ---- the page ------------------------------------------------------------------------------


def test_a_passing_report_page() -> None:
    free = SpaceResult(
        "free", 1_234_567, evaluated=1_234_567, valid=7_654, heat=Counter({("prp", "spinal", "deep", "epidural", "fluoroscopy"): 1})
    )
    page = render_html(report([Finding("warning", "subsumed", "A is subsumed")], [free], {"B": 0, "A": 10, "C": 40}))
    assert page.startswith("<!doctype html>\n") and '<span class="verdict pass">PASSED</span>' in page and "FAILED" not in page
    assert "<title>guidance-rules audit 1.2.3</title>" in page
    assert "Rule base <b>1.2.3</b> <code>sha256:feed</code> ·\n3.14 s with 2 worker processes" in page
    assert '<table id="cases"><tr><th>space</th><th>enumerated</th><th>evaluated once</th><th>valid</th></tr>' in page
    assert "<tr><td>free</td><td>1,234,567</td><td>1,234,567</td><td>7,654</td></tr></table>" in page
    assert '<tr><td class="warning">warning</td><td>subsumed</td><td>A is subsumed</td></tr>' in page
    assert "<p>Field-by-field (no site) space: for each injectate" in page
    assert page.count('<div class="panel">') == len(INJECTATES) * len(REGIONS)
    assert "<p>The site space was not enumerated.</p>" in page and "<h2>Decision table</h2>" not in page
    modalities = '<tr><td><i class="sw" style="background:#2f6fb3"></i>ultrasound</td><td>1,234</td></tr>'
    assert f'<table id="modalities">{modalities}' in page and "landmark</td><td>7</td></tr>" in page
    assert "<p>Never fired: B</p>" in page
    rules = re.findall(
        r"<tr><td><code>(\w)</code></td><td>(\d+)</td><td><span class='bar' style='width:([\d.]+)px'></span></td></tr>", page
    )
    assert rules == [("C", "40", "300.0"), ("A", "10", "75.0"), ("B", "0", "0.0")]
    assert "Any modality present in a cell gets at least 12% of its width" in page
    assert '<i class="sw" style="background:#eee"></i>no valid case (contradiction)</span>' in page


def test_a_failing_report_page_lists_findings_with_their_cases() -> None:
    findings = [
        Finding("error", "gap", "no rule <rated>", {"site": "knee", "anatomy_variance": ["effusion"]}),
        Finding("warning", "w", "m"),
    ]
    page = render_html(report(findings))
    assert '<span class="verdict fail">FAILED</span>' in page and "PASSED" not in page
    assert (
        '<tr><td class="error">error</td><td>gap</td><td>no rule &lt;rated&gt;'
        "<br><code>{&quot;site&quot;: &quot;knee&quot;, &quot;anatomy_variance&quot;: [&quot;effusion&quot;]}</code></td></tr>"
    ) in page
    assert "<td>m</td></tr>" in page and "<td>m<br>" not in page
    assert "<p>No case space was enumerated.</p>" in page and "No findings." not in page


def test_an_empty_report_page() -> None:
    page = render_html(report(rule_counts={}))
    assert "<tr><td colspan=3>No findings.</td></tr>" in page
    assert "<p>Never fired: none</p>" in page
    assert "<p> space: for each injectate" in page  # no space: no name


def test_no_rule_fired_draws_empty_bars() -> None:
    page = render_html(report(rule_counts={"A": 0}))
    assert "<tr><td><code>A</code></td><td>0</td><td><span class='bar' style='width:0.0px'></span></td></tr>" in page


def test_the_pictures_come_from_the_named_spaces() -> None:
    free_heat: Counter[tuple[Any, ...]] = Counter({("prp", "spinal", "deep", "epidural", "fluoroscopy"): 1})
    site_heat: Counter[tuple[Any, ...]] = Counter({("cell_based", "peripheral", "deep", "joint", "landmark", "knee"): 6})
    sites = SpaceResult("sites", 10, heat=site_heat)
    page = render_html(report(spaces=[sites, SpaceResult("free", 10, heat=free_heat)]))
    assert "<p>Field-by-field (no site) space" in page
    assert page.count('title="fluoroscopy 1 (100%)"') == 1 and 'id="site-grid"' in page
    assert page.count('title="landmark 6 (100%)"') == 1  # the site grid only: the panels draw the free space
    only_sites = render_html(report(spaces=[sites]))
    assert "<p>Site space: for each injectate" in only_sites  # without the free space, the first is drawn
    assert 'id="site-grid"' in only_sites
    other = render_html(report(spaces=[SpaceResult("approach", 10, heat=site_heat)]))
    assert "<p>approach space: for each injectate" in other and "<p>The site space was not enumerated.</p>" in other


def test_decision_tables_follow_when_given() -> None:
    tables = [SiteTable("hip", "Hip", "d", ("prp",), (((), (Modality.FLUOROSCOPY,)),))]
    page = render_html(report(), tables)
    assert (
        "<h2>Decision table</h2><p>For each catalogue site: injectate by set of anatomy variances, every other field at the "
        "site's defaults (also <code>guidance-rules table</code>).</p>" + to_html(tables, standalone=False)
    ) in page
    assert "<h2>Decision table</h2>" not in render_html(report(), [])


def test_write_html_writes_the_page(tmp_path: Path) -> None:
    path = tmp_path / "audit.html"
    findings = [Finding("warning", "w", "naïve — ünïcode")]
    write_html(report(findings), path)
    assert path.read_text(encoding="utf-8") == render_html(report(findings))
    tables = [SiteTable("hip", "Hip", "d", ("prp",), (((), (Modality.FLUOROSCOPY,)),))]
    write_html(report(), path, tables)
    assert "<h2>Decision table</h2>" in path.read_text(encoding="utf-8")


# ---- sections compared whole -----------------------------------------------------------------


def test_a_share_just_under_the_minimum_is_raised_to_it() -> None:
    got = widths(Counter({"ultrasound": 881, "landmark": 119}))  # 11.9 %
    assert got == {"ultrasound": 100 - MIN_SHARE, "landmark": MIN_SHARE}


def _between(page: str, start: str, end: str) -> str:
    """The text from `start` up to and including the first `end` after it."""
    i = page.index(start)
    return page[i : page.index(end, i) + len(end)]


LEGEND = (
    '<p class="legend"><span><i class="sw" style="background:#2f6fb3"></i>ultrasound</span>'
    '<span><i class="sw" style="background:#d9822b"></i>fluoroscopy</span>'
    '<span><i class="sw" style="background:#7b4fa6"></i>both</span>'
    '<span><i class="sw" style="background:#3f9a4a"></i>landmark</span>'
    '<span><i class="sw" style="background:#eee"></i>no valid case (contradiction)</span></p>'
    '<p class="legend">Any modality present in a cell gets at least 12% of its width; hover for exact counts.</p>'
)


def test_the_tables_of_the_page_compared_whole() -> None:
    free = SpaceResult("free", 1_500, evaluated=1_500, valid=1_000)
    sites = SpaceResult("sites", 20, evaluated=20, valid=5)
    findings = [Finding("error", "gap", "g", {"site": "knee"}), Finding("warning", "w", "m")]
    page = render_html(report(findings, [free, sites], {"B": 0, "A": 10, "C": 0}))
    assert '<h1>Rule-coverage audit <span class="verdict fail">FAILED</span></h1>' in page
    assert _between(page, '<table id="cases">', "</table>") == (
        '<table id="cases"><tr><th>space</th><th>enumerated</th><th>evaluated once</th><th>valid</th></tr>'
        "<tr><td>free</td><td>1,500</td><td>1,500</td><td>1,000</td></tr>"
        "<tr><td>sites</td><td>20</td><td>20</td><td>5</td></tr></table>"
    )
    assert _between(page, '<table id="findings">', "</table>") == (
        '<table id="findings"><tr><th>level</th><th>check</th><th>detail</th></tr>'
        '<tr><td class="error">error</td><td>gap</td><td>g<br><code>{&quot;site&quot;: &quot;knee&quot;}</code></td></tr>'
        '<tr><td class="warning">warning</td><td>w</td><td>m</td></tr></table>'
    )
    assert _between(page, '<table id="modalities">', "</table>") == (
        '<table id="modalities"><tr><td><i class="sw" style="background:#2f6fb3"></i>ultrasound</td><td>1,234</td></tr>'
        '<tr><td><i class="sw" style="background:#d9822b"></i>fluoroscopy</td><td>5</td></tr>'
        '<tr><td><i class="sw" style="background:#7b4fa6"></i>both</td><td>0</td></tr>'
        '<tr><td><i class="sw" style="background:#3f9a4a"></i>landmark</td><td>7</td></tr></table>'
    )
    assert _between(page, '<table id="rules">', "</table>") == (
        '<table id="rules"><tr><th>rule</th><th>cases</th><th></th></tr>'
        "<tr><td><code>A</code></td><td>10</td><td><span class='bar' style='width:300.0px'></span></td></tr>"
        "<tr><td><code>B</code></td><td>0</td><td><span class='bar' style='width:0.0px'></span></td></tr>"
        "<tr><td><code>C</code></td><td>0</td><td><span class='bar' style='width:0.0px'></span></td></tr></table>"
    )
    assert "<p>Never fired: B, C</p>" in page
    assert f"cases by recommended modality; hover for counts.</p>\n{LEGEND}\n{heatmaps(free.heat)}\n<h2>" in page
    assert f"every set of anatomy variances and every flag.</p>\n{site_heatmap(sites.heat)}\n\n<h2>Modality counts" in page


def test_a_page_without_findings_or_spaces_compared_by_section() -> None:
    page = render_html(report())
    assert '<h1>Rule-coverage audit <span class="verdict pass">PASSED</span></h1>' in page
    assert _between(page, '<table id="findings">', "</table>") == (
        '<table id="findings"><tr><th>level</th><th>check</th><th>detail</th></tr><tr><td colspan=3>No findings.</td></tr></table>'
    )
    assert f"hover for counts.</p>\n{LEGEND}\n<p>No case space was enumerated.</p>\n<h2>" in page
    assert "every flag.</p>\n<p>The site space was not enumerated.</p>\n\n<h2>Modality counts" in page


def test_grids_have_nothing_between_their_cells_rows_and_panels() -> None:
    page = heatmaps(Counter())
    panels = len(INJECTATES) * len(REGIONS)
    assert page.count('</table></div><div class="panel">') == panels - 1
    assert page.count("</td><td>") == panels * len(DEPTHS) * (len(TISSUES) - 1)
    assert page.count("</tr><tr>") == panels * len(DEPTHS)  # the head row, then each depth
    assert page.count('<td><div class="cell" title="no valid case"></div></td>') == panels * len(DEPTHS) * len(TISSUES)
    grid = site_heatmap(Counter({("prp", "a", "b", "c", "landmark", "knee"): 1, ("prp", "a", "b", "c", "landmark", "hip"): 1}))
    assert grid.count("</td><td>") == 2 * (len(INJECTATES) - 1) and grid.count("</tr><tr>") == 2
    assert grid.count('<td><div class="cell" title="no valid case"></div></td>') == 2 * (len(INJECTATES) - 1)
