"""Fast unit tests of the rule-change page (guidance_rules.audit.diff_report) on hand-made diff
reports: the header, the verdict, the case counts, each grid and its shading, and the groups
(issue 24: mutation testing of the audit)."""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path

from guidance_rules.audit.diff import DiffReport, Group
from guidance_rules.audit.diff_report import CSS, render, write_html
from guidance_rules.rulebase.conditions import CASE_FIELDS

INJECTATES = list(CASE_FIELDS["injectate"].values)
TISSUES = list(CASE_FIELDS["tissue"].values)
ROWS = [f"{r} {d}" for r in CASE_FIELDS["region"].values for d in CASE_FIELDS["depth"].values]
OLD = {"version": "1.0.0", "digest": "sha256:0123456789abcdef0123456789"}
NEW = {"version": "1.1.0", "digest": "sha256:fedcba9876543210fedcba9876"}


def group(space: str = "sites", site: str = "knee", count: int = 1234) -> Group:
    g = Group(space, site, "landmark", "ultrasound", count)
    g.parts.update({"modality": count, "ratings": 3})
    g.rules_old_only.update({"LU-X": 5})
    g.rules_new_only.update({"LM-Y": 1200})
    g.example = {"site": site, "injectate": "prp", "note": "<b>"}
    return g


def diff(groups: list[Group], cells: dict[str, Counter[tuple[str, ...]]], cases: dict[str, dict[str, int]] | None = None) -> DiffReport:
    return DiffReport(OLD, NEW, cases or {}, groups, [], [], cells, 1.0, 1)


def _grid(page: str, label: str) -> str:
    [found] = re.findall(rf'<table class="grid" aria-label="{label}">(.*?)</table>', page)
    return str(found)


def test_an_unchanged_report() -> None:
    page = render(diff([], {}, {"sites": {"enumerated": 12345, "valid_old": 1000, "valid_new": 999, "changed": 0}}), "a<", "b")
    assert page.startswith("<!doctype html><html lang=en><meta charset=utf-8><title>Rule-change impact</title>\n<style>")
    assert page.endswith("\n</html>")
    assert "<h1>Rule-change impact</h1>" in page
    assert "<p><code>a&lt;</code> (1.0.0, sha256:0123456789ab) → <code>b</code> (1.1.0, sha256:fedcba987654)</p>" in page
    assert '<p><span class="verdict same">UNCHANGED</span></p>' in page
    assert "<tr><td>sites</td><td>12,345</td><td>1,000</td><td>999</td><td>0</td></tr>" in page
    assert "<p>No case's answer differs.</p>" in page and "aria-label" not in page


def test_default_folder_names() -> None:
    page = render(diff([], {}))
    assert "<p><code>old</code> (1.0.0," in page and "<code>new</code> (1.1.0," in page


def test_a_changed_report_lists_its_groups() -> None:
    groups = [group(), group("free", "", 7)]
    page = render(diff(groups, {}))
    assert '<p><span class="verdict changed">CHANGED: 1,241 cases</span></p>' in page
    assert (
        "<tr><th>space</th><th>site</th><th>old → new</th><th>cases</th><th>changed</th><th>rules firing differently</th>"
        "<th>example</th></tr>"
    ) in page
    assert (
        "<tr><td>sites</td><td>knee</td><td>landmark → ultrasound</td><td>1,234</td><td>modality 1,234, ratings 3</td>"
        "<td>LM-Y (old 0 / new 1,200), LU-X (old 5 / new 0)</td>"
        "<td><code>{&quot;site&quot;: &quot;knee&quot;, &quot;injectate&quot;: &quot;prp&quot;, "
        "&quot;note&quot;: &quot;&lt;b&gt;&quot;}</code></td></tr>"
    ) in page
    assert "<tr><td>free</td><td>—</td><td>landmark → ultrasound</td><td>7</td>" in page
    bare = Group("sites", "hip", "both", "both", 2)
    assert "<td>2</td><td></td><td>—</td><td><code>null</code></td></tr>" in render(diff([bare], {}))


def test_a_new_site_alone_is_a_change() -> None:
    report = DiffReport(OLD, NEW, {}, [], ["new_site"], [], {}, 1.0, 1)
    assert '<span class="verdict changed">CHANGED: 0 cases</span>' in render(report)


