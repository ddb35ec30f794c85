"""The floor behind a pydantic v2 model: the price of validating each case at a typed boundary."""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal

from pydantic import BaseModel, ConfigDict

from benchmarks.anchors import eng_hand
from benchmarks.anchors.decision import Answer, Case


class AnchorCase(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    site: Literal[
        "knee", "hip", "glenohumeral", "subacromial", "tendon_sheath", "bursa", "ligament", "facet", "epidural", "sacroiliac", "nerve"
    ]
    depth: Literal["superficial", "intermediate", "deep"]
    tissue: Literal["joint", "tendon", "ligament", "bursa", "nerve", "spinal"]
    cell_based: bool
    obesity: bool
    prior_surgery: bool
    near_neurovascular: bool
    needs_contrast: bool


def make() -> Callable[[Case], Answer]:
    validate = AnchorCase.model_validate
    floor = eng_hand.evaluate

    def evaluate(case: Case) -> Answer:
        return floor(validate(case).__dict__)

    return evaluate
