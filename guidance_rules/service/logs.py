"""Structured logs: one JSON object per line on standard error (request, consultation, warnings)."""

from __future__ import annotations

import datetime as dt
import json
import logging
import sys
from typing import Any

LOGGER = "guidance_rules.service"


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "ts": dt.datetime.fromtimestamp(record.created, dt.UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "event": record.getMessage(),
        }
        out.update(getattr(record, "fields", {}))
        if record.exc_info and record.levelno >= logging.ERROR:
            out["error"] = f"{record.exc_info[0].__name__ if record.exc_info[0] else 'Error'}: {record.exc_info[1]}"
        return json.dumps(out, default=str)


def logger() -> logging.Logger:
    log = logging.getLogger(LOGGER)
    if not log.handlers:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(JsonFormatter())
        log.addHandler(handler)
        log.setLevel(logging.INFO)
        log.propagate = False
    return log


def event(name: str, level: int = logging.INFO, **fields: Any) -> None:
    logger().log(level, name, extra={"fields": fields})
