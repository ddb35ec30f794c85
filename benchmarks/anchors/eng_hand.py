"""The anchors' decision as plain if/else: the floor, and the answer every other anchor must give."""

from __future__ import annotations

from collections.abc import Callable

from benchmarks.anchors.decision import Answer, Case, modality_of

_SOFT_TISSUE = frozenset(("tendon", "ligament", "bursa"))
_SPINAL_SITES = frozenset(("facet", "epidural"))
_SMALL_SPACES = frozenset(("tendon_sheath", "subacromial"))


def evaluate(case: Case) -> Answer:
    site, depth, tissue = case["site"], case["depth"], case["tissue"]
    cell, contrast, neurovascular = case["cell_based"], case["needs_contrast"], case["near_neurovascular"]
    habitus = case["obesity"] or case["prior_surgery"]
    checks = (
        ("soft_tissue_us", tissue in _SOFT_TISSUE),
        ("spinal_fluoro", tissue == "spinal" or site in _SPINAL_SITES),
        ("deep_joint_imaging", depth == "deep" and tissue == "joint"),
        ("cell_based_imaging", cell),
        ("habitus_imaging", habitus),
        ("neurovascular_us", neurovascular),
        ("contrast_fluoro", contrast),
        ("hip_cell_contrast_both", site == "hip" and cell and contrast),
        ("superficial_landmark", depth == "superficial" and tissue == "joint" and not (cell or habitus or neurovascular)),
        ("nerve_target_us", tissue == "nerve" or site == "nerve"),
        ("sacroiliac_imaging", site == "sacroiliac"),
        ("small_space_us", site in _SMALL_SPACES),
    )
    return modality_of([name for name, holds in checks if holds])


def make() -> Callable[[Case], Answer]:
    return evaluate
