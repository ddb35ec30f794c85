"""What the audit finds: findings and per-space results, shared by the audit and its invariant checks."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any


@dataclass
class Finding:
    level: str  # error or warning
    check: str
    message: str
    case: dict[str, Any] | None = None


@dataclass
class SpaceResult:
    name: str
    size: int
    evaluated: int = 0  # set only once the audit has proved every index evaluated exactly once
    valid: int = 0
    modality: bytearray = field(default_factory=bytearray)
    marks: dict[str, int] = field(default_factory=dict)  # rule id -> bit 8*i set when it fired on case i
    heat: Counter[tuple[Any, ...]] = field(default_factory=Counter)
    samples: dict[int, str] = field(default_factory=dict)
    breaches: dict[str, Any] = field(default_factory=dict)  # invariant id -> [count, smallest (key, case, problem)s]
    covered: Counter[str] = field(default_factory=Counter)  # invariant id -> cases it covers
