"""Fast unit tests of the decision table (guidance_rules.audit.table): the tables of two sites cell by
cell against `recommend`, a contradiction left out and said, a partial contradiction or engine
fault never a silent gap, and each format of hand-made tables to the character (issue 24:
mutation testing of the audit)."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from guidance_rules.audit.table import SiteTable, decision_tables, render, to_csv, to_html, to_markdown
from guidance_rules.errors import EngineError
from guidance_rules.model import Modality
from guidance_rules.recommendation.recommender import Recommender
from guidance_rules.rulebase.conditions import CASE_FIELDS
from guidance_rules.rulebase.load import default_knowledge, load
from guidance_rules.rulebase.space import VARIANCE_SETS
from tests.conftest import find_rule

KB = default_knowledge()
REC = Recommender(KB, cache_size=0)
TWO = dataclasses.replace(KB, sites={key: KB.sites[key] for key in ("knee", "epidural_interlaminar")})
ONE = dataclasses.replace(KB, sites={"knee": KB.sites["knee"]})
INJECTATES = tuple(CASE_FIELDS["injectate"].values)
US, FL, BOTH, LM = Modality.ULTRASOUND, Modality.FLUOROSCOPY, Modality.BOTH, Modality.LANDMARK


def test_each_cell_is_the_answer_recommend_gives() -> None:
    tables = decision_tables(TWO, REC)
    assert [t.site for t in tables] == ["knee", "epidural_interlaminar"]
    for table in tables:
        assert table.title == KB.sites[table.site].title and table.injectates == INJECTATES
        shown = [variances for variances, _ in table.rows]
        left_out = [variances for variances, _ in table.omitted]
        assert sorted(shown + left_out) == sorted(VARIANCE_SETS) and shown == [v for v in VARIANCE_SETS if v in shown]
        for variances, modalities in table.rows:
            for injectate, modality in zip(INJECTATES, modalities, strict=True):
                case = {"site": table.site, "injectate": injectate, "anatomy_variance": list(variances)}
                assert REC.recommend(case).modality is modality, case


def test_the_site_defaults_are_shown() -> None:
    knee, epidural = decision_tables(TWO, REC)
    assert knee.defaults == (
        "peripheral: depth=superficial, tissue=joint, target_size=large, palpable=true, near_neurovascular=false, "
        "bone_obscures_path=false, precise_plane=false"
    )
    assert epidural.defaults.startswith("spinal: depth=deep, tissue=epidural, target_size=small, palpable=false, near_neurovascular=true")


def test_a_variance_set_the_site_contradicts_is_omitted_with_its_constraint() -> None:
    knee, epidural = decision_tables(TWO, REC)
    assert knee.omitted == () and len(knee.rows) == len(VARIANCE_SETS)
    [constraint] = [c for c in KB.constraints if c.id == "C-EFFUSION-TISSUE"]
    assert epidural.omitted == tuple((v, f"C-EFFUSION-TISSUE: {constraint.message}") for v in VARIANCE_SETS if "effusion" in v)
    assert all("effusion" not in v for v, _ in epidural.rows) and len(epidural.rows) == len(VARIANCE_SETS) - len(epidural.omitted)


class Planted:
    """The real recommender, with some answers replaced (by case index in each call)."""

    def __init__(self, replace: Mapping[int, Exception]) -> None:
        self.replace = replace

    def recommend_many(self, cases: Sequence[Mapping[str, Any]]) -> list[Any]:
        answers: list[Any] = REC.recommend_many(cases)
        return [self.replace.get(i, answer) for i, answer in enumerate(answers)]

    def resolve(self, case: Mapping[str, Any]) -> Any:
        return REC.resolve(case)


def _invalid(message: str) -> ValidationError:
    return ValidationError.from_exception_data(
        "Case", [{"type": "value_error", "loc": ("site",), "input": "x", "ctx": {"error": ValueError(message)}}]
    )


def test_a_contradiction_for_some_injectates_only_is_raised_not_skipped() -> None:
    error = _invalid("only for prp")
    with pytest.raises(ValidationError, match="only for prp"):
        decision_tables(ONE, Planted({len(INJECTATES) * 3 + 1: error}))  # type: ignore[arg-type]


def test_an_engine_fault_is_raised() -> None:
    with pytest.raises(EngineError, match="planted"):
        decision_tables(ONE, Planted({len(INJECTATES) * 15 + 5: EngineError("planted")}))  # type: ignore[arg-type]


def test_a_contradiction_no_constraint_names_is_said_as_given() -> None:
    row = range(len(INJECTATES) * 2, len(INJECTATES) * 3)  # the third variance set, every injectate
    errors: dict[int, Exception] = {i: _invalid("strange" if i == row[0] else "another") for i in row}  # the first injectate's is said
    [table] = decision_tables(ONE, Planted(errors))  # type: ignore[arg-type]
    assert table.omitted == ((VARIANCE_SETS[2], "Value error, strange"),)
    assert len(table.rows) == len(VARIANCE_SETS) - 1 and VARIANCE_SETS[2] not in [v for v, _ in table.rows]


# ---- formats -------------------------------------------------------------------------------

TABLE = SiteTable(
    "knee",
    "Knee <joint>",
    "peripheral: depth=deep",
    ("prp", "cell_based"),
    (((), (US, LM)), (("effusion", "obesity"), (BOTH, FL))),
    ((("x",), "C-1: because"), (("y", "z"), "C-1: because"), (("w",), "C-2: other")),
)
PLAIN = SiteTable("hip", "Hip", "peripheral: depth=deep", ("prp",), (((), (FL,)),))


def test_csv_is_one_row_per_cell() -> None:
    assert to_csv([TABLE, PLAIN]) == (
        "site,injectate,anatomy_variance,modality\n"
        "knee,prp,,ultrasound\n"
        "knee,cell_based,,landmark\n"
        "knee,prp,effusion;obesity,both\n"
        "knee,cell_based,effusion;obesity,fluoroscopy\n"
        "hip,prp,,fluoroscopy\n"
    )
    assert to_csv([]) == "site,injectate,anatomy_variance,modality\n"


def test_markdown_tables_with_omitted_sets_said_once_per_reason() -> None:
    assert to_markdown([TABLE, PLAIN]) == (
        "# Decision table\n"
        "\n"
        "Recommended modality for each site, injectate and set of anatomy variances, with every other field at the "
        "site's defaults. US = ultrasound, FL = fluoroscopy, US+FL = both, LM = landmark.\n"
        "\n"
        "## Knee <joint> (`knee`)\n"
        "\n"
        "Defaults: peripheral: depth=deep\n"
        "\n"
        "| anatomy variance | prp | cell_based |\n"
        "|---|---|---|\n"
        "| none | US | LM |\n"
        "| effusion + obesity | US+FL | FL |\n"
        "\n"
        "Not valid here, so not shown: x, y + z (C-1: because). Not valid here, so not shown: w (C-2: other).\n"
        "\n"
        "## Hip (`hip`)\n"
        "\n"
        "Defaults: peripheral: depth=deep\n"
        "\n"
        "| anatomy variance | prp |\n"
        "|---|---|\n"
        "| none | FL |\n"
    )


def test_html_fragment_is_escaped_and_coloured() -> None:
    fragment = to_html([TABLE, PLAIN], standalone=False)
    assert fragment == (
        '<div class="decision-tables">'
        '<div class="site-table" id="site-knee"><h3>Knee &lt;joint&gt; <code>knee</code></h3>'
        '<p class="defaults">peripheral: depth=deep</p>'
        '<table class="decision"><tr><th>anatomy variance</th><th>prp</th><th>cell_based</th></tr>'
        '<tr><th>none</th><td class="dt" style="background:#2f6fb3" title="ultrasound">US</td>'
        '<td class="dt" style="background:#3f9a4a" title="landmark">LM</td></tr>'
        '<tr><th>effusion + obesity</th><td class="dt" style="background:#7b4fa6" title="both">US+FL</td>'
        '<td class="dt" style="background:#d9822b" title="fluoroscopy">FL</td></tr></table>'
        '<p class="omitted">Not valid here, so not shown: x, y + z (C-1: because). Not valid here, so not shown: w (C-2: other).</p>'
        "</div>"
        '<div class="site-table" id="site-hip"><h3>Hip <code>hip</code></h3><p class="defaults">peripheral: depth=deep</p>'
        '<table class="decision"><tr><th>anatomy variance</th><th>prp</th></tr>'
        '<tr><th>none</th><td class="dt" style="background:#d9822b" title="fluoroscopy">FL</td></tr></table>'
        "</div></div>"
    )


def test_html_page_wraps_the_fragment() -> None:
    from guidance_rules.audit.table import CSS

    page = to_html([PLAIN])
    assert page == (
        '<!doctype html>\n<html lang="en"><head><meta charset="utf-8"><title>guidance-rules decision table</title>'
        f"<style>{CSS}</style></head><body><h1>Decision table</h1>"
        "<p>Recommended modality for each site, injectate and set of anatomy variances, every other field at the "
        f"site's defaults.</p>{to_html([PLAIN], standalone=False)}</body></html>\n"
    )
    assert to_html([PLAIN], True) == page


def test_a_table_row_without_a_cell_per_injectate_is_an_error() -> None:
    short = SiteTable("hip", "Hip", "d", ("prp", "other"), (((), (FL,)),))
    with pytest.raises(ValueError, match="zip"):
        to_csv([short])


def test_the_tables_are_the_given_rule_base_s_own(rule_copy: Callable[..., Path]) -> None:
    """Without a recommender the table compiles the rule base it is given (not the shipped one)."""

    def retire(data: dict[str, Any]) -> None:
        find_rule(data, "LU-EFFUSION")["status"] = "retired"

    changed = load(rule_copy("landmark.yaml", retire))
    knee = dataclasses.replace(changed, sites={"knee": changed.sites["knee"]})
    [table] = decision_tables(knee)
    [shipped] = decision_tables(ONE, REC)
    assert table.rows != shipped.rows
    new = Recommender(changed, cache_size=0)
    for variances, modalities in table.rows:
        for injectate, modality in zip(INJECTATES, modalities, strict=True):
            assert new.recommend({"site": "knee", "injectate": injectate, "anatomy_variance": list(variances)}).modality is modality


def test_render_gives_each_format_for_the_rule_base() -> None:
    tables = decision_tables(ONE, REC)
    assert render(ONE, "csv") == to_csv(tables)
    assert render(ONE, "md") == to_markdown(tables)
    assert render(ONE, "html") == to_html(tables)
