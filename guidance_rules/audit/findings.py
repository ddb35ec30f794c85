"""What the audit finds: findings, what a worker returns for a chunk of a space, and the per-space
results those chunks merge into, shared by the audit and its invariant checks."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from guidance_rules.errors import AuditError

UNEVALUATED = 253  # a case no worker has evaluated yet: never a modality index, so never read as an answer
KEEP = 3  # smallest counterexamples kept per invariant per chunk of cases


@dataclass
class Finding:
    level: str  # error or warning
    check: str
    message: str
    case: dict[str, Any] | None = None


@dataclass
class Seen:
    """How many cases show one problem, and the first of them (lowest index, so the report is the
    same whatever order the workers finish in)."""

    count: int
    first: int
    case: dict[str, Any]

    def add(self, other: Seen) -> None:
        self.count += other.count
        if other.first < self.first:
            self.first, self.case = other.first, other.case


@dataclass
class Breach:
    """Cases that break one invariant: how many, and the smallest few as ((weight, index), case, what failed)."""

    count: int = 0
    smallest: list[tuple[tuple[int, int], dict[str, Any], str]] = field(default_factory=list)

    def add(self, key: tuple[int, int], case: dict[str, Any], problem: str) -> None:
        self.count += 1
        if len(self.smallest) < KEEP or key < self.smallest[-1][0]:
            self.smallest.append((key, case, problem))
            self.smallest.sort(key=lambda item: item[0])
            del self.smallest[KEEP:]

    def merge(self, other: Breach) -> None:
        self.count += other.count
        self.smallest = sorted(self.smallest + other.smallest, key=lambda item: item[0])[:KEEP]


@dataclass
class Chunk:
    """What a worker returns for cases [start, stop) of one space: a code per case (a modality
    index, INVALID, FAILED; UNEVALUATED until evaluated), each rule's firing as one byte per case,
    and what the checks found."""

    space: str
    start: int
    stop: int
    modality: bytearray
    marks: dict[str, bytearray]
    heat: Counter[tuple[Any, ...]] = field(default_factory=Counter)
    problems: dict[tuple[str, str], Seen] = field(default_factory=dict)  # (check, message) -> cases
    samples: dict[int, str] = field(default_factory=dict)  # index -> answer JSON, for the determinism check
    breaches: dict[str, Breach] = field(default_factory=dict)  # invariant id -> its breaches
    covered: Counter[str] = field(default_factory=Counter)  # invariant id -> cases it covers

    @classmethod
    def empty(cls, space: str, start: int, stop: int, rules: list[str]) -> Chunk:
        size = stop - start
        return cls(space, start, stop, bytearray([UNEVALUATED]) * size, {r: bytearray(size) for r in rules})

    def fired_only(self) -> Chunk:
        """The chunk without the firing bytes of rules that fired on none of its cases (most
        rules, in most chunks): less to send back to the parent."""
        self.marks = {rid: bits for rid, bits in self.marks.items() if bits.count(1)}
        return self

    def problem(self, check: str, message: str, index: int, case: dict[str, Any]) -> None:
        seen = self.problems.get((check, message))
        if seen is None:
            self.problems[(check, message)] = Seen(1, index, case)
        else:
            seen.count += 1  # cases come in index order: the first stays the first


@dataclass
class SpaceResult:
    """One space's results, merged from its chunks; `evaluated` and `valid` are set only once
    `complete` has proved that the chunks tile the space and every case was evaluated."""

    name: str
    size: int
    evaluated: int = 0
    valid: int = 0
    modality: bytearray = field(default_factory=bytearray)
    marks: dict[str, int] = field(default_factory=dict)  # rule id -> bit 8*i set when it fired on case i
    heat: Counter[tuple[Any, ...]] = field(default_factory=Counter)
    samples: dict[int, str] = field(default_factory=dict)
    breaches: dict[str, Breach] = field(default_factory=dict)
    covered: Counter[str] = field(default_factory=Counter)  # invariant id -> cases it covers
    spans: list[tuple[int, int]] = field(default_factory=list)
    parts: dict[str, list[tuple[int, bytes]]] = field(default_factory=dict)  # rule id -> (start, firing bytes) per chunk

    def __post_init__(self) -> None:
        if not self.modality:
            self.modality = bytearray([UNEVALUATED]) * self.size

    def merge(self, chunk: Chunk) -> None:
        """Take in one chunk: its codes into place, its span recorded for `complete`."""
        if chunk.stop - chunk.start != len(chunk.modality) or not 0 <= chunk.start < chunk.stop <= self.size:
            raise AuditError(f"space {self.name}: a chunk [{chunk.start}, {chunk.stop}) returned {len(chunk.modality)} codes")
        self.spans.append((chunk.start, chunk.stop))
        self.modality[chunk.start : chunk.stop] = chunk.modality
        for rid, bits in chunk.marks.items():
            self.parts.setdefault(rid, []).append((chunk.start, bytes(bits)))
        self.heat.update(chunk.heat)
        self.samples.update(chunk.samples)
        self.covered.update(chunk.covered)
        for inv_id, breach in chunk.breaches.items():
            self.breaches.setdefault(inv_id, Breach()).merge(breach)

    def complete(self, invalid: int) -> None:
        """Prove that every index was evaluated exactly once (else AuditError: a defect of the audit,
        not of the rule base), then count the valid cases and join each rule's firing bits."""
        assert_complete(self.name, self.size, self.spans, self.modality)
        self.evaluated = self.size
        self.valid = self.size - self.modality.count(invalid)
        for rid, chunks in self.parts.items():
            joined = bytearray(self.size)  # a chunk where the rule never fired sends no bytes for it
            for start, bits in chunks:
                joined[start : start + len(bits)] = bits
            self.marks[rid] = int.from_bytes(joined, "little")
        self.parts = {}


def assert_complete(name: str, size: int, spans: list[tuple[int, int]], modality: bytes | bytearray) -> None:
    """Prove that every index of a space was evaluated exactly once: the chunks the workers
    returned tile [0, size) with no gap and no overlap, and no case is still UNEVALUATED. An audit
    that cannot prove this raises (a defect in the audit, not in the rule base): a case it never
    evaluated must not be counted, let alone read as an answer."""
    where = 0
    for start, stop in sorted(spans):
        if start != where:
            what = "never evaluated" if start > where else "evaluated twice"
            first, last = min(start, where), max(start, where) - 1
            raise AuditError(f"space {name}: cases {first}..{last} were {what} (chunks {sorted(spans)})")
        where = stop
    if where > size:
        raise AuditError(f"space {name}: cases {size}..{where - 1} are past the end of the space (the chunks end at {where})")
    if where != size:
        raise AuditError(f"space {name}: cases {where}..{size - 1} were never evaluated (the chunks end at {where})")
    left = modality.count(UNEVALUATED)
    if left:
        raise AuditError(f"space {name}: {left:,} of {size:,} cases were never evaluated, the first at index {modality.index(UNEVALUATED)}")
