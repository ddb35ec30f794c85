"""The `guidance-rules` argument parser: every command's options, and the conventions they share.

A usage error is two lines (what was wrong, with the closest option, command or value when one
is near, and where the usage is), not the whole usage; every command has a description; -q and
-v are accepted before or after the command. argparse suggests near misses itself only from
Python 3.14, so the suggestions are made here with difflib.
"""

from __future__ import annotations

import argparse
import codecs
import difflib
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, NoReturn

import guidance_rules.cli.exits as exits
import guidance_rules.cli.notices as notices
from guidance_rules.model import Case
from guidance_rules.rulebase.conditions import BOOL_FIELDS, CASE_FIELDS
from guidance_rules.rulebase.domain import KnowledgeBase
from guidance_rules.rulebase.load import default_knowledge

Command = Callable[[argparse.Namespace, KnowledgeBase], int]
CASE_OPTIONS = ("site", "region", "depth", "tissue", "target_size", "injectate", "approach")
CASE_FIELD_HELP = {name: field.description for name, field in Case.model_fields.items() if field.description}


def _closest(given: str, choices: Sequence[str]) -> str:
    """'; did you mean X?' for the closest of `choices`, or nothing when none is near."""
    close = difflib.get_close_matches(given, list(choices), n=1, cutoff=0.6)
    return f"; did you mean '{close[0]}'?" if close else ""


def _sentence(text: str | None) -> str | None:
    return f"{text[:1].upper()}{text[1:]}." if text else None


def _verbosity(parser: argparse.ArgumentParser, default: Any) -> None:
    """-q and -v, on the main parser (with the default) and on each command (without one, so a
    command's parse does not undo `-q` given before it)."""
    group = parser.add_mutually_exclusive_group()
    group.add_argument(
        "-q", "--quiet", dest="verbosity", action="store_const", const=notices.QUIET, default=default, help="say only errors"
    )
    group.add_argument(
        "-v",
        "--verbose",
        dest="verbosity",
        action="store_const",
        const=notices.VERBOSE,
        default=default,
        help="say more: the rule base used, and an internal error's traceback",
    )


Arguments = Callable[[argparse.ArgumentParser], None]


class _Commands(argparse._SubParsersAction):  # type: ignore[type-arg]
    """The commands: each gets a description (its help as a sentence, unless it has its own)
    and -q/-v, whichever module adds it (the service adds serve and consultations).

    A command added with `arguments=` gets its options only when the command line names it (or
    when every parser is asked for, `complete()`): a process runs one command, and adding the
    options of all of them was a tenth of a one-case command's own start-up."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._pending: dict[str, Arguments] = {}

    def add_parser(self, name: str, arguments: Arguments | None = None, **kwargs: Any) -> argparse.ArgumentParser:
        kwargs.setdefault("description", _sentence(kwargs.get("help")))
        parser: argparse.ArgumentParser = super().add_parser(name, **kwargs)
        _verbosity(parser, argparse.SUPPRESS)
        if arguments is not None:
            self._pending[name] = arguments
        return parser

    def complete(self) -> None:
        """Give every command its options now (shell completion reads them all)."""
        for name in list(self._pending):
            self._arguments(name)

    def _arguments(self, name: str) -> None:
        arguments = self._pending.pop(name, None)
        if arguments is not None:
            arguments(self.choices[name])

    def __call__(
        self, parser: argparse.ArgumentParser, namespace: argparse.Namespace, values: Any, option_string: str | None = None
    ) -> None:
        self._arguments(values[0])  # the named command (argparse checked it is one of the choices)
        super().__call__(parser, namespace, values, option_string)


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
        self.commands: _Commands | None = None

    def complete(self) -> None:
        """Every command's options added (shell completion, help that lists them all)."""
        if self.commands is not None:
            self.commands.complete()
            for command in self.commands.choices.values():
                if isinstance(command, _Parser):
                    command.complete()

    def add_subparsers(self, **kwargs: Any) -> Any:
        kwargs.setdefault("action", _Commands)
        kwargs.setdefault("parser_class", _Parser)
        commands = super().add_subparsers(**kwargs)
        assert isinstance(commands, _Commands)
        self.commands = commands
        return commands

    def error(self, message: str) -> NoReturn:
        """Two lines: the problem, and where the usage is (the whole usage was 14 lines)."""
        self.exit(exits.INVALID, f"{self.prog}: error: {message}\nRun '{self.prog} --help' for the usage.\n")

    def _check_value(self, action: argparse.Action, value: Any) -> None:
        """A value outside the choices (a command, --format) is named with the closest choice."""
        if action.choices is not None and value not in action.choices:
            choices = [str(choice) for choice in action.choices]
            hint = _closest(str(value), choices)
            if isinstance(action, argparse._SubParsersAction):  # said without argparse's 'argument COMMAND:'
                commands = ", ".join(choices)
                raise argparse.ArgumentError(
                    None, f"'{value}' is not a command{hint}" + (" The" if hint else "; the") + f" commands: {commands}"
                )
            raise argparse.ArgumentError(action, f"'{value}' is not one of {', '.join(choices)}{hint}")

    def parse_args(self, args: Sequence[str] | None = None, namespace: Any = None) -> Any:  # type: ignore[override]
        parsed, extras = self.parse_known_args(args, namespace)
        if extras:
            self._command_of(parsed).unrecognized(extras)
        return parsed

    def _command_of(self, parsed: argparse.Namespace) -> _Parser:
        """The (sub)command's parser the arguments reached, whose options an unknown one is near."""
        parser = self
        while parser.commands is not None and (name := getattr(parsed, parser.commands.dest, None)) in parser.commands.choices:
            parser = parser.commands.choices[name]
        return parser

    def unrecognized(self, extras: list[str]) -> NoReturn:
        option = next((extra for extra in extras if extra.startswith("-")), None)
        if option is None:
            self.error(f"unexpected argument '{extras[0]}'")
        given = option.split("=", 1)[0]
        options = [o for o in self._option_string_actions if o.startswith("--")]  # argparse has no public list
        self.error(f"unknown option '{given}'{_closest(given, options)}")


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


