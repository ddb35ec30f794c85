"""An invariant's rating bounds: every bound written in invariants.yaml is loaded, and each one is
enforced on its own (issue 24: keeping only the last bound passed every test, since only one
shipped invariant has two)."""

from __future__ import annotations

from typing import Any

import pytest

from guidance_rules.audit.invariants import Answer, Invariant, load_invariants
from guidance_rules.model import Category, Modality
from guidance_rules.rulebase.load import load

US, FL, BOTH, LM = Modality.ULTRASOUND, Modality.FLUOROSCOPY, Modality.BOTH, Modality.LANDMARK
NOT, MAY, USUALLY = Category.USUALLY_NOT_APPROPRIATE, Category.MAY_BE_APPROPRIATE, Category.USUALLY_APPROPRIATE

PLANTED = {
    "id": "INV-PLANTED-BOUNDS",
    "statement": "Five bounds over three modalities, both kinds on two of them.",
    "when": {"site": "knee"},
    "must": {
        "ratings": {
            "ultrasound": {"at_least": "may_be_appropriate", "at_most": "usually_appropriate"},
            "both": {"at_least": "usually_not_appropriate", "at_most": "may_be_appropriate"},
            "landmark": {"at_most": "usually_not_appropriate"},
        }
    },
    "sources": [{"source": "article", "locator": "LM6"}],
    "examples": {"covers": [{"site": "knee", "injectate": "corticosteroid"}]},
}


def test_every_bound_of_an_invariant_is_loaded(rule_copy: Any) -> None:
    kb = load(rule_copy("invariants.yaml", lambda d: d["invariants"].append(PLANTED)))
    [invariant] = [i for i in load_invariants(kb).invariants if i.id == "INV-PLANTED-BOUNDS"]
    assert invariant.bounds == (
        (US, "at_least", MAY),
        (US, "at_most", USUALLY),
        (BOTH, "at_least", NOT),
        (BOTH, "at_most", MAY),
        (LM, "at_most", NOT),
    )


BOUNDS = ((US, "at_least", MAY), (FL, "at_most", MAY), (BOTH, "at_least", MAY), (BOTH, "at_most", MAY), (LM, "at_most", NOT))
INVARIANT = Invariant("INV-T", "test", (), (), BOUNDS, (), (), (), ())
SATISFIED = {US: USUALLY, FL: MAY, BOTH: MAY, LM: NOT}


def answer(**changed: Category) -> Answer:
    ratings = dict(SATISFIED)
    ratings.update({Modality(m): c for m, c in changed.items()})
    return Answer({}, ratings, frozenset())


def test_an_answer_within_every_bound_passes() -> None:
    assert INVARIANT.breach(answer()) is None
    assert INVARIANT.breach(answer(ultrasound=MAY, fluoroscopy=NOT)) is None  # at the bound is within it


@pytest.mark.parametrize(
    ("changed", "said"),
    [
        ({"ultrasound": NOT}, "required ultrasound rated at least may_be_appropriate, but it is rated usually_not_appropriate"),
        ({"fluoroscopy": USUALLY}, "required fluoroscopy rated at most may_be_appropriate, but it is rated usually_appropriate"),
        ({"both": NOT}, "required both rated at least may_be_appropriate, but it is rated usually_not_appropriate"),
        ({"both": USUALLY}, "required both rated at most may_be_appropriate, but it is rated usually_appropriate"),
        ({"landmark": MAY}, "required landmark rated at most usually_not_appropriate, but it is rated may_be_appropriate"),
    ],
)
def test_each_bound_is_enforced_on_its_own(changed: dict[str, Category], said: str) -> None:
    """One bound broken at a time, every other rating within its bounds: each is caught."""
    assert INVARIANT.breach(answer(**changed)) == said
