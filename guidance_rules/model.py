"""Public data model: the enums, the input `Case` and the output `Recommendation`.

Names and values follow `shared/spec/contract.md`. Nothing clinical is decided here:
site defaults, tissue defaults and contradictions come from `rules/` (see `resolve`).
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Any, NoReturn

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    StrictBool,
    ValidationInfo,
    field_validator,
    model_validator,
)


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


_FROZEN_STRICT = ConfigDict(frozen=True, extra="forbid", defer_build=True)


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

    _resolution: Any = PrivateAttr(default=None)

    @field_validator("anatomy_variance", "available_modalities", mode="after")
    @classmethod
    def _canonical_set(cls, value: tuple[StrEnum, ...] | None) -> tuple[Any, ...] | None:
        """Lists are sets: order and repeats carry no meaning, so store them sorted and unique."""
        return None if value is None else tuple(sorted(set(value)))

    @field_validator("site", mode="after")
    @classmethod
    def _known_site(cls, value: str | None, info: ValidationInfo) -> str | None:
        if value is None:
            return None
        from .knowledge import knowledge_from_context

        return knowledge_from_context(info.context).check_site(value)

    @model_validator(mode="after")
    def _resolve(self, info: ValidationInfo) -> Case:
        """Fill defaults and reject contradictions now, so an invalid case never exists."""
        from .knowledge import knowledge_from_context
        from .resolve import resolve

        knowledge = knowledge_from_context(info.context)
        self._resolution = resolve(self, knowledge)
        return self


class FrozenDict(dict[str, Any]):
    """A dict that refuses changes, so a cached recommendation cannot be altered by a caller."""

    def _refuse(self, *args: Any, **kwargs: Any) -> NoReturn:
        raise TypeError("recommendation data is read-only; copy it with dict(...) to change it")

    __setitem__ = __delitem__ = clear = pop = popitem = setdefault = update = _refuse
    __ior__ = _refuse


ReadOnlyFacts = Annotated[dict[str, Any], AfterValidator(FrozenDict)]


class Rating(BaseModel):
    model_config = _FROZEN_STRICT
    category: Category
    rules: tuple[str, ...]


class Citation(BaseModel):
    model_config = _FROZEN_STRICT
    source: str
    locator: str


class Step(BaseModel):
    model_config = _FROZEN_STRICT
    rule: str
    conclusion: str
    facts: ReadOnlyFacts
    sources: tuple[Citation, ...]


class Assumption(BaseModel):
    model_config = _FROZEN_STRICT
    field: str
    value: Any
    origin: str


class Note(BaseModel):
    """A documentation item, caution or question, with the rule that raised it."""

    model_config = _FROZEN_STRICT
    rule: str
    text: str
    sources: tuple[Citation, ...]


class Evidence(BaseModel):
    model_config = _FROZEN_STRICT
    site: str
    measure: str
    ultrasound: str | None = None
    landmark: str | None = None
    note: str | None = None
    source: Citation


class Ratings(BaseModel):
    """All four modalities, each with its category and the rules that placed it there."""

    model_config = _FROZEN_STRICT
    ultrasound: Rating
    fluoroscopy: Rating
    both: Rating
    landmark: Rating

    def __getitem__(self, modality: Modality | str) -> Rating:
        rating: Rating = getattr(self, Modality(modality).value)
        return rating


class RulesetInfo(BaseModel):
    model_config = _FROZEN_STRICT
    version: str
    digest: str


class Recommendation(BaseModel):
    """The answer for one case, with every reason and source behind it."""

    model_config = _FROZEN_STRICT
    modality: Modality
    ratings: Ratings
    reasoning: tuple[Step, ...]
    assumptions: tuple[Assumption, ...]
    documentation: tuple[Note, ...]
    cautions: tuple[Note, ...]
    questions: tuple[Note, ...]
    evidence: tuple[Evidence, ...]
    ruleset: RulesetInfo
