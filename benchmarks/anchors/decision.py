"""The anchors' shared decision: its case space, its 12 rules and how fired rules become a modality.

Every anchor answers a case with (modality, sorted tuple of the names of the rules that fired);
the engines decide only which rules fire and then call `modality_of`, so they differ in
matching alone. None of this is clinical knowledge: it is a fixed workload for measuring.
"""

from __future__ import annotations

import itertools
from typing import Any

Case = dict[str, Any]
Answer = tuple[str, tuple[str, ...]]

SITES = ("knee", "hip", "glenohumeral", "subacromial", "tendon_sheath", "bursa", "ligament", "facet", "epidural", "sacroiliac", "nerve")
DEPTHS = ("superficial", "intermediate", "deep")
TISSUES = ("joint", "tendon", "ligament", "bursa", "nerve", "spinal")
FLAGS = ("cell_based", "obesity", "prior_surgery", "near_neurovascular", "needs_contrast")

# Each rule's effect on the modality: "us" (ultrasound), "fluoro", "both", "imaging" (some imaging,
# ultrasound unless something says more) or "landmark".
EFFECTS = {
    "soft_tissue_us": "us",
    "spinal_fluoro": "fluoro",
    "deep_joint_imaging": "imaging",
    "cell_based_imaging": "imaging",
    "habitus_imaging": "imaging",
    "neurovascular_us": "us",
    "contrast_fluoro": "fluoro",
    "hip_cell_contrast_both": "both",
    "superficial_landmark": "landmark",
    "nerve_target_us": "us",
    "sacroiliac_imaging": "imaging",
    "small_space_us": "us",
}
_SHOWS_US = frozenset(name for name, effect in EFFECTS.items() if effect in ("us", "both"))
_SHOWS_FLUORO = frozenset(name for name, effect in EFFECTS.items() if effect in ("fluoro", "both"))
_NEEDS_IMAGING = frozenset(name for name, effect in EFFECTS.items() if effect == "imaging")
_ALLOWS_LANDMARK = frozenset(name for name, effect in EFFECTS.items() if effect == "landmark")


def cases() -> list[Case]:
    """Every combination of the 8 fields, in a fixed order."""
    out = []
    for site, depth, tissue in itertools.product(SITES, DEPTHS, TISSUES):
        for flags in itertools.product((False, True), repeat=len(FLAGS)):
            out.append({"site": site, "depth": depth, "tissue": tissue, **dict(zip(FLAGS, flags, strict=True))})
    return out


def modality_of(fired: list[str]) -> Answer:
    """The modality the fired rules call for. A rule that fired twice stays twice in the names, so
    an engine that repeats an action disagrees with the floor and fails its check."""
    names = frozenset(fired)
    ultrasound = not _SHOWS_US.isdisjoint(names)
    fluoro = not _SHOWS_FLUORO.isdisjoint(names)
    if ultrasound and fluoro:
        modality = "both"
    elif ultrasound:
        modality = "ultrasound"
    elif fluoro:
        modality = "fluoroscopy"
    elif not _ALLOWS_LANDMARK.isdisjoint(names):
        modality = "landmark"
    elif not _NEEDS_IMAGING.isdisjoint(names):
        modality = "ultrasound"
    else:
        modality = "landmark"  # nothing calls for imaging
    return modality, tuple(sorted(fired))