def test_site_and_equipment_cells_share_one_grid_shaded_by_the_changed_share() -> None:
    sites: Counter[tuple[str, ...]] = Counter(
        {("knee", "prp", "valid"): 8, ("knee", "prp", "changed"): 2, ("hip", "prp", "valid"): 4, ("hip", "other", "changed"): 0}
    )
    equipment: Counter[tuple[str, ...]] = Counter(
        {("knee", "prp", "valid"): 2, ("elbow", "prp", "valid"): 3, ("elbow", "prp", "changed"): 3}
    )
    page = render(diff([group()], {"sites": sites, "equipment": equipment}))
    assert '<div class="panel"><h3>Site cases (with every set of equipment): site x injectate</h3>' in page
    grid = _grid(page, "site cases")
    assert grid.startswith("<tr><th></th>" + "".join(f'<th class="col">{i}</th>' for i in INJECTATES) + "</tr>")
    rows = dict(re.findall(r"<tr><th>(\w+)</th>(.*?)</tr>", grid))
    assert list(rows) == ["elbow", "hip", "knee"]  # sorted
    prp = INJECTATES.index("prp")
    knee = re.findall(r"<td>(.*?)</td>", rows["knee"])
    assert knee[prp] == '<div class="cell" style="background:rgba(198,40,40,0.296)" title="2 of 10 changed (20.0%)" data-changed="2"></div>'
    assert knee[0 if prp else 1] == '<div class="cell none" title="no valid case"></div>'
    hip = re.findall(r"<td>(.*?)</td>", rows["hip"])
    assert hip[prp] == '<div class="cell" style="background:#fff" title="0 of 4 changed (0.0%)" data-changed="0"></div>'
    elbow = re.findall(r"<td>(.*?)</td>", rows["elbow"])
    assert (
        elbow[prp] == '<div class="cell" style="background:rgba(198,40,40,1.000)" title="3 of 3 changed (100.0%)" data-changed="3"></div>'
    )
    assert "Approach cases" not in page and "Field-by-field" not in page


def test_large_counts_in_a_cell_are_grouped() -> None:
    cells: Counter[tuple[str, ...]] = Counter({("knee", "prp", "valid"): 12000, ("knee", "prp", "changed"): 1500})
    page = render(diff([], {"sites": cells}))
    assert 'title="1,500 of 12,000 changed (12.5%)" data-changed="1500"' in page


def test_approach_cells_have_their_own_grid() -> None:
    cells: Counter[tuple[str, ...]] = Counter({("knee superolateral", "prp", "valid"): 1, ("knee anteromedial", "prp", "valid"): 1})
    page = render(diff([], {"approach": cells}))
    assert '<div class="panel"><h3>Approach cases: site and approach x injectate</h3>' in page
    assert re.findall(r"<tr><th>([\w ]+)</th>", _grid(page, "approach cases")) == ["knee anteromedial", "knee superolateral"]
    assert "Site cases" not in page


def test_free_cells_give_one_panel_per_injectate() -> None:
    cells: Counter[tuple[str, ...]] = Counter(
        {("prp", "spinal deep", "epidural", "valid"): 4, ("prp", "spinal deep", "epidural", "changed"): 1}
    )
    page = render(diff([], {"free": cells}))
    assert '<h3>Field-by-field cases: region and depth x tissue, one panel per injectate</h3><div class="panels">' in page
    assert re.findall(r'<div class="panel"><h3>([^<]+)</h3>', page) == INJECTATES
    for injectate in INJECTATES:
        grid = _grid(page, f"free cases, {injectate}")
        assert grid.startswith("<tr><th></th>" + "".join(f'<th class="col">{t}</th>' for t in TISSUES) + "</tr>")
        assert re.findall(r"<tr><th>([\w ]+)</th>", grid) == ROWS
        assert grid.count('data-changed="1"') == (injectate == "prp")
    assert "Site cases" not in page and "Approach cases" not in page


def test_write_html_writes_the_page(tmp_path: Path) -> None:
    path = tmp_path / "diff.html"
    write_html(diff([group()], {}), path, "ä", "ö")
    assert path.read_text(encoding="utf-8") == render(diff([group()], {}), "ä", "ö")
    write_html(diff([], {}), path)
    assert path.read_text(encoding="utf-8") == render(diff([], {}))  # the default names: old, new


# ---- whole pages, part by part ---------------------------------------------------------------


