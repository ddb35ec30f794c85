"""The input model: the public enums and `Case`, plain validated data.

Names and values follow `shared/spec/contract.md`. A `Case` knows nothing of any rule base:
which sites exist, how absent values are filled and which combinations contradict each other
are read from `rules/` when a `Recommender` resolves the case (`rulebase.resolve`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from enum import StrEnum
from typing import TYPE_CHECKING, Any, Literal, get_args, get_origin

from pydantic import BaseModel, ConfigDict, Field, StrictBool, ValidationInfo, field_validator

LIST_LIMIT = 8  # longest list a case field may hold; checked before any item is validated


class Modality(StrEnum):
    ULTRASOUND = "ultrasound"
    FLUOROSCOPY = "fluoroscopy"
    BOTH = "both"
    LANDMARK = "landmark"


class Category(StrEnum):
    USUALLY_APPROPRIATE = "usually_appropriate"
    MAY_BE_APPROPRIATE = "may_be_appropriate"
    USUALLY_NOT_APPROPRIATE = "usually_not_appropriate"


class Region(StrEnum):
    PERIPHERAL = "peripheral"
    SPINAL = "spinal"


class Depth(StrEnum):
    SUPERFICIAL = "superficial"
    INTERMEDIATE = "intermediate"
    DEEP = "deep"


class Tissue(StrEnum):
    JOINT = "joint"
    TENDON = "tendon"
    TENDON_SHEATH = "tendon_sheath"
    LIGAMENT = "ligament"
    BURSA = "bursa"
    NERVE = "nerve"
    FASCIAL_PLANE = "fascial_plane"
    EPIDURAL = "epidural"


class TargetSize(StrEnum):
    LARGE = "large"
    SMALL = "small"


class Injectate(StrEnum):
    CORTICOSTEROID = "corticosteroid"
    LOCAL_ANESTHETIC = "local_anesthetic"
    HYALURONIC_ACID = "hyaluronic_acid"
    PRP = "prp"
    CELL_BASED = "cell_based"
    OTHER = "other"


class Variance(StrEnum):
    OBESITY = "obesity"
    PRIOR_SURGERY = "prior_surgery"
    ATYPICAL_ANATOMY = "atypical_anatomy"
    EFFUSION = "effusion"


class Approach(StrEnum):
    """A named needle path into a joint. Which sites accept one, and what each path's blind accuracy is, is rule-base data."""

    UNSPECIFIED = "unspecified"
    SUPEROLATERAL = "superolateral"
    LATERAL_MIDPATELLAR = "lateral_midpatellar"
    MEDIAL_MIDPATELLAR = "medial_midpatellar"
    ANTEROMEDIAL = "anteromedial"
    ANTEROLATERAL = "anterolateral"


class Imaging(StrEnum):
    ULTRASOUND = "ultrasound"
    FLUOROSCOPY = "fluoroscopy"


# The contract's values as literal types, so a type checker accepts `Case(injectate="prp")` and
# rejects `Case(injectate="bogus")` without pydantic's mypy plugin (tests/model proves each list
# equals its enum's values).
RegionName = Literal["peripheral", "spinal"]
DepthName = Literal["superficial", "intermediate", "deep"]
TissueName = Literal["joint", "tendon", "tendon_sheath", "ligament", "bursa", "nerve", "fascial_plane", "epidural"]
TargetSizeName = Literal["large", "small"]
InjectateName = Literal["corticosteroid", "local_anesthetic", "hyaluronic_acid", "prp", "cell_based", "other"]
VarianceName = Literal["obesity", "prior_surgery", "atypical_anatomy", "effusion"]
ApproachName = Literal["unspecified", "superolateral", "lateral_midpatellar", "medial_midpatellar", "anteromedial", "anterolateral"]
ImagingName = Literal["ultrasound", "fluoroscopy"]


