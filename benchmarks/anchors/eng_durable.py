"""The anchors' 12 rules in durable-rules 2.0.28, used as its documentation shows: each case is
one fact asserted into a session of its own, and the session is deleted afterwards.

Facts, not events: an event is consumed by the first rule it matches, a fact lets every matching
rule fire. The conditions use `&` and `|` with every comparison in parentheses (Python's `and`,
`or` and `not` compile silently to something else), `== False` for a false flag (`-m.x` means
"absent"), and an `|` condition fires once per true branch, so each action records its rule once.
A fact that matches nothing raises MessageNotHandledException; its session exists all the same.

Set DURABLE_NO_DISPATCHER=1 to run without durable's two background timer threads (they serve only
timed rules; left on, they are part of what the library costs as documented).
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Callable
from typing import Any

import durable.lang as durable_lang
from durable.engine import Host, MessageNotHandledException
from durable.lang import get_host, m, ruleset, when_all

from benchmarks.anchors.decision import Answer, Case, modality_of

RULESET = "anchor_injection"


class _HostWithoutTimers(Host):  # type: ignore[misc]
    """A host that does not start the background dispatch timers (engine.Host._run starts them)."""

    def _run(self) -> None:
        pass


if os.environ.get("DURABLE_NO_DISPATCHER") == "1" and durable_lang._main_host is None:
    durable_lang._main_host = _HostWithoutTimers()

_fired: dict[str, list[str]] = {}  # session id -> names of the rules fired in it


def _record(name: str) -> Callable[[Any], None]:
    def action(c: Any) -> None:
        names = _fired.get(c.m.sid)
        if names is not None and name not in names:
            names.append(name)

    return action


def _define() -> Any:
    with ruleset(RULESET):
        when_all((m.tissue == "tendon") | (m.tissue == "ligament") | (m.tissue == "bursa"))(_record("soft_tissue_us"))
        when_all((m.tissue == "spinal") | (m.site == "facet") | (m.site == "epidural"))(_record("spinal_fluoro"))
        when_all((m.depth == "deep") & (m.tissue == "joint"))(_record("deep_joint_imaging"))
        when_all(m.cell_based == True)(_record("cell_based_imaging"))  # noqa: E712
        when_all((m.obesity == True) | (m.prior_surgery == True))(_record("habitus_imaging"))  # noqa: E712
        when_all(m.near_neurovascular == True)(_record("neurovascular_us"))  # noqa: E712
        when_all(m.needs_contrast == True)(_record("contrast_fluoro"))  # noqa: E712
        when_all((m.site == "hip") & (m.cell_based == True) & (m.needs_contrast == True))(_record("hip_cell_contrast_both"))  # noqa: E712
        when_all(
            (m.depth == "superficial")
            & (m.tissue == "joint")
            & (m.cell_based == False)  # noqa: E712
            & (m.obesity == False)  # noqa: E712
            & (m.prior_surgery == False)  # noqa: E712
            & (m.near_neurovascular == False)  # noqa: E712
        )(_record("superficial_landmark"))
        when_all((m.tissue == "nerve") | (m.site == "nerve"))(_record("nerve_target_us"))
        when_all(m.site == "sacroiliac")(_record("sacroiliac_imaging"))
        when_all((m.site == "tendon_sheath") | (m.site == "subacromial"))(_record("small_space_us"))
    return get_host()  # registering the ruleset compiles it in the C engine


def make() -> Callable[[Case], Answer]:
    """An evaluator; call once per process (a ruleset name registers only once)."""
    host = _define()
    assert_fact, delete_state = host.assert_fact, host.delete_state
    next_id = itertools.count().__next__

    def evaluate(case: Case) -> Answer:
        sid = f"a{next_id()}"
        names = _fired[sid] = []
        try:
            state = assert_fact(RULESET, {**case, "sid": sid})
            if state and "exception" in state:  # an action's exception is stored, not raised
                raise RuntimeError(f"an anchor action failed: {state['exception']}")
        except MessageNotHandledException:
            pass  # no rule matched
        finally:
            delete_state(RULESET, sid)
            del _fired[sid]
        return modality_of(names)

    return evaluate