def _expected_grid(label: str, rows: list[tuple[str, dict[str, str]]], cols: list[str]) -> str:
    """A grid as the page must draw it: `rows` are (row label, column -> cell div)."""
    none = '<div class="cell none" title="no valid case"></div>'
    head = "<tr><th></th>" + "".join(f'<th class="col">{c}</th>' for c in cols) + "</tr>"
    body = "".join(f"<tr><th>{name}</th>" + "".join(f"<td>{cells.get(c, none)}</td>" for c in cols) + "</tr>" for name, cells in rows)
    return f'<table class="grid" aria-label="{label}">{head}{body}</table>'


HALF = '<div class="cell" style="background:rgba(198,40,40,0.560)" title="1 of 2 changed (50.0%)" data-changed="1"></div>'
NONE_CHANGED = '<div class="cell" style="background:#fff" title="0 of 1 changed (0.0%)" data-changed="0"></div>'
HEAD = [
    "<!doctype html><html lang=en><meta charset=utf-8><title>Rule-change impact</title>",
    f"<style>{CSS}</style>",
    "<h1>Rule-change impact</h1>",
    "<p><code>old</code> (1.0.0, sha256:0123456789ab) → <code>new</code> (1.1.0, sha256:fedcba987654)</p>",
]
CASES = [
    "<table><tr><th>space</th><th>enumerated</th><th>valid before</th><th>valid after</th><th>changed</th></tr>",
    "<tr><td>sites</td><td>10</td><td>9</td><td>8</td><td>1</td></tr>",
    "</table>",
    "<h2>Where the answers changed</h2>",
    "<p>Each cell is shaded by the share of its valid cases whose answer changed; hover for counts. Hatched: no valid case.</p>",
]


def test_a_page_with_site_and_approach_grids_and_a_group_part_by_part() -> None:
    sites: Counter[tuple[str, ...]] = Counter({("knee", "prp", "valid"): 2, ("knee", "prp", "changed"): 1})
    approach: Counter[tuple[str, ...]] = Counter({("knee superolateral", "prp", "valid"): 1})
    cases = {"sites": {"enumerated": 10, "valid_old": 9, "valid_new": 8, "changed": 1}}
    bare = Group("sites", "knee", "landmark", "ultrasound", 1)
    page = render(diff([bare], {"sites": sites, "approach": approach}, cases))
    assert page == "\n".join(
        [
            *HEAD,
            '<p><span class="verdict changed">CHANGED: 1 cases</span></p>',
            *CASES,
            '<div class="panel"><h3>Site cases (with every set of equipment): site x injectate</h3>',
            _expected_grid("site cases", [("knee", {"prp": HALF})], INJECTATES),
            "</div>",
            '<div class="panel"><h3>Approach cases: site and approach x injectate</h3>',
            _expected_grid("approach cases", [("knee superolateral", {"prp": NONE_CHANGED})], INJECTATES),
            "</div>",
            "<h2>Groups</h2>",
            "<table><tr><th>space</th><th>site</th><th>old → new</th><th>cases</th><th>changed</th><th>rules firing differently</th>"
            "<th>example</th></tr>",
            "<tr><td>sites</td><td>knee</td><td>landmark → ultrasound</td><td>1</td><td></td><td>—</td><td><code>null</code></td></tr>",
            "</table>",
            "</html>",
        ]
    )


def test_a_page_with_free_panels_and_no_group_part_by_part() -> None:
    free: Counter[tuple[str, ...]] = Counter(
        {("prp", "spinal deep", "epidural", "valid"): 2, ("prp", "spinal deep", "epidural", "changed"): 1}
    )
    cases = {"sites": {"enumerated": 10, "valid_old": 9, "valid_new": 8, "changed": 1}}
    page = render(diff([], {"free": free}, cases))
    panels = []
    for injectate in INJECTATES:
        rows = [(row, {"epidural": HALF} if (injectate, row) == ("prp", "spinal deep") else {}) for row in ROWS]
        panels += [f'<div class="panel"><h3>{injectate}</h3>', _expected_grid(f"free cases, {injectate}", rows, TISSUES), "</div>"]
    assert page == "\n".join(
        [
            *HEAD,
            '<p><span class="verdict same">UNCHANGED</span></p>',
            *CASES,
            '<h3>Field-by-field cases: region and depth x tissue, one panel per injectate</h3><div class="panels">',
            *panels,
            "</div>",
            "<h2>Groups</h2>",
            "<p>No case's answer differs.</p>",
            "</html>",
        ]
    )
