"""`guidance-rules serve` and `guidance-rules consultations report`, registered into the main
command by one hook. Nothing web-related is imported until one of these commands runs, so the
core command line works without the `service` extra."""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import sys
from collections.abc import Callable
from typing import Any

from guidance_rules._exits import ERROR, INVALID, OK
from guidance_rules.errors import GuidanceRulesError
from guidance_rules.rulebase.domain import KnowledgeBase

EXTRA_HINT = "the service needs its extra: pip install 'guidance-rules[service]'"


class ServiceCommandError(GuidanceRulesError, ValueError):
    """Bad options for a service command (exit 2 with this message)."""


def register(sub: Any, commands: dict[str, Callable[[argparse.Namespace, KnowledgeBase], int]], count: Callable[[str], int] = int) -> None:
    """Add serve and consultations to the main parser; `count` is the CLI's type for a count of
    worker processes (1 or more), so --workers is checked as every other command's is."""
    serve = sub.add_parser("serve", help="run the CDS Hooks service (FHIR R4 orders in, cards out, consultations recorded)")
    serve.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    serve.add_argument("--port", type=int, default=8080, help="port (default 8080)")
    serve.add_argument("--workers", type=count, default=1, metavar="N", help="worker processes, 1 or more (default 1)")
    serve.add_argument("--db", metavar="URL", help="consultation database: sqlite:///FILE (default) or postgresql://user:pw@host/db")
    serve.add_argument("--auth-config", metavar="FILE", help="trusted EHR issuers, their JWKS and this service's audience (YAML/JSON)")
    serve.add_argument("--insecure-no-auth", action="store_true", help="DEVELOPMENT ONLY: accept unsigned requests")
    serve.add_argument("--available", action="append", metavar="MODALITY", help="imaging this clinic has; repeat (default: both)")
    serve.add_argument(
        "--public-url", metavar="URL", help="the address EHRs reach this service at, for the cards' page links (behind a proxy)"
    )
    serve.add_argument(
        "--allowed-host",
        action="append",
        metavar="NAME",
        help="a Host name requests may carry; repeat (default: localhost, 127.0.0.1, ::1; the --public-url host is always allowed)",
    )
    serve.add_argument("--header-timeout", metavar="SECONDS", help="time allowed for a request's head (default 10)")
    serve.add_argument("--body-timeout", metavar="SECONDS", help="time allowed for a request's body after its head (default 30)")
    commands["serve"] = cmd_serve

    consult = sub.add_parser("consultations", help="the consultation record")
    csub = consult.add_subparsers(dest="consultations_command")
    report = csub.add_parser("report", help="override rates by site, modality and rule over a period")
    report.add_argument("--db", metavar="URL", help="consultation database URL (default: the serve default)")
    report.add_argument("--since", metavar="DATE", help="from this date (ISO 8601, inclusive)")
    report.add_argument("--until", metavar="DATE", help="up to this date (ISO 8601, exclusive)")
    report.add_argument("--json", action="store_true", help="the report as JSON")
    commands["consultations"] = cmd_consultations


def _date(value: str | None, option: str) -> dt.datetime | None:
    if value is None:
        return None
    try:
        stamp = dt.datetime.fromisoformat(value)
    except ValueError:
        raise ServiceCommandError(f"{option}: '{value}' is not an ISO 8601 date such as 2025-01-31") from None
    # the record keeps UTC instants (SQLite keeps no offset): compare in UTC
    return stamp.astimezone(dt.UTC) if stamp.tzinfo else stamp.replace(tzinfo=dt.UTC)


def cmd_serve(args: argparse.Namespace, knowledge: KnowledgeBase) -> int:
    try:
        from .app import create_app  # noqa: F401  (fails early without the extra)
        from .listen import run
    except ImportError as error:
        print(f"error: {EXTRA_HINT} ({error})", file=sys.stderr)
        return ERROR
    if not 0 < args.port < 65536:  # --workers is checked as the options are parsed
        print(f"invalid input: --port: {args.port} was given; a port is 1 to 65535", file=sys.stderr)
        return INVALID
    env = {
        "GUIDANCE_RULES_RULES": str(knowledge.directory),
        "GUIDANCE_RULES_DB": args.db,
        "GUIDANCE_RULES_AUTH_CONFIG": args.auth_config,
        "GUIDANCE_RULES_INSECURE_NO_AUTH": "1" if args.insecure_no_auth else None,
        "GUIDANCE_RULES_AVAILABLE": ",".join(args.available) if args.available else None,
        "GUIDANCE_RULES_PUBLIC_URL": args.public_url,
        "GUIDANCE_RULES_ALLOWED_HOSTS": ",".join(args.allowed_host) if args.allowed_host else None,
        "GUIDANCE_RULES_HEADER_TIMEOUT": args.header_timeout,
        "GUIDANCE_RULES_BODY_TIMEOUT": args.body_timeout,
    }
    for key, value in env.items():
        if value is not None:
            os.environ[key] = value
    if args.insecure_no_auth:
        print("WARNING: --insecure-no-auth: JWT verification is OFF. Any caller can use this service. Development only.", file=sys.stderr)
    from .settings import Settings

    try:
        from .app import create_app as check

        check(Settings.from_env())  # configuration errors are reported here, once, before workers start
    except (ValueError, GuidanceRulesError) as error:
        print(f"invalid input: {error}", file=sys.stderr)
        return INVALID
    try:
        run(
            args.workers,
            app="guidance_rules.service.app:create_app",
            factory=True,
            host=args.host,
            port=args.port,
            http="guidance_rules.service.server:HeaderDeadlineProtocol",
            access_log=False,
            log_level="warning",
        )
    except OSError as error:  # the port taken or the address not this machine's
        print(f"error: cannot listen on {args.host}:{args.port}: {error.strerror or error}", file=sys.stderr)
        return ERROR
    return OK


def cmd_consultations(args: argparse.Namespace, knowledge: KnowledgeBase) -> int:
    if args.consultations_command != "report":
        print("invalid input: say 'guidance-rules consultations report'", file=sys.stderr)
        return INVALID
    try:
        from .report import override_report, render
        from .store import DEFAULT_URL, Store
    except ImportError as error:
        print(f"error: {EXTRA_HINT} ({error})", file=sys.stderr)
        return ERROR
    try:
        since, until = _date(args.since, "--since"), _date(args.until, "--until")
    except ServiceCommandError as error:
        print(f"invalid input: {error}", file=sys.stderr)
        return INVALID
    from .errors import NoRecord, StoreUnavailable

    try:
        store = Store(args.db or os.environ.get("GUIDANCE_RULES_DB") or DEFAULT_URL, create=False)
        try:
            report = override_report(store.rows(since, until))
        finally:
            store.close()
    except NoRecord as error:
        hint = "give the URL the service was started with (--db or GUIDANCE_RULES_DB)"
        print(f"invalid input: --db: {error.message}; {hint}", file=sys.stderr)
        return INVALID
    except StoreUnavailable as error:
        print(f"error: {error.message}", file=sys.stderr)
        return ERROR
    report["period"] = {"since": args.since, "until": args.until}
    print(json.dumps(report, indent=2) if args.json else render(report))
    return OK
