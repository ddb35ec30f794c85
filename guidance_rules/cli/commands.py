"""The `guidance-rules` command.

Exit status: 0 done; 2 the input or the arguments are invalid (the message names the field
and the allowed values, never a traceback); 1 anything else (also reported without a traceback).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, NoReturn

from pydantic import ValidationError

import guidance_rules.cli.render as render
from guidance_rules._version import __version__
from guidance_rules.cli.inputs import InputError, parse_json_case
from guidance_rules.errors import GuidanceRulesError, RuleFileError
from guidance_rules.model import Case, Recommendation, fold_case
from guidance_rules.recommendation.problems import problems_of
from guidance_rules.recommendation.recommender import Recommender
from guidance_rules.rulebase.conditions import BOOL_FIELDS, CASE_FIELDS
from guidance_rules.rulebase.load import KnowledgeBase, default_knowledge, default_rules_dir, load

EXIT_OK, EXIT_ERROR, EXIT_INVALID = 0, 1, 2
CASE_OPTIONS = ("site", "region", "depth", "tissue", "target_size", "injectate", "approach")
CASE_FIELD_HELP = {name: field.description for name, field in Case.model_fields.items() if field.description}


class Invalid(Exception):
    """Invalid input or arguments: exit 2 with these field-named problems."""

    def __init__(self, problems: list[tuple[str, str]]):
        self.problems = problems
        super().__init__(problems)


class _Help(argparse.HelpFormatter):
    """Help that shows a flag's negated form without a value (`--no-palpable` takes none)."""

    def _format_action_invocation(self, action: argparse.Action) -> str:
        if isinstance(action, _Flag):
            return ", ".join(o if o.startswith("--no-") else f"{o} [true|false]" for o in action.option_strings)
        return super()._format_action_invocation(action)


class _Parser(argparse.ArgumentParser):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("formatter_class", _Help)
        super().__init__(*args, **kwargs)

    def error(self, message: str) -> NoReturn:
        self.print_usage(sys.stderr)
        self.exit(EXIT_INVALID, f"{self.prog}: error: {message}\n")


class _Flag(argparse.Action):
    """A boolean case field: `--palpable`, `--no-palpable`, or `--palpable true|false`."""

    def __init__(self, option_strings: list[str], dest: str, **kwargs: Any) -> None:
        negated = [f"--no-{o[2:]}" for o in option_strings if o.startswith("--")]
        super().__init__([*option_strings, *negated], dest, nargs="?", metavar="true|false", **kwargs)

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace, values: Any, option: str | None = None) -> None:
        if option and option.startswith("--no-"):
            if values is not None:
                parser.error(f"{option} takes no value (it means false)")
            setattr(namespace, self.dest, False)
            return
        if values is None:
            setattr(namespace, self.dest, True)
            return
        parsed = {"true": True, "false": False}.get(str(values).strip().lower())
        if parsed is None:
            parser.error(f"{option}: '{values}' was given; expected true or false (or {option} / --no-{str(option)[2:]} alone)")
        setattr(namespace, self.dest, parsed)


