"""`guidance-rules examples`: every example case against its expected modality."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import guidance_rules.cli.exits as exits
import guidance_rules.cli.render as render
from guidance_rules.cli.case import answer, grouped
from guidance_rules.cli.inputs import parse_json_case
from guidance_rules.errors import InputError
from guidance_rules.recommendation.recommender import Recommender
from guidance_rules.rulebase.domain import KnowledgeBase
from guidance_rules.rulebase.load import default_rules_dir


def _examples_dir(args: argparse.Namespace) -> Path:
    if args.dir:
        return Path(args.dir)
    for candidate in (
        Path.cwd() / "examples",
        default_rules_dir().parent / "examples",
        Path(__file__).resolve().parent.parent / "examples",
    ):
        if candidate.is_dir():
            return candidate
    raise InputError([("--dir", "no examples/ folder here; pass --dir")])


def load_examples(folder: Path) -> list[tuple[str, dict[str, Any]]]:
    out = []
    for path in sorted(folder.glob("*.json")):
        try:
            data = parse_json_case(path.read_text(encoding="utf-8-sig"))
        except InputError as error:
            raise InputError([(path.name, message) for _, message in error.problems]) from None
        except (OSError, UnicodeDecodeError) as error:
            raise InputError([(path.name, f"cannot be read as UTF-8 text: {error}")]) from None
        if not isinstance(data.get("case"), dict):
            raise InputError([(path.name, 'an example is {"case": {...}, "expected": "<modality>", "why": "..."}')])
        out.append((path.stem, data))
    if not out:
        raise InputError([(str(folder), "no example case files (*.json)")])
    return out


def run(args: argparse.Namespace, knowledge: KnowledgeBase) -> int:
    recommender = Recommender(knowledge)
    disagree, invalid = 0, []
    rows = []
    for name, example in load_examples(_examples_dir(args)):
        expected = example.get("expected")
        try:
            rec = answer(recommender, example.get("case"))
        except InputError as error:  # one bad example file is named, and the others still run
            problems = [f"{field + ': ' if field else ''}{message}" for field, message in grouped(error.problems)]
            invalid += [f"{name}: {problem}" for problem in problems]
            if args.json:
                print(json.dumps({"example": name, "expected": expected, "problems": problems}))
            rows.append((name, str(expected), "-", "INVALID", "; ".join(problems)))
            continue
        ok = rec.modality.value == expected
        disagree += not ok
        if args.json:
            print(json.dumps({"example": name, "expected": expected, "recommendation": rec.model_dump(mode="json")}))
        rows.append((name, str(expected), rec.modality.value, "ok" if ok else "DIFFERS", example.get("why", "")))
    if not args.json:
        print(f"{'example':<34} {'expected':<12} {'recommended':<12} result")
        for name, expected, got, result, why in rows:
            print(f"{name:<34} {expected:<12} {got:<12} {render.mark(result, result == 'ok')}")
            print(render.wrap(why, " " * 35))
        agree = len(rows) - disagree - len({r[0] for r in rows if r[3] == "INVALID"})
        print(f"\n{agree} of {len(rows)} examples agree with their expected modality.")
    for line in invalid:
        print(f"invalid input: {line}", file=sys.stderr)
    return exits.INVALID if invalid else exits.ERROR if disagree else exits.OK
