"""Cases as rows (`guidance_rules.recommendation.rows`), in process: a table's cells become case
fields as batch reads them, and a Scorer gives each row exactly one outcome, in order, answering
each distinct case once and never remembering a failure. Written against the mutation run of
issue 24."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pytest

from guidance_rules import Recommender
from guidance_rules.errors import EngineError
from guidance_rules.recommendation.rows import Outcome, Scorer, case_cells, failed_problems
from guidance_rules.rulebase.load import load

HIP = {"site": "hip", "injectate": "prp"}
KNEE = {"site": "knee", "injectate": "prp"}
HINT = "to carry it to the output pass id_col=NAME, to skip such columns pass ignore_extra=True"


class Array:
    """Stands for a numpy array or scalar: what `tolist()` gives is the cell's value."""

    def __init__(self, value: Any) -> None:
        self.value = value

    def tolist(self) -> Any:
        return self.value


NA = type("NAType", (), {})()  # pandas.NA's type name
NAT = type("NaTType", (), {})()  # pandas.NaT's


def test_a_failure_of_the_rule_base_is_the_whole_rows_problem() -> None:
    assert failed_problems(EngineError("no rule rated x")) == [("", "the rule base could not answer this case: no rule rated x")]


@pytest.mark.parametrize(
    ("cell", "value"),
    [
        ("Knee", "knee"),
        (True, True),
        (3, 3),
        (["Obesity"], ["obesity"]),
        (("obesity", "effusion"), ["obesity", "effusion"]),
        (Array(["obesity"]), ["obesity"]),
        (Array(("effusion",)), ["effusion"]),
        (Array(True), True),
        (b"knee", b"knee"),
        (2.5, 2.5),
    ],
)
def test_a_cell_is_read_as_plain_python(cell: Any, value: Any) -> None:
    field = {str: "site", bool: "palpable", int: "palpable"}.get(type(value), "anatomy_variance")
    ident, data, problems = case_cells({field: cell})
    assert (ident, data, problems) == (None, {field: value}, [])


@pytest.mark.parametrize("missing", [None, float("nan"), NA, NAT, Array(float("nan")), Array(None)])
def test_a_missing_cell_is_an_absent_field(missing: Any) -> None:
    assert case_cells({"site": "knee", "palpable": missing}) == (None, {"site": "knee"}, [])


def test_a_row_that_is_not_a_mapping_is_its_problem() -> None:
    assert case_cells(5) == (None, None, [("", "expected a mapping of case fields, got int")])
    assert case_cells(["knee"]) == (None, None, [("", "expected a mapping of case fields, got list")])


def test_the_id_column_is_carried_and_stays_in_the_case_when_it_is_a_field() -> None:
    assert case_cells({"id": Array(7), "site": "Knee", 3: "x"}, id_col="id", ignore_extra=True) == (7, {"site": "knee"}, [])
    assert case_cells({"id": 7, **KNEE}, id_col="id") == (7, KNEE, [])
    assert case_cells({**KNEE}, id_col="site") == ("knee", KNEE, [])
    assert case_cells({"site": "Knee"}, id_col="site") == ("Knee", {"site": "knee"}, [])
    assert case_cells({"id": float("nan"), **KNEE}, id_col="id") == (None, KNEE, [])
    assert case_cells({**KNEE}, id_col="id") == (None, KNEE, [])


def test_a_column_that_is_no_case_field_is_refused_unless_ignored() -> None:
    assert case_cells({**KNEE, "colour": "red", "sitee": "x", "blank": None}) == (
        None,
        None,
        [
            ("colour", f"'colour' is not a case field; {HINT}"),
            ("sitee", f"'sitee' is not a case field; did you mean 'site'? {HINT[0].upper()}{HINT[1:]}"),
        ],
    )
    assert case_cells({**KNEE, "colour": "red"}, ignore_extra=True) == (None, KNEE, [])
    assert case_cells({"id": 1, **KNEE, "colour": "red"}, id_col="id") == (1, None, [("colour", f"'colour' is not a case field; {HINT}")])


# -- the Scorer ----------------------------------------------------------------------------------