def _positive(text: str) -> int:
    """A count of worker processes: 0 or less was an internal error (audit) or a division by zero (diff)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{text}' was given; must be a whole number, 1 or more") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be 1 or more, got {value}")
    return value


def writable(text: str, *, folder_always: bool = False) -> Path:
    """Where an output file may be written, checked before any work (an audit takes minutes).

    A symbolic link is followed: its target is written and the link stays. A file without any
    write bit is refused even for root (who may write anything): its owner protected it. With
    `folder_always` (a file written beside and renamed into place) the folder must be writable
    even when the file exists."""
    if not text:
        raise argparse.ArgumentTypeError("an empty file name was given; give a file name")
    real = Path(os.path.realpath(text))
    if real.is_dir():
        raise argparse.ArgumentTypeError(f"'{text}' is a folder; give a file name")
    if not real.parent.is_dir():
        raise argparse.ArgumentTypeError(f"the folder of '{text}' ({real.parent}) does not exist; give a file in an existing folder")
    if real.exists():
        mode = real.stat().st_mode
        if not os.access(real, os.W_OK) or (real.is_file() and not mode & 0o222):
            raise argparse.ArgumentTypeError(
                f"'{text}' is read-only (mode {mode & 0o7777:04o}); give another file, or make it writable (chmod u+w)"
            )
    creates = not real.exists() or (folder_always and real.is_file())
    if creates and not os.access(real.parent, os.W_OK | os.X_OK):
        raise argparse.ArgumentTypeError(
            f"cannot create a file in the folder of '{text}' ({real.parent}): permission denied; give a file in a folder you may write"
        )
    return Path(text)


def _replaced(text: str) -> Path:
    """An output file written beside itself and renamed into place (batch --out)."""
    return writable(text, folder_always=True)


def _values(name: str) -> tuple[str, ...]:
    return tuple(str(v) for v in CASE_FIELDS[name].values)


def _choices(values: tuple[str, ...]) -> Callable[..., tuple[str, ...]]:
    """A shell-completion source for argcomplete (read only while completing)."""
    return lambda **_: values


def _sites(**_: Any) -> tuple[str, ...]:
    return tuple(default_knowledge().sites)


def _site_help() -> str:
    """The shipped catalogue, read only when help is shown (it costs a rule base load)."""
    if not {"-h", "--help"} & set(sys.argv[1:]):
        return "a catalogue site"
    return "one of: " + ", ".join(default_knowledge().sites)


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="guidance-rules", description="Imaging guidance for musculoskeletal and spinal injections, with sources.")
    parser.add_argument("--version", action="store_true", help="show the package and rule base versions")
    parser.add_argument("--rules", metavar="DIR", type=Path, help="use the rule base in DIR instead of the shipped one")
    sub = parser.add_subparsers(dest="command", parser_class=_Parser)

    rec = sub.add_parser(
        "recommend",
        help="recommend guidance for one case (file, '-' for stdin, or options)",
        description="Recommend imaging guidance for one case. Values are case-insensitive; a field left out is "
        "taken from the site, the tissue or a default, and listed under assumptions.",
    )
    _case_arguments(rec)
    output = rec.add_mutually_exclusive_group()
    output.add_argument("--json", action="store_true", help="print the Recommendation JSON only")
    output.add_argument("--brief", action="store_true", help="the answer in a few lines, naming every rule that decided it")

    whatif = sub.add_parser("what-if", help="for each other modality, the smallest changes to the case that give it")
    _case_arguments(whatif)
    whatif.add_argument("--json", action="store_true", help="the what-if result as JSON")
    bound = whatif.add_mutually_exclusive_group()
    bound.add_argument(
        "--max-changes", type=_positive, default=3, metavar="N", help="largest set of changes searched, 1 or more (default 3)"
    )
    bound.add_argument("--exhaustive", action="store_true", help="no bound on the number of changes (may take seconds)")

    diff = sub.add_parser("diff", help="every case whose answer differs between two rule bases; exit 1 if any")
    diff.add_argument("old", type=Path, help="the old rule base folder")
    diff.add_argument("new", type=Path, help="the new rule base folder")
    diff.add_argument("--json", action="store_true", help="the report as JSON")
    diff.add_argument("--html", metavar="FILE", type=writable, help="also write a self-contained HTML report")
    diff.add_argument("--workers", type=_positive, metavar="N", default=0, help="worker processes, 1 or more (default: one per core)")
    diff.add_argument("--site", dest="sites", action="append", metavar="SITE", help="only the site and approach cases of SITE (repeat)")

    ex = sub.add_parser("examples", help="run every case in examples/ and compare with its expected modality")
    ex.add_argument("--json", action="store_true", help="one Recommendation JSON per line, with the example's name")
    ex.add_argument("--dir", type=Path, help="the examples folder (default: the checkout's examples/)")

    rules = sub.add_parser("rules", help="list every rule, or show one in full")
    rules.add_argument("id", nargs="?", help="a rule id to show in full (case-insensitive; POLICY-SELECT is the policy)")
    rules.add_argument("--json", action="store_true", help="the rules (or the one rule) as JSON")

    sub.add_parser("schema", help="print the JSON Schema of a case")

    batch = sub.add_parser("batch", help="many cases: JSON Lines or CSV in, JSON Lines out")
    batch.add_argument("input", help="input file (.jsonl/.json or .csv), or - for standard input")
    batch.add_argument(
        "--out",
        metavar="FILE",
        type=_replaced,
        help="output file, written beside it and renamed into place when complete, keeping its mode; "
        "a symbolic link's target is written (default: standard output)",
    )
    batch.add_argument("--format", choices=("jsonl", "csv"), help="input format (default: from the extension, else from the content)")
    batch.add_argument(
        "--id-column",
        metavar="NAME",
        help="a column (or JSON key) to carry to each output record as its id; a case field named here stays in the case too",
    )
    batch.add_argument(
        "--extra-columns",
        choices=("error", "ignore"),
        default="error",
        help="other columns that are not case fields: an error on every record (default) or ignored",
    )
    batch.add_argument(
        "--workers",
        type=_positive,
        metavar="N",
        default=0,
        help="worker processes for large inputs, 1 or more (default: one per core; 1: none)",
    )

    audit = sub.add_parser("audit", help="check the rule base: static checks, every valid case, the invariants")
    audit.add_argument("--json", action="store_true", help="the report as JSON")
    audit.add_argument("--html", metavar="FILE", type=writable, help="also write a self-contained HTML report")
    audit.add_argument("--workers", type=_positive, metavar="N", default=0, help="worker processes, 1 or more (default: one per core)")
    audit.add_argument("--quick", action="store_true", help="site cases only, not the whole field-by-field space")
    table = sub.add_parser("table", help="decision table: per site, injectate x anatomy variances -> modality")
    table.add_argument("--format", choices=("md", "csv", "html"), default="md", help="output format (default: md)")
    from guidance_rules.service.cli import register  # serve, consultations: the service registers its own commands

    register(sub, COMMANDS, count=_positive)
    return parser


def _case_arguments(rec: argparse.ArgumentParser) -> None:
    """One case from a file, standard input or options (shared by recommend and what-if)."""
    rec.add_argument("file", nargs="?", help="a JSON file with one case, or - for standard input")
    rec.add_argument("--site", metavar="SITE", help=_site_help()).completer = _sites  # type: ignore[attr-defined]
    for name in CASE_OPTIONS[1:]:
        option = rec.add_argument(
            f"--{name.replace('_', '-')}", dest=name, metavar=name.upper(), help="one of: " + ", ".join(_values(name))
        )
        option.completer = _choices(_values(name))  # type: ignore[attr-defined]
    for name in BOOL_FIELDS:
        rec.add_argument(f"--{name.replace('_', '-')}", dest=name, action=_Flag, help=CASE_FIELD_HELP.get(name))
    rec.add_argument(
        "--variance",
        dest="anatomy_variance",
        action="append",
        metavar="VARIANCE",
        help="repeat for several; one of: " + ", ".join(_values("anatomy_variance")),
    ).completer = _choices(_values("anatomy_variance"))  # type: ignore[attr-defined]
    rec.add_argument(
        "--available",
        dest="available_modalities",
        action="append",
        metavar="MODALITY",
        help="imaging the clinic has; repeat for several (default: both); one of: " + ", ".join(_values("available_modalities")),
    ).completer = _choices(_values("available_modalities"))  # type: ignore[attr-defined]


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    if "_ARGCOMPLETE" in os.environ:  # shell completion (argcomplete): only imported when completing
        import argcomplete

        argcomplete.autocomplete(parser)
    args = parser.parse_args(argv)
    render.use(render.Style.detect(sys.stdout))
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
        for field, message in _grouped(error.problems):
            print(f"invalid input: {field + ': ' if field else ''}{message}", file=sys.stderr)
        return EXIT_INVALID
    except RuleFileError as error:  # a rule base the user named is their input (2); the shipped one is ours (1)
        print(f"rule base error: {error}", file=sys.stderr)
        return EXIT_INVALID if args.rules else EXIT_ERROR
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


def _grouped(problems: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """One line per message: a contradiction names every field involved once, as 'tissue, site'."""
    fields: dict[str, list[str]] = {}
    for field, message in problems:
        fields.setdefault(message, []).append(field)
    return [(", ".join(f for f in names if f), message) for message, names in fields.items()]


def _recommend(recommender: Recommender, data: Any) -> Recommendation:
    """The answer for one case; invalid input (schema or rule base) becomes `Invalid` (exit 2)."""
    try:
        return recommender.recommend(data)
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
    """The case fields given as options; text values are case-insensitive (`--site Knee`)."""
    names = (*CASE_OPTIONS, *BOOL_FIELDS, "anatomy_variance", "available_modalities")
    return fold_case({name: getattr(args, name) for name in names if getattr(args, name) is not None})


def _case_data(args: argparse.Namespace) -> dict[str, Any]:
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
    return data


def cmd_recommend(args: argparse.Namespace, knowledge: KnowledgeBase) -> int:
    recommender = Recommender(knowledge)
    data = _case_data(args)
    rec = _recommend(recommender, data)
    if args.json:
        print(rec.model_dump_json(indent=2))
    elif args.brief:
        print(render.brief(rec))
    else:
        from guidance_rules.cli.whatif import inputs_section
        from guidance_rules.recommendation.whatif import inputs_that_matter

        print(render.recommendation(rec, inputs=inputs_section(inputs_that_matter(data, recommender))))
    return EXIT_OK


def cmd_what_if(args: argparse.Namespace, knowledge: KnowledgeBase) -> int:
    from guidance_rules.cli.whatif import run_what_if_command

    recommender = Recommender(knowledge)
    data = _case_data(args)
    _recommend(recommender, data)  # invalid input exits 2 with the field named, before any search
    return run_what_if_command(args, recommender, data)


def cmd_diff(args: argparse.Namespace, knowledge: KnowledgeBase) -> int:
    from guidance_rules.cli.diff import run_diff_command

    return run_diff_command(args)


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
    raise Invalid([("--dir", "no examples/ folder here; pass --dir")])


def load_examples(folder: Path) -> list[tuple[str, dict[str, Any]]]:
    out = []
    for path in sorted(folder.glob("*.json")):
        try:
            data = parse_json_case(path.read_text(encoding="utf-8"))
        except InputError as error:
            raise Invalid([(path.name, message) for _, message in error.problems]) from None
        except (OSError, UnicodeDecodeError) as error:
            raise Invalid([(path.name, f"cannot be read as UTF-8 text: {error}")]) from None
        if not isinstance(data.get("case"), dict):
            raise Invalid([(path.name, 'an example is {"case": {...}, "expected": "<modality>", "why": "..."}')])
        out.append((path.stem, data))
    if not out:
        raise Invalid([(str(folder), "no example case files (*.json)")])
    return out


def cmd_examples(args: argparse.Namespace, knowledge: KnowledgeBase) -> int:
    recommender = Recommender(knowledge)
    disagree, invalid = 0, []
    rows = []
    for name, example in load_examples(_examples_dir(args)):
        expected = example.get("expected")
        try:
            rec = _recommend(recommender, example.get("case"))
        except Invalid as error:  # one bad example file is named, and the others still run
            problems = [f"{field + ': ' if field else ''}{message}" for field, message in _grouped(error.problems)]
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
    return EXIT_INVALID if invalid else EXIT_ERROR if disagree else EXIT_OK


def cmd_rules(args: argparse.Namespace, knowledge: KnowledgeBase) -> int:
    every = (*knowledge.rules, *knowledge.inactive)
    policy = knowledge.policy
    if args.id:
        by_id: dict[str, Any] = {rule.id: rule for rule in every}
        by_id[policy.id] = policy
        wanted = args.id.strip().upper()
        if wanted not in by_id:
            import difflib

            close = difflib.get_close_matches(wanted, list(by_id), n=3, cutoff=0.5)
            hint = f"; did you mean {' or '.join(repr(c) for c in close)}?" if close else "."
            raise Invalid([("id", f"no rule '{args.id}'{hint} Run 'guidance-rules rules' for the list.")])
        found = by_id[wanted]
        if args.json:
            print(json.dumps(render.policy_json(found) if found is policy else render.rule_json(found), indent=2))
        else:
            print(render.policy_full(found) if found is policy else render.rule_full(found))
        return EXIT_OK
    if args.json:
        print(json.dumps({"rules": [render.rule_json(rule) for rule in every], "policy": render.policy_json(policy)}, indent=2))
        return EXIT_OK
    for rule in every:
        print(render.rule_line(rule))
    print(f"{policy.id:<28} {policy.title}\n{'':<29}the last step of every chain: 'guidance-rules rules {policy.id}'")
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


def cmd_batch(args: argparse.Namespace, knowledge: KnowledgeBase) -> int:
    from guidance_rules.cli.batch import BatchInputError, Terminated, run_batch

    try:
        return run_batch(args, knowledge)
    except Terminated:  # the temporary file is gone and --out is as it was
        return 128 + 15
    except BatchInputError as error:
        raise Invalid([(error.field, str(error))]) from None


def cmd_audit(args: argparse.Namespace, knowledge: KnowledgeBase) -> int:
    from guidance_rules.cli.audit import run_audit_command

    return run_audit_command(args, knowledge)


def cmd_table(args: argparse.Namespace, knowledge: KnowledgeBase) -> int:
    from guidance_rules.audit.table import render as render_table

    sys.stdout.write(render_table(knowledge, args.format))
    return EXIT_OK


COMMANDS: dict[str, Callable[[argparse.Namespace, KnowledgeBase], int]] = {
    "recommend": cmd_recommend,
    "examples": cmd_examples,
    "rules": cmd_rules,
    "schema": cmd_schema,
    "batch": cmd_batch,
    "audit": cmd_audit,
    "table": cmd_table,
    "what-if": cmd_what_if,
    "diff": cmd_diff,
}

if __name__ == "__main__":
    sys.exit(main())
