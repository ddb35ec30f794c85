"""`guidance-rules`: parse the arguments, run the command, and turn every failure into a message
and an exit status (guidance_rules.cli.exits), never a traceback (unless -v asks for one)."""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence

import guidance_rules.cli.exits as exits
import guidance_rules.cli.notices as notices
import guidance_rules.cli.render as render
from guidance_rules._version import __version__
from guidance_rules.cli.case import grouped
from guidance_rules.cli.commands import COMMANDS
from guidance_rules.cli.parser import build
from guidance_rules.errors import GuidanceRulesError, InputError, RuleFileError, Terminated
from guidance_rules.rulebase.load import default_knowledge, load


def main(argv: Sequence[str] | None = None) -> int:
    parser = build(COMMANDS)
    if "_ARGCOMPLETE" in os.environ:  # shell completion (argcomplete): only imported when completing
        import argcomplete

        parser.complete()  # every command's options, which completion offers
        argcomplete.autocomplete(parser)
    args = parser.parse_args(argv)
    notices.set_level(args.verbosity)
    render.use(render.Style.detect(sys.stdout))
    try:
        knowledge = load(args.rules) if args.rules else default_knowledge()
        notices.detail(f"rule base: {knowledge.directory} (version {knowledge.version}, {knowledge.digest})")
        if args.version:
            print(f"guidance-rules {__version__} (rule base {knowledge.version}, {knowledge.digest})")
            return exits.OK
        if not args.command:
            parser.print_help()
            return exits.INVALID
        return COMMANDS[args.command](args, knowledge)
    except InputError as error:
        for field, message in grouped(error.problems):
            print(f"invalid input: {field + ': ' if field else ''}{message}", file=sys.stderr)
        return exits.INVALID
    except RuleFileError as error:  # a rule base the user named is their input (2); the shipped one is ours (1)
        print(f"rule base error: {error}", file=sys.stderr)
        return exits.INVALID if args.rules else exits.ERROR
    except BrokenPipeError:
        return exits.OK
    except KeyboardInterrupt:
        return exits.INTERRUPTED
    except Terminated:
        return exits.TERMINATED
    except (GuidanceRulesError, OSError) as error:
        print(f"error: {error}", file=sys.stderr)
        return exits.ERROR
    except Exception as error:  # the last line of defence: never a traceback, unless -v asks for it
        if notices.level() >= notices.VERBOSE:
            import traceback

            traceback.print_exc()
        print(f"internal error: {type(error).__name__}: {error}", file=sys.stderr)
        return exits.ERROR
