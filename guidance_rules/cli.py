"""The `guidance-rules` command.

Exit status: 0 done; 2 the input or the arguments are invalid (the message names the field
and the allowed values, never a traceback); 1 anything else (also reported without a traceback).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, NoReturn, TextIO

from pydantic import ValidationError

from . import __version__, render
from .errors import GuidanceRulesError, RuleFileError
from .inputs import InputError, Record, parse_json_case, problems_of, read_csv, read_jsonl
from .knowledge import KnowledgeBase, default_knowledge, default_rules_dir, load
from .model import Case
from .recommender import Recommender

EXIT_OK, EXIT_ERROR, EXIT_INVALID = 0, 1, 2
CASE_OPTIONS = ("site", "region", "depth", "tissue", "target_size", "injectate", "approach")
BOOL_OPTIONS = ("palpable", "near_neurovascular", "precise_plane", "compartment_specific", "bone_obscures_path", "contrast_confirmation")


class Invalid(Exception):
    """Invalid input or arguments: exit 2 with these field-named problems."""

    def __init__(self, problems: list[tuple[str, str]]):
        self.problems = problems
        super().__init__(problems)


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        self.print_usage(sys.stderr)
        self.exit(EXIT_INVALID, f"{self.prog}: error: {message}\n")


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="guidance-rules", description="Imaging guidance for musculoskeletal and spinal injections, with sources.")
    parser.add_argument("--version", action="store_true", help="show the package and rule base versions")
    parser.add_argument("--rules", metavar="DIR", type=Path, help="use the rule base in DIR instead of the shipped one")
    sub = parser.add_subparsers(dest="command", parser_class=_Parser)

    rec = sub.add_parser("recommend", help="recommend guidance for one case (file, '-' for stdin, or options)")
    rec.add_argument("file", nargs="?", help="a JSON file with one case, or - for standard input")
    rec.add_argument("--json", action="store_true", help="print the Recommendation JSON only")
    for name in CASE_OPTIONS:
        rec.add_argument(f"--{name.replace('_', '-')}", dest=name, metavar="VALUE")
    for name in BOOL_OPTIONS:
        rec.add_argument(f"--{name.replace('_', '-')}", dest=name, metavar="true|false")
    rec.add_argument("--variance", dest="anatomy_variance", action="append", metavar="VALUE", help="repeat for several")
    rec.add_argument(
        "--available",
        dest="available_modalities",
        action="append",
        metavar="MODALITY",
        help="imaging the clinic has; repeat for several (default: both)",
    )

    ex = sub.add_parser("examples", help="run every case in examples/ and compare with its expected modality")
    ex.add_argument("--json", action="store_true", help="one Recommendation JSON per line, with the example's name")
    ex.add_argument("--dir", type=Path, help="the examples folder (default: the checkout's examples/)")

    rules = sub.add_parser("rules", help="list every rule, or show one in full")
    rules.add_argument("id", nargs="?", help="a rule id to show in full")

    sub.add_parser("schema", help="print the JSON Schema of a case")

    batch = sub.add_parser("batch", help="many cases: JSON Lines or CSV in, JSON Lines out")
    batch.add_argument("input", help="input file (.jsonl/.json or .csv), or - for standard input")
    batch.add_argument("--out", help="output file (default: standard output)")
    batch.add_argument("--format", choices=("jsonl", "csv"), help="input format (default: from the extension)")

    audit = sub.add_parser("audit", help="check the rule base: static checks, every valid case, the invariants")
    audit.add_argument("--json", action="store_true", help="the report as JSON")
    audit.add_argument("--html", metavar="FILE", type=Path, help="also write a self-contained HTML report")
    audit.add_argument("--workers", type=int, default=0, help="worker processes (default: one per core)")
    audit.add_argument("--quick", action="store_true", help="site cases only, not the whole field-by-field space")
    table = sub.add_parser("table", help="decision table: per site, injectate x anatomy variances -> modality")
    table.add_argument("--format", choices=("md", "csv", "html"), default="md", help="output format (default: md)")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    try:
        knowledge = load(args.rules) if args.rules else default_knowledge()
        if args.version:
            print(f"guidance-rules {__version__} (rule base {knowledge.version}, {knowledge.digest})")
            return EXIT_OK
        if not args.command:
            parser.print_help()
            return EXIT_INVALID
        command: Callable[[argparse.Namespace, KnowledgeBase], int] = COMMANDS[args.command]
        return command(args, knowledge)
    except Invalid as error:
        for field, message in error.problems:
            print(f"invalid input: {field + ': ' if field else ''}{message}", file=sys.stderr)
        return EXIT_INVALID
    except RuleFileError as error:
        print(f"rule base error: {error}", file=sys.stderr)
        return EXIT_ERROR
    except BrokenPipeError:
        return EXIT_OK
    except KeyboardInterrupt:
        return 130
    except (GuidanceRulesError, OSError) as error:
        print(f"error: {error}", file=sys.stderr)
        return EXIT_ERROR
    except Exception as error:  # the last line of defence: never a traceback
        print(f"internal error: {type(error).__name__}: {error}", file=sys.stderr)
        return EXIT_ERROR


def _validate(recommender: Recommender, data: Any) -> Case:
    try:
        return recommender.case(data)
    except ValidationError as error:
        raise Invalid(problems_of(error, recommender.knowledge)) from None


def _read_text(source: str) -> str:
    try:
        if source == "-":
            return sys.stdin.read()
        return Path(source).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise Invalid([("file", f"'{source}' not found")]) from None
    except (UnicodeDecodeError, IsADirectoryError) as error:
        raise Invalid([("file", f"'{source}' cannot be read as UTF-8 text: {error}")]) from None


def _options_case(args: argparse.Namespace) -> dict[str, Any]:
    data: dict[str, Any] = {}
    for name in CASE_OPTIONS:
        if getattr(args, name) is not None:
            data[name] = getattr(args, name)
    for name in BOOL_OPTIONS:
        raw = getattr(args, name)
        if raw is not None:
            data[name] = {"true": True, "false": False}.get(raw.lower(), raw)
    for name in ("anatomy_variance", "available_modalities"):
        if getattr(args, name) is not None:
            data[name] = getattr(args, name)
    return data


def cmd_recommend(args: argparse.Namespace, knowledge: KnowledgeBase) -> int:
    options = _options_case(args)
    if args.file is not None:
        try:
            data = parse_json_case(_read_text(args.file))
        except InputError as error:
            raise Invalid(error.problems) from None
        clash = sorted(set(options) & set(data))
        if clash:
            raise Invalid([(clash[0], "given both in the file and as an option; give it once")])
        data.update(options)
    elif options:
        data = options
    elif not sys.stdin.isatty():
        try:
            data = parse_json_case(sys.stdin.read())
        except InputError as error:
            raise Invalid(error.problems) from None
    else:
        raise Invalid([("", "no case given: pass a JSON file, '-' for standard input, or options such as --site knee --injectate prp")])
    recommender = Recommender(knowledge)
    rec = recommender.recommend(_validate(recommender, data))
    print(rec.model_dump_json(indent=2) if args.json else render.recommendation(rec))
    return EXIT_OK


def _examples_dir(args: argparse.Namespace) -> Path:
    if args.dir:
        return Path(args.dir)
    for candidate in (Path.cwd() / "examples", default_rules_dir().parent / "examples", Path(__file__).resolve().parent / "examples"):
        if candidate.is_dir():
            return candidate
    raise Invalid([("--dir", "no examples/ folder here; pass --dir")])


def load_examples(folder: Path) -> list[tuple[str, dict[str, Any]]]:
    out = []
    for path in sorted(folder.glob("*.json")):
        try:
            out.append((path.stem, json.loads(path.read_text(encoding="utf-8"))))
        except json.JSONDecodeError as error:
            raise Invalid([(path.name, f"not valid JSON: {error}")]) from None
    if not out:
        raise Invalid([(str(folder), "no example case files (*.json)")])
    return out


def cmd_examples(args: argparse.Namespace, knowledge: KnowledgeBase) -> int:
    recommender = Recommender(knowledge)
    disagree = 0
    rows = []
    for name, example in load_examples(_examples_dir(args)):
        rec = recommender.recommend(_validate(recommender, example.get("case")))
        expected = example.get("expected")
        ok = rec.modality.value == expected
        disagree += not ok
        if args.json:
            print(json.dumps({"example": name, "expected": expected, "recommendation": rec.model_dump(mode="json")}))
        rows.append((name, str(expected), rec.modality.value, "ok" if ok else "DIFFERS", example.get("why", "")))
    if not args.json:
        print(f"{'example':<34} {'expected':<12} {'recommended':<12} result")
        for name, expected, got, result, why in rows:
            print(f"{name:<34} {expected:<12} {got:<12} {result}")
            print(f"{'':<34} {why}")
        print(f"\n{len(rows) - disagree} of {len(rows)} examples agree with their expected modality.")
    return EXIT_ERROR if disagree else EXIT_OK


def cmd_rules(args: argparse.Namespace, knowledge: KnowledgeBase) -> int:
    every = (*knowledge.rules, *knowledge.inactive)
    if args.id:
        by_id = {rule.id: rule for rule in every}
        if args.id not in by_id:
            import difflib

            close = difflib.get_close_matches(args.id, list(by_id), n=1)
            hint = f"; did you mean '{close[0]}'?" if close else ""
            raise Invalid([("id", f"no rule '{args.id}'{hint} Run 'guidance-rules rules' for the list")])
        print(render.rule_full(by_id[args.id]))
        return EXIT_OK
    for rule in every:
        print(render.rule_line(rule))
    print(f"\n{len(knowledge.rules)} active rules, {len(knowledge.inactive)} inactive; rule base {knowledge.version}")
    return EXIT_OK


def cmd_schema(args: argparse.Namespace, knowledge: KnowledgeBase) -> int:
    schema = Case.model_json_schema()
    schema["properties"]["site"] = {
        "anyOf": [{"enum": list(knowledge.sites)}, {"type": "null"}],
        "default": None,
        "description": schema["properties"]["site"].get("description", ""),
    }
    print(json.dumps(schema, indent=2))
    return EXIT_OK


def _records(source: str, fmt: str | None, stream: TextIO) -> Iterator[Record]:
    kind = fmt or ("csv" if source.lower().endswith(".csv") else "jsonl")
    return read_csv(stream) if kind == "csv" else read_jsonl(stream)


def cmd_batch(args: argparse.Namespace, knowledge: KnowledgeBase) -> int:
    from .batch import run_batch

    return run_batch(args, knowledge, _records)


def cmd_audit(args: argparse.Namespace, knowledge: KnowledgeBase) -> int:
    from .audit import run_audit_command

    return run_audit_command(args, knowledge)


def cmd_table(args: argparse.Namespace, knowledge: KnowledgeBase) -> int:
    from .table import render

    sys.stdout.write(render(knowledge, args.format))
    return EXIT_OK


COMMANDS: dict[str, Callable[[argparse.Namespace, KnowledgeBase], int]] = {
    "recommend": cmd_recommend,
    "examples": cmd_examples,
    "rules": cmd_rules,
    "schema": cmd_schema,
    "batch": cmd_batch,
    "audit": cmd_audit,
    "table": cmd_table,
}

if __name__ == "__main__":
    sys.exit(main())