class Case(BaseModel):
    """One injection case. Absent fields are filled from the site, the tissue or a default,
    and each filled value is reported under `assumptions` in the recommendation."""

    model_config = ConfigDict(frozen=True, extra="forbid", str_max_length=200)

    site: str | None = Field(default=None, description="A key of the site catalogue in rules/sites.yaml.")
    region: Region | None = None
    depth: Depth | None = None
    tissue: Tissue | None = None
    target_size: TargetSize | None = None
    palpable: StrictBool | None = Field(default=None, description="The target is easily palpated.")
    injectate: Injectate
    anatomy_variance: tuple[Variance, ...] | None = Field(default=None, max_length=8)
    near_neurovascular: StrictBool | None = Field(default=None, description="The needle path runs close to nerves or vessels.")
    precise_plane: StrictBool | None = Field(default=None, description="The needle must follow a precise plane (perineural, fascial).")
    compartment_specific: StrictBool | None = Field(
        default=None, description="A specific facet, recess or compartment inside a larger joint."
    )
    bone_obscures_path: StrictBool | None = Field(default=None, description="Bony or muscular cover hides the target.")
    contrast_confirmation: StrictBool | None = Field(default=None, description="Placement is to be confirmed with contrast.")
    available_modalities: tuple[Imaging, ...] | None = Field(default=None, max_length=4, description="The imaging this clinic has.")
    approach: Approach | None = Field(default=None, description="The planned needle path, where the site's evidence names paths.")

    if TYPE_CHECKING:  # the signature type checkers see; pydantic validates every value at run time

        def __init__(
            self,
            *,
            site: str | None = None,
            region: Region | RegionName | None = None,
            depth: Depth | DepthName | None = None,
            tissue: Tissue | TissueName | None = None,
            target_size: TargetSize | TargetSizeName | None = None,
            palpable: bool | None = None,
            injectate: Injectate | InjectateName,
            anatomy_variance: Sequence[Variance | VarianceName] | None = None,
            near_neurovascular: bool | None = None,
            precise_plane: bool | None = None,
            compartment_specific: bool | None = None,
            bone_obscures_path: bool | None = None,
            contrast_confirmation: bool | None = None,
            available_modalities: Sequence[Imaging | ImagingName] | None = None,
            approach: Approach | ApproachName | None = None,
        ) -> None: ...

    @field_validator("anatomy_variance", "available_modalities", mode="before")
    @classmethod
    def _bounded(cls, value: Any, info: ValidationInfo) -> Any:
        """Refuse an oversized or nested list before pydantic validates it item by item, so a
        hostile input fails fast with one error instead of a million (or a RecursionError)."""
        if isinstance(value, (list, tuple, set, frozenset)):
            if len(value) > LIST_LIMIT:
                raise ValueError(f"{len(value)} items given; at most {LIST_LIMIT} are allowed")
            if any(isinstance(item, (list, tuple, dict, set, frozenset)) for item in value):
                raise ValueError("a flat list of values is expected, not a list of lists or objects")
        return value

    @field_validator("anatomy_variance", "available_modalities", mode="after")
    @classmethod
    def _canonical_set(cls, value: tuple[StrEnum, ...] | None) -> tuple[Any, ...] | None:
        """Lists are sets: order and repeats carry no meaning, so store them sorted and unique."""
        return None if value is None else tuple(sorted(set(value)))

    def key(self) -> tuple[Any, ...]:
        """The case's value as a hashable tuple (with each value's type, so `1` is never `True`)."""
        values = tuple(self.__dict__.values())
        return values, tuple(map(type, values))


def _field_kinds() -> tuple[frozenset[str], frozenset[str]]:
    """(fields holding one word, fields holding a list of words), read from `Case`'s annotations:
    a word is a catalogue key (`site`) or a value of one of the enums above."""
    words, lists = set(), set()
    for name, info in Case.model_fields.items():
        for arg in get_args(info.annotation) or (info.annotation,):
            if arg is str or (isinstance(arg, type) and issubclass(arg, StrEnum)):
                words.add(name)
            elif get_origin(arg) is tuple:
                lists.add(name)
    return frozenset(words), frozenset(lists)


WORD_FIELDS, LIST_FIELDS = _field_kinds()
FIELD_NAMES = frozenset(Case.model_fields)  # a set: `Case.model_fields` is a property, slow in a per-key test


def fold_case(data: Mapping[str, Any]) -> dict[str, Any]:
    """The case's words as people type them folded to the contract's values: each word value
    trimmed and in lower case (`"Knee"` -> `"knee"`, `"PRP "` -> `"prp"`), in lists too. Other
    values, and values of other types, are left as they were for validation to judge.

    `Case` and `recommend` take the contract's values exactly; the command line and `batch` read
    every case through this function, so `recommend(fold_case(row))` answers a row as `batch` does.
    """
    out = dict(data)
    for key, value in data.items():
        if key in WORD_FIELDS:
            if isinstance(value, str):
                out[key] = value.strip().lower()
        elif key in LIST_FIELDS and isinstance(value, (list, tuple)):
            out[key] = [v.strip().lower() if isinstance(v, str) else v for v in value]
    return out
