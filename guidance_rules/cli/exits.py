"""The command's exit statuses (defined in `guidance_rules._exits`, which the service's commands
use too: `serve` and `consultations` are registered into this command from the service layer)."""

from __future__ import annotations

from guidance_rules._exits import ERROR, INTERRUPTED, INVALID, OK, TERMINATED

__all__ = ["ERROR", "INTERRUPTED", "INVALID", "OK", "TERMINATED"]