def positive(text: str) -> int:
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


def _delimiter(text: str) -> str:
    """A CSV delimiter: one character, or 'tab'."""
    value = {"tab": "\t", "\\t": "\t"}.get(text.lower(), text)
    if len(value) != 1 or value in '"\r\n':
        raise argparse.ArgumentTypeError(f"'{text}' was given; give one character such as ',' or ';', or 'tab'")
    return value


def _encoding(text: str) -> str:
    """A CSV file's text encoding: UTF-8 or Windows-1252 (Python's codec name)."""
    try:
        name = codecs.lookup(text).name
    except LookupError:
        name = ""
    if name not in ("utf-8", "cp1252"):
        raise argparse.ArgumentTypeError(f"'{text}' was given; give utf-8 or windows-1252")
    return name


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


def build(commands: dict[str, Command]) -> _Parser:
    """The parser of every command (each command's options added once it is named, or by
    `complete()`); the service adds its own commands to `commands`."""
    parser = _Parser(prog="guidance-rules", description="Imaging guidance for musculoskeletal and spinal injections, with sources.")
    parser.add_argument("--version", action="store_true", help="show the package and rule base versions")
    parser.add_argument("--rules", metavar="DIR", type=Path, help="use the rule base in DIR instead of the shipped one")
    _verbosity(parser, notices.NORMAL)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    _one_case_commands(sub)
    _rule_base_commands(sub)
    _batch_command(sub)
    from guidance_rules.service.cli import register  # serve, consultations: the service registers its own commands

    register(sub, commands, count=positive)
    return parser


def _one_case_commands(sub: Any) -> None:
    sub.add_parser(
        "recommend",
        _recommend_arguments,
        help="recommend guidance for one case (file, '-' for stdin, or options)",
        description="Recommend imaging guidance for one case. Values are case-insensitive; a field left out is "
        "taken from the site, the tissue or a default, and listed under assumptions.",
    )
    sub.add_parser("what-if", _whatif_arguments, help="for each other modality, the smallest changes to the case that give it")
    sub.add_parser("examples", _examples_arguments, help="run every case in examples/ and compare with its expected modality")


def _recommend_arguments(rec: argparse.ArgumentParser) -> None:
    _case_arguments(rec)
    output = rec.add_mutually_exclusive_group()
    output.add_argument("--json", action="store_true", help="print the Recommendation JSON only")
    output.add_argument("--brief", action="store_true", help="the answer in a few lines, naming every rule that decided it")