def counting() -> tuple[Scorer, list[str]]:
    fired: list[str] = []
    return Scorer(Recommender(cache_size=0, on_fire=fired.append)), fired


def test_each_row_gets_one_outcome_in_order() -> None:
    scorer, _ = counting()
    rec = Recommender()
    got = scorer.outcomes([KNEE, None, {"site": "knee"}, HIP, None, KNEE], [(), [("colour", "bad")], (), (), [("", "row")]])
    assert [o.status for o in got] == ["ok", "invalid", "invalid", "ok", "invalid", "ok"]
    assert got[0].answer == rec.recommend(KNEE) and got[3].answer == rec.recommend(HIP) and got[5] is got[0]
    assert got[1] == Outcome("invalid", problems=(("colour", "bad"),))
    assert got[4] == Outcome("invalid", problems=(("", "row"),))
    assert got[2].answer is None and got[2].problems[0][0] == "injectate" and got[2].problems[0][1].startswith("required; allowed: ")
    assert scorer.outcomes([None]) == [Outcome("invalid")]  # no problems given


def test_a_case_is_answered_once_and_remembered() -> None:
    scorer, fired = counting()
    first = scorer.outcomes([KNEE, KNEE, HIP])
    count = len(fired)
    assert first[0] is first[1]
    again = scorer.outcomes([HIP, KNEE])
    assert again[0] is first[2] and again[1] is first[0]
    assert len(fired) == count
    invalid = scorer.outcomes([{"site": "knee"}])
    assert scorer.outcomes([{"site": "knee"}])[0] is invalid[0]  # an invalid case is remembered too


def test_a_case_json_cannot_key_exactly_is_answered_every_time() -> None:
    scorer, fired = counting()
    odd = {**KNEE, "palpable": math.inf}  # not JSON: answered (invalid), never remembered under a text
    other = {**KNEE, "extra": {1, 2}}
    got = scorer.outcomes([odd, KNEE, other, odd])
    assert [o.status for o in got] == ["invalid", "ok", "invalid", "invalid"]
    assert got[0] is not got[3] and got[0] == got[3]
    assert got[0].problems[0][0] == "palpable" and got[2].problems[0][0] == "extra"
    count = len(fired)
    assert scorer.outcomes([KNEE, odd])[0] is got[1] and len(fired) == count


def gap(rule_copy: Any) -> Path:
    def narrow(data: dict[str, Any]) -> None:
        [rule] = [r for r in data["rules"] if r["id"] == "LM-FAVOURABLE"]
        rule["when"]["target_size"] = "small"

    return rule_copy("landmark.yaml", narrow)  # type: ignore[no-any-return]


def test_a_row_the_rule_base_cannot_answer_fails_and_is_not_remembered(rule_copy: Any) -> None:
    fired: list[str] = []
    scorer = Scorer(Recommender(load(gap(rule_copy)), cache_size=0, on_fire=fired.append))
    got = scorer.outcomes([KNEE, HIP, KNEE])
    assert [o.status for o in got] == ["failed", "ok", "failed"]
    assert got[0].answer is None and got[0].problems[0][0] == ""
    assert got[0].problems[0][1].startswith("the rule base could not answer this case: no rule rated")
    fired.clear()
    again = scorer.outcomes([KNEE])
    assert again[0].status == "failed" and again[0] is not got[0] and fired  # evaluated again, not a remembered failure


def test_a_tuple_cell_is_a_list() -> None:
    _ident, data, problems = case_cells({"palpable": ("x", "y")})
    assert data == {"palpable": ["x", "y"]} and type(data["palpable"]) is list and problems == []


def test_the_same_case_in_another_key_order_is_one_case() -> None:
    scorer, _fired = counting()
    first, second = scorer.outcomes([{"site": "knee", "injectate": "prp"}, {"injectate": "prp", "site": "knee"}])
    assert first is second


def test_an_invalid_site_lists_the_rule_bases_sites() -> None:
    scorer = Scorer(Recommender())
    [outcome] = scorer.outcomes([{"site": 5, "injectate": "prp"}])
    assert outcome.status == "invalid" and outcome.problems[0][0] == "site"
    assert outcome.problems[0][1].startswith("Input should be a valid string; allowed: knee, hip, ")
