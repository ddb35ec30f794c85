"""One case as the command line takes it (a JSON file, standard input or options), answered or
refused with field-named problems (exit 2). Shared by recommend, what-if and examples."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from guidance_rules.cli.parser import CASE_OPTIONS
from guidance_rules.errors import InputError
from guidance_rules.model import Recommendation, fold_case
from guidance_rules.recommendation.recommender import Recommender
from guidance_rules.rulebase.conditions import BOOL_FIELDS

BOM = "\ufeff"  # editors on Windows save UTF-8 with it; batch always accepted it


def answer(recommender: Recommender, data: Any) -> Recommendation:
    """The answer for one case; invalid input (schema or rule base) becomes `InputError` (exit 2)."""
    try:
        return recommender.recommend(data)
    except ValidationError as error:
        from guidance_rules.recommendation.problems import problems_of  # only a refusal needs its wording

        raise InputError(problems_of(error, recommender.knowledge)) from None


def grouped(problems: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """One line per message: a contradiction names every field involved once, as 'tissue, site'."""
    fields: dict[str, list[str]] = {}
    for field, message in problems:
        fields.setdefault(message, []).append(field)
    return [(", ".join(f for f in names if f), message) for message, names in fields.items()]


def read_text(source: str) -> str:
    """A case file's text (or standard input's, for '-'), without a UTF-8 byte order mark."""
    try:
        if source == "-":
            return sys.stdin.read().removeprefix(BOM)
        return Path(source).read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise InputError([("file", f"'{source}' not found")]) from None
    except (UnicodeDecodeError, IsADirectoryError) as error:
        raise InputError([("file", f"'{source}' cannot be read as UTF-8 text: {error}")]) from None


def _options_case(args: argparse.Namespace) -> dict[str, Any]:
    """The case fields given as options; text values are case-insensitive (`--site Knee`)."""
    names = (*CASE_OPTIONS, *BOOL_FIELDS, "anatomy_variance", "available_modalities")
    return fold_case({name: getattr(args, name) for name in names if getattr(args, name) is not None})


def _json_case(text: str) -> dict[str, Any]:
    """A case given as JSON. Its reader (`cli.inputs`, with the record types batch uses) is
    imported here, so a case given as options (`recommend --site hip ...`) starts without it."""
    from guidance_rules.cli.inputs import parse_json_case

    return parse_json_case(text)


def case_data(args: argparse.Namespace) -> dict[str, Any]:
    """The case given by a file, standard input or options (a field given twice is refused)."""
    options = _options_case(args)
    if args.file is not None:
        data = _json_case(read_text(args.file))
        clash = sorted(set(options) & set(data))
        if clash:
            raise InputError([(clash[0], "given both in the file and as an option; give it once")])
        data.update(options)
    elif options:
        data = options
    elif not sys.stdin.isatty():
        data = _json_case(sys.stdin.read().removeprefix(BOM))
    else:
        raise InputError([("", "no case given: pass a JSON file, '-' for standard input, or options such as --site knee --injectate prp")])
    return data
