"""What one case loads (issue 22, target 2): the command line's start-up is mostly imports, so
what `recommend` does not need must stay off its import path. Each check runs in a fresh
interpreter, because this test process has imported everything already."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

# Never needed to answer one case: the service's web, database and FHIR stack, the audit, what-if,
# batch and diff, and the libraries only they use.
NEVER_FOR_ONE_CASE = (
    "guidance_rules.audit",
    "guidance_rules.recommendation.whatif",
    "guidance_rules.cli.whatif",
    "guidance_rules.cli.batch",
    "guidance_rules.cli.diff",
    "guidance_rules.service.app",
    "guidance_rules.service.store",
    "guidance_rules.service.fhir",
    "fastapi",
    "starlette",
    "uvicorn",
    "sqlalchemy",
    "fhir",
    "jwt",
    "prometheus_client",
    "tqdm",
    "argcomplete",
    "multiprocessing",
)


def _modules_after(program: str) -> list[str]:
    """The modules loaded once `program` has run, in a fresh interpreter."""
    script = textwrap.dedent(program) + "\nimport json, sys\nprint(json.dumps(sorted(sys.modules)), file=sys.stderr)\n"
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return list(json.loads(done.stderr.strip().splitlines()[-1]))


def _loaded(modules: list[str], prefixes: tuple[str, ...]) -> list[str]:
    return [m for m in modules if any(m == p or m.startswith(p + ".") for p in prefixes)]


def test_importing_the_package_loads_no_layer_until_a_name_is_used() -> None:
    """`import guidance_rules.cli` (the command's entry) must not drag in the whole library
    before the command decides what it needs."""
    modules = _modules_after("import guidance_rules")
    assert _loaded(modules, ("guidance_rules",)) == ["guidance_rules", "guidance_rules._version"]
    assert "pydantic" not in modules


def test_one_case_through_the_library_loads_only_what_it_needs() -> None:
    modules = _modules_after(
        """
        import guidance_rules
        rec = guidance_rules.recommend(guidance_rules.Case(site="hip", injectate="cell_based"))
        assert rec.modality
        """
    )
    assert _loaded(modules, (*NEVER_FOR_ONE_CASE, "guidance_rules.cli", "guidance_rules.service")) == []


# Needed by the command line only for a case given as JSON (the reader, shared with batch) or
# refused (the wording of its problems): not for a valid case given as options.
ONLY_FOR_JSON_OR_A_REFUSAL = ("guidance_rules.cli.inputs", "guidance_rules.recommendation.problems")


def test_one_case_through_the_command_loads_only_what_it_needs() -> None:
    """`guidance-rules recommend` imports the service's command registration (a few argparse
    lines, so `serve` is listed in the help) but nothing of the service itself; `--json` writes
    the answer without building pydantic's schema of it."""
    modules = _modules_after(
        """
        from guidance_rules.cli import main
        from guidance_rules.model import Recommendation
        assert main(["recommend", "--site", "hip", "--injectate", "cell_based", "--json"]) == 0
        assert not Recommendation.__pydantic_complete__, "the answer's schema was built"
        """
    )
    assert _loaded(modules, (*NEVER_FOR_ONE_CASE, *ONLY_FOR_JSON_OR_A_REFUSAL)) == []
    assert _loaded(modules, ("guidance_rules.service",)) == ["guidance_rules.service", "guidance_rules.service.cli"]


def test_a_case_given_as_json_or_refused_loads_the_reader_and_the_wording() -> None:
    """The other side of the check above: the modules it keeps off the path are the ones these
    inputs need, so leaving them out of the options path is what the check measures."""
    modules = _modules_after(
        """
        import io, sys
        from guidance_rules.cli import main
        sys.stdin = io.StringIO('{"site": "hip", "injectate": "prp"}')
        assert main(["recommend", "-", "--json"]) == 0
        assert main(["recommend", "--site", "hip", "--injectate", "bogus"]) == 2
        """
    )
    assert _loaded(modules, ONLY_FOR_JSON_OR_A_REFUSAL) == list(ONLY_FOR_JSON_OR_A_REFUSAL)


def test_the_command_leaves_garbage_collection_on() -> None:
    """The entry pauses the collector only while modules load; a command that runs long (batch,
    audit, serve) must run with it on, or its cyclic garbage would never be freed."""
    modules = _modules_after(
        """
        import gc
        from guidance_rules.cli import main
        assert main(["recommend", "--site", "knee", "--injectate", "prp", "--json"]) == 0
        assert gc.isenabled()
        """
    )
    assert "guidance_rules.cli.commands" in modules


def test_a_command_run_in_process_leaves_its_garbage_collectable() -> None:
    """Only the process's own command line (no argv) freezes at the end: a caller that runs
    commands itself must not have its uncollected garbage frozen for good, call after call."""
    modules = _modules_after(
        """
        import gc
        from guidance_rules.cli import main
        frozen = gc.get_freeze_count()
        assert main(["recommend", "--site", "knee", "--injectate", "prp", "--json"]) == 0
        assert gc.get_freeze_count() <= frozen, (frozen, gc.get_freeze_count())  # frozen objects may be freed
        """
    )
    assert "guidance_rules.cli.dispatch" in modules