def _whatif_arguments(whatif: argparse.ArgumentParser) -> None:
    _case_arguments(whatif)
    whatif.add_argument("--json", action="store_true", help="the what-if result as JSON")
    bound = whatif.add_mutually_exclusive_group()
    bound.add_argument(
        "--max-changes", type=positive, default=3, metavar="N", help="largest set of changes searched, 1 or more (default 3)"
    )
    bound.add_argument("--exhaustive", action="store_true", help="no bound on the number of changes (may take seconds)")


def _examples_arguments(ex: argparse.ArgumentParser) -> None:
    ex.add_argument("--json", action="store_true", help="one Recommendation JSON per line, with the example's name")
    ex.add_argument("--dir", type=Path, help="the examples folder (default: the checkout's examples/)")


def _rule_base_commands(sub: Any) -> None:
    sub.add_parser("diff", _diff_arguments, help="every case whose answer differs between two rule bases; exit 1 if any")
    sub.add_parser("rules", _rules_arguments, help="list every rule, or show one in full")
    sub.add_parser("schema", help="print the JSON Schema of a case")
    sub.add_parser("audit", _audit_arguments, help="check the rule base: static checks, every valid case, the invariants")
    sub.add_parser("table", _table_arguments, help="decision table: per site, injectate x anatomy variances -> modality")


def _diff_arguments(diff: argparse.ArgumentParser) -> None:
    diff.add_argument("old", type=Path, help="the old rule base folder")
    diff.add_argument("new", type=Path, help="the new rule base folder")
    diff.add_argument("--json", action="store_true", help="the report as JSON")
    diff.add_argument("--html", metavar="FILE", type=writable, help="also write a self-contained HTML report")
    diff.add_argument("--workers", type=positive, metavar="N", default=0, help="worker processes, 1 or more (default: one per core)")
    diff.add_argument("--site", dest="sites", action="append", metavar="SITE", help="only the site and approach cases of SITE (repeat)")
    diff.add_argument("--consultations", metavar="DB", help="replay the cases of this consultation record (a database URL) instead")


def _rules_arguments(rules: argparse.ArgumentParser) -> None:
    rules.add_argument("id", nargs="?", help="a rule id to show in full (case-insensitive; POLICY-SELECT is the policy)")
    rules.add_argument("--json", action="store_true", help="the rules (or the one rule) as JSON")


def _audit_arguments(audit: argparse.ArgumentParser) -> None:
    audit.add_argument("--json", action="store_true", help="the report as JSON")
    audit.add_argument("--html", metavar="FILE", type=writable, help="also write a self-contained HTML report")
    audit.add_argument("--workers", type=positive, metavar="N", default=0, help="worker processes, 1 or more (default: one per core)")
    audit.add_argument("--quick", action="store_true", help="site cases only, not the whole field-by-field space")


def _table_arguments(table: argparse.ArgumentParser) -> None:
    table.add_argument("--format", choices=("md", "csv", "html"), default="md", help="output format (default: md)")


def _batch_command(sub: Any) -> None:
    sub.add_parser("batch", _batch_arguments, help="many cases: JSON Lines or CSV in, JSON Lines out")


def _batch_arguments(batch: argparse.ArgumentParser) -> None:
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
        "--delimiter",
        type=_delimiter,
        metavar="CHAR",
        help="CSV cell delimiter: ',' ';' or 'tab' (default: the one the header uses, said on standard error)",
    )
    batch.add_argument(
        "--encoding",
        type=_encoding,
        metavar="NAME",
        help="CSV text encoding: utf-8 or windows-1252 (default: UTF-8, with or without BOM, if the start of the file is "
        "UTF-8, else Windows-1252, said on standard error)",
    )
    batch.add_argument(
        "--id-column",
        metavar="NAME",
        help="a column (or JSON key) to carry to each output record as its id; a case field named here stays in the case too",
    )
    batch.add_argument(
        "--extra-columns",
        choices=("error", "ignore"),
        default="error",
        help="other columns that are not case fields: refused (default; a CSV header at once, a JSON key on its record) or ignored",
    )
    batch.add_argument(
        "--workers",
        type=positive,
        metavar="N",
        default=0,
        help="worker processes for large inputs, 1 or more (default: one per core; 1: none)",
    )


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
