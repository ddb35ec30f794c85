"""The typed error hierarchy. Every message says what went wrong and what would be valid."""

from __future__ import annotations

import sys


class GuidanceRulesError(Exception):
    """Base of every error this package raises on purpose."""

    def __reduce__(self) -> tuple[object, ...]:
        """Pickled as its message and attributes, whatever its constructor takes: an error raised in a
        worker process (the audit's, the diff's, batch's) must reach the parent. The default pickles
        the constructor's arguments as `args` (the message alone), which a constructor of two or
        more arguments cannot take back; the pool's result thread then died and the parent waited forever."""
        return _restore, (type(self), str(self), self.__dict__)


def _restore(kind: type[GuidanceRulesError], message: str, state: dict[str, object]) -> GuidanceRulesError:
    error = kind.__new__(kind)
    Exception.__init__(error, message)
    error.__dict__.update(state)
    return error


class RuleFileError(GuidanceRulesError, ValueError):
    """A rule file cannot be loaded: it names the file, the rule (if any) and the key."""

    def __init__(self, file: str, message: str, rule: str | None = None, key: str | None = None):
        self.file, self.rule, self.key = file, rule, key
        where = file + (f", rule {rule}" if rule else "") + (f", key '{key}'" if key else "")
        super().__init__(f"{where}: {message}")


class InputError(GuidanceRulesError, ValueError):
    """Input or arguments that are not valid: a file that is no case, a CSV header that does not
    fit the options, an input that cannot be opened. `problems` holds (field, message) pairs, each
    message saying what was given and what would be valid; the command line exits 2 with them."""

    def __init__(self, problems: list[tuple[str, str]]):
        self.problems = problems
        super().__init__("; ".join(f"{field}: {message}" if field else message for field, message in problems))


class Terminated(BaseException):
    """SIGTERM turned into an exception where the work is, so a batch cleans up as on Ctrl-C.

    Like KeyboardInterrupt it is no error and no `GuidanceRulesError`: `except Exception` and
    `except GuidanceRulesError` must not swallow it."""


class CaseError(GuidanceRulesError, ValueError):
    """A case that is well-formed but invalid against the rule base: an unknown site, a field a
    case without a site must give, or a contradiction. `fields` names every field involved;
    the library raises it to callers as a `pydantic.ValidationError` located at those fields."""

    def __init__(self, fields: tuple[str, ...], message: str, kind: str):
        self.fields, self.kind = fields, kind
        super().__init__(message)


class EngineError(GuidanceRulesError, RuntimeError):
    """The rules engine failed, or the rule base gave no usable answer for a valid case.

    This is always a defect in the rule base or the engine, never the caller's input.
    """


class AuditError(GuidanceRulesError, RuntimeError):
    """The audit cannot prove what it reports (a case of the space never evaluated, or evaluated
    twice): a defect in the audit itself, so it stops rather than pass on a partial enumeration."""


class EngineBusyError(GuidanceRulesError, RuntimeError):
    """The engine was entered again by the thread already inside it (a signal handler calling
    `recommend` mid-evaluation). The C engine is not re-entrant, so this is refused, not risked."""


class EngineUnavailableError(GuidanceRulesError, RuntimeError):
    """durable-rules' C extension cannot be loaded: an installation problem, not a defect.

    The usual cause is durable-rules 2.0.28 built from its release archive on Python 3.13 or
    later, which it does not support as released; the message says what to run instead.
    """

    def __init__(self, cause: ImportError) -> None:
        self.cause = cause
        python, version = sys.executable, ".".join(map(str, sys.version_info[:3]))
        super().__init__(
            f"the rules engine (durable-rules' C extension 'durable_rules_engine') cannot be loaded by Python {version} "
            f"({python}): {cause}. durable-rules 2.0.28 as released does not work on Python 3.13 or later. To fix it, run "
            f"`{python} -m guidance_rules.engine.build --install`: it builds the engine wheel this project uses (the same "
            "release with one removed C call replaced; needs a C compiler and the Python headers) and installs it into this "
            "environment "
            "(README: 'Python 3.13 and later')."
        )
