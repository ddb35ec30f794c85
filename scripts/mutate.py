"""Mutation testing of the core layers with mutmut: do the tests catch small planted bugs?

Usage: .venv/bin/python scripts/mutate.py [LAYER | FILE ...] [--changed] [--jobs N] [--tests PATH ...]
    LAYER      one of the layers below (all of its files)
    FILE       a source file of a core layer, e.g. guidance_rules/recommendation/cache.py
    --changed  the core-layer files changed against main (committed or not)
    --jobs N   mutants run at once (default 1: the machine is shared)
    --tests    run these tests instead of the layer's own (narrower and faster)

Each run works in .mutation/<name>/ (git-ignored): a copy of the package, the tests and the rule
files, with a mutmut configuration that mutates only the chosen files and runs only that layer's
tests (mutmut first maps each test to the functions it calls, then runs for each mutant only the
tests that reach it). It prints the kill rate per file and lists every survivor; see one with
`cd .mutation/<name> && ../../.venv/bin/mutmut show NAME`. Not part of the test command: it takes
minutes per module. Survivors judged equivalent (no test could tell them apart) are listed, with
the reason, in EQUIVALENT below.
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
MUTMUT = Path(sys.executable).with_name("mutmut")

# Tests that start a Python subprocess in the checkout import the mutated copy there, outside mutmut's
# control (one failed mutmut's unmutated run on a busy machine): left out of the model layer's runs.
SUBPROCESS_TESTS = ["-k", "not signal_handlers and not fork_while and not process_pools"]
# layer -> (files to mutate, the tests that own them)
LAYERS: dict[str, tuple[list[str], list[str]]] = {
    "model": (["guidance_rules/model/*.py"], ["tests/model", "tests/recommendation/test_recommender.py", *SUBPROCESS_TESTS]),
    "rulebase": (["guidance_rules/rulebase/*.py"], ["tests/rulebase", "tests/test_rule_examples.py"]),
    "engine": (["guidance_rules/engine/*.py"], ["tests/engine"]),
    "recommendation": (["guidance_rules/recommendation/*.py"], ["tests/recommendation"]),
    "audit": (["guidance_rules/audit/*.py"], ["tests/audit"]),
    "cli": (["guidance_rules/cli/batch.py", "guidance_rules/cli/inputs.py"], ["tests/cli/test_batch.py"]),
    "service": (
        ["guidance_rules/service/fhir.py", "guidance_rules/service/auth.py", "guidance_rules/service/store.py"],
        ["tests/service/test_fhir.py", "tests/service/test_store.py", "tests/service/test_auth_and_store.py"],
    ),
}

# Survivors no test can kill, by mutant name, with the reason (kept here so a run can subtract them).
EQUIVALENT: dict[str, str] = {
    # --- model ---
    # --- rulebase ---
    "guidance_rules.rulebase.resolve.x__plain__mutmut_1": "the str/bool test is a fast path: without it a str or bool falls "
    "through the Enum and list tests and is returned as it is",
    "guidance_rules.rulebase.resolve.x__plain__mutmut_2": "the same fast path (str and bool)",
    "guidance_rules.rulebase.resolve.x__plain__mutmut_3": "the same fast path (None and str)",
    "guidance_rules.rulebase.resolve.x__show__mutmut_2": "lower-casing every value, not only bools: every value a constraint "
    "can show comes from the rule files' vocabulary, which is all lower case",
    "guidance_rules.rulebase.resolve.x_resolve__mutmut_10": "sites.get(None) is None: the guard only saves a lookup",
    "guidance_rules.rulebase.resolve.x_resolve__mutmut_22": "get_close_matches with n=3: only the first match is used",
    "guidance_rules.rulebase.resolve.x_resolve__mutmut_25": "get_close_matches with n=2: only the first match is used",
    # --- engine ---
    # --- recommendation ---
    "guidance_rules.recommendation.cache.xǁLRUǁput__mutmut_1": "size < 0 for <= 0: a size-0 LRU then stores and at once evicts, "
    "keeping nothing either way (the early return only saves the work)",
    "guidance_rules.recommendation.cache.xǁLRUǁput__mutmut_6": "popitem(last=None) for last=False: None is false, the same call",
    "guidance_rules.recommendation.recommender.xǁRecommenderǁ__init____mutmut_1": "the default answer-cache size 8193 for 8192: the "
    "answers are the same at any size (LRU eviction is tested in test_cache.py)",
    "guidance_rules.recommendation.recommender.xǁRecommenderǁ_cached__mutmut_1": "the look-up before validating a Case only saves its "
    "validation: without it the same key is looked up after",
    "guidance_rules.recommendation.recommender.xǁRecommenderǁ_cached__mutmut_2": "the same fast path (its look-up skipped)",
    "guidance_rules.recommendation.recommender.xǁRecommenderǁ_cached__mutmut_3": "the same fast path (None is never a key: a miss, then "
    "the look-up after validation)",
    "guidance_rules.recommendation.recommender.xǁRecommenderǁ_many__mutmut_16": "recommend_many looks in the answers again after _cached "
    "missed there: the same miss",
    "guidance_rules.recommendation.recommender.xǁRecommenderǁ_fire__mutmut_10": "keys made for a stratum without a memo are never read",
    "guidance_rules.recommendation.recommender.xǁRecommenderǁ_fire__mutmut_41": "zip strict=None: fire_parts returns one list per case, "
    "the lengths always agree",
    "guidance_rules.recommendation.recommender.xǁRecommenderǁ_fire__mutmut_44": "zip without strict: the same (lengths always agree)",
    "guidance_rules.recommendation.recommender.xǁRecommenderǁ_fire__mutmut_45": "zip strict=False: the same (lengths always agree)",
    "guidance_rules.recommendation.recommender.xǁRecommenderǁevaluate_many__mutmut_3": "a batch of exactly session_cases goes through the "
    "loop as one slice: the same session",
    "guidance_rules.recommendation.recommender.xǁRecommenderǁ_evaluate_session__mutmut_54": "zip strict=None: the output stratum returns "
    "one list per live case",
    "guidance_rules.recommendation.recommender.xǁRecommenderǁ_evaluate_session__mutmut_57": "zip without strict: the same",
    "guidance_rules.recommendation.recommender.xǁRecommenderǁ_evaluate_session__mutmut_64": "zip strict=False: the same",
    "guidance_rules.recommendation.recommender.xǁRecommenderǁ_choose__mutmut_1": "the choice memo of a pure function (rate, select) "
    "skipped: the same ratings are computed again",
    "guidance_rules.recommendation.recommender.xǁRecommenderǁ_choose__mutmut_2": "the same memo missed (None is never a key)",
    "guidance_rules.recommendation.recommender.xǁRecommenderǁ_choose__mutmut_13": "the same memo filled under None, never looked up: "
    "recomputed",
    "guidance_rules.recommendation.recommender.xǁRecommenderǁ_choose__mutmut_14": "the same memo holding None, read as a miss: recomputed",
    "guidance_rules.recommendation.recommender.x_invalid_case__mutmut_24": "getattr without a default: every field a CaseError names is a "
    "Case field",
    "guidance_rules.recommendation.rows.x_case_cells__mutmut_9": "the id looked up without an id column: cells.get(None) is None, the "
    "same as no id",
    "guidance_rules.recommendation.rows.xǁScorerǁoutcomes__mutmut_9": "zip strict=None: keys are made one per case, the lengths always "
    "agree",
    "guidance_rules.recommendation.rows.xǁScorerǁoutcomes__mutmut_12": "zip without strict: the same",
    "guidance_rules.recommendation.rows.xǁScorerǁoutcomes__mutmut_13": "zip strict=False: the same",
    "guidance_rules.recommendation.rows.xǁScorerǁoutcomes__mutmut_18": "or for and: new is a dict keyed by the key and a memo hit is "
    "found again, so a repeated key changes nothing",
    "guidance_rules.recommendation.rows.xǁScorerǁoutcomes__mutmut_31": "zip strict=None for strict=False: both stop at the shorter (the "
    "answers of the new cases)",
    "guidance_rules.recommendation.rows.xǁScorerǁoutcomes__mutmut_34": "zip without strict: the same as strict=False",
    "guidance_rules.recommendation.rows.xǁScorerǁoutcomes__mutmut_48": "zip strict=None: the answers after the new cases are one per "
    "uncached case",
    "guidance_rules.recommendation.rows.xǁScorerǁoutcomes__mutmut_51": "zip without strict: the same",
    "guidance_rules.recommendation.rows.xǁScorerǁoutcomes__mutmut_52": "zip strict=False: the same",
    "guidance_rules.recommendation.rows.xǁScorerǁoutcomes__mutmut_59": "zip strict=None: keys are made one per case",
    "guidance_rules.recommendation.rows.xǁScorerǁoutcomes__mutmut_62": "zip without strict: the same",
    "guidance_rules.recommendation.rows.xǁScorerǁoutcomes__mutmut_63": "zip strict=False: the same",
    "guidance_rules.recommendation.rows.x__key__mutmut_4": "allow_nan=None for False: None is false, the same call",
    "guidance_rules.recommendation.problems.x_allowed__mutmut_10": "lower-casing every value, not only bools: every allowed value of a "
    "case field is lower case already",
    "guidance_rules.recommendation.problems.x_suggest__mutmut_12": "get_close_matches with n=3: only the first match is used",
    "guidance_rules.recommendation.problems.x_suggest__mutmut_16": "get_close_matches with n=2: only the first match is used",
    "guidance_rules.recommendation.problems.x_problems_of__mutmut_5": "include_url=True adds a url to each error, which is never read",
    "guidance_rules.recommendation.problems.x_problems_of__mutmut_44": "knowledge only gives the sites, and site is never missing (every "
    "Case field but injectate is optional)",
    "guidance_rules.recommendation.problems.x_problems_of__mutmut_49": "'required' alone only for a required field without allowed "
    "values: the one required field, injectate, has them",
    "guidance_rules.recommendation.problems.x_problems_of__mutmut_52": "the same unreachable 'required' alone",
    "guidance_rules.recommendation.problems.x_problems_of__mutmut_53": "the same unreachable 'required' alone",
    "guidance_rules.recommendation.problems.x_problems_of__mutmut_87": "or for and: every Case field has allowed values and no other "
    "field has any",
    "guidance_rules.recommendation.problems.x_problems_of__mutmut_107": "Case's flags are StrictBool: pydantic reports bool_type for "
    "them, never bool_parsing",
    "guidance_rules.recommendation.problems.x_problems_of__mutmut_108": "the same: never bool_parsing",
    # --- audit ---
    # --- cli ---
    "guidance_rules.cli.inputs.x_parse_json_case__mutmut_34": "the long-number walk on every text, not only those longer than the digit "
    "limit: a shorter text holds no such number, so it finds none",
    "guidance_rules.cli.inputs.x_parse_json_case__mutmut_35": ">= for >: a text of exactly the digit limit's length cannot hold a number "
    "of more digits than the limit",
    "guidance_rules.cli.inputs.x_read_jsonl__mutmut_24": "'UTF-8' for 'utf-8': Python's codec names are case-insensitive",
    "guidance_rules.cli.inputs.x_detect_csv__mutmut_5": "'UTF-8' for 'utf-8': the same codec",
    "guidance_rules.cli.inputs.x_detect_csv__mutmut_17": "- 4 for - 3: 'unexpected end of data' is only ever a cut character of at most 3 "
    "bytes at the end",
    "guidance_rules.cli.inputs.x_detect_csv__mutmut_45": "removesuffix(BOM) for removeprefix: a BOM left on the header holds no "
    "delimiter, so the counts are the same",
    "guidance_rules.cli.inputs.x_detect_csv__mutmut_46": "b'XXXX' for b'' when no line is non-blank: neither holds a delimiter, so ',' "
    "either way",
    "guidance_rules.cli.inputs.x_detect_csv__mutmut_51": "'XXXX'.join: the joined text gains X characters, never a delimiter",
    "guidance_rules.cli.inputs.x_detect_csv__mutmut_59": "max over counts that are all 0 returns the first delimiter, ','; the same as "
    "the explicit ','",
    "guidance_rules.cli.inputs.x__rows__mutmut_15": "None for False as the open state at a row's start: both false",
    "guidance_rules.cli.inputs.x__rows__mutmut_44": "a None appended after the held lines at the end of the input: reading stops there, "
    "as it would at the end",
    "guidance_rules.cli.inputs.x__rows__mutmut_74": "!= 1 for == 1: a row of several lines starts with an open quote, so the fast path's "
    "no-quote test already excludes it, and a one-line row read by the csv module gives the same cells",
    "guidance_rules.cli.inputs.x__rows__mutmut_75": "== 2: the same (a two-line row has a quote on its first line)",
    "guidance_rules.cli.inputs.x__rows__mutmut_83": "next(reader, None): a csv reader over one string always yields a row, the default is "
    "never used",
    "guidance_rules.cli.inputs.x__rows__mutmut_85": "next(reader) without a default: the same",
    "guidance_rules.cli.inputs.x_read_csv__mutmut_19": "the id index starts as '' for None: it is set when the header is read, before any "
    "row uses it",
    "guidance_rules.cli.inputs.x_read_csv__mutmut_30": "seen.header = 1 for += 1: there is one header line",
    "guidance_rules.cli.inputs.x_read_csv__mutmut_82": "zip strict=None: the row's length was checked against the header's just before",
    "guidance_rules.cli.inputs.x_read_csv__mutmut_85": "zip without strict: the same",
    "guidance_rules.cli.inputs.x_read_csv__mutmut_86": "zip strict=False: the same",
    "guidance_rules.cli.batch.xǁAnswersǁplan__mutmut_3": "a key made for a record that is no case (json null): such a record never reads "
    "its key",
    "guidance_rules.cli.batch.xǁAnswersǁplan__mutmut_10": "the key 'XXXX' for a record that is no case: never read",
    "guidance_rules.cli.batch.xǁAnswersǁplan__mutmut_15": "zip strict=None: one key is made per record",
    "guidance_rules.cli.batch.xǁAnswersǁplan__mutmut_18": "zip without strict: the same",
    "guidance_rules.cli.batch.xǁAnswersǁplan__mutmut_19": "zip strict=False: the same",
    "guidance_rules.cli.batch.xǁAnswersǁplan__mutmut_20": "and for or between 'in found' and 'in new': a key found again is found again, "
    "a new one set again to the same case",
    "guidance_rules.cli.batch.xǁAnswersǁplan__mutmut_21": "records that are no case are then answered too (as invalid), but assemble "
    "writes their own problems, never that answer",
    "guidance_rules.cli.batch.xǁAnswersǁassemble__mutmut_3": "zip strict=None: one body comes back per new case",
    "guidance_rules.cli.batch.xǁAnswersǁassemble__mutmut_6": "zip without strict: the same",
    "guidance_rules.cli.batch.xǁAnswersǁassemble__mutmut_7": "zip strict=False: the same",
    "guidance_rules.cli.batch.xǁAnswersǁassemble__mutmut_25": "zip strict=None: one key per record",
    "guidance_rules.cli.batch.xǁAnswersǁassemble__mutmut_28": "zip without strict: the same",
    "guidance_rules.cli.batch.xǁAnswersǁassemble__mutmut_29": "zip strict=False: the same",
    "guidance_rules.cli.batch.x_process__mutmut_2": "workers=2 by default: the worker pool writes the same bytes in the same order "
    "(test_batch.py proves it); only where the work runs differs",
    "guidance_rules.cli.batch.x_process__mutmut_23": "zip strict=None: one body per record of the block",
    "guidance_rules.cli.batch.x_process__mutmut_26": "zip without strict: the same",
    "guidance_rules.cli.batch.x_process__mutmut_27": "zip strict=False: the same",
    "guidance_rules.cli.batch.x_process__mutmut_67": "every block answered here before the pool: the same bytes, the pool then gets none",
    "guidance_rules.cli.batch.x_process__mutmut_70": "the same: every block answered here",
    "guidance_rules.cli.batch.x_process__mutmut_71": "the first blocks answered here even with one worker, then the rest (none or more) "
    "here too: the same bytes",
    "guidance_rules.cli.batch.x_process__mutmut_73": ">= 1 for > 1: one worker process instead of none writes the same bytes",
    "guidance_rules.cli.batch.x_process__mutmut_74": "> 2 for > 1: two workers answer here instead of in a pool, the same bytes",
    "guidance_rules.cli.batch.x_process__mutmut_80": ">= 1: a pool of one worker writes the same bytes",
    "guidance_rules.cli.batch.x_process__mutmut_81": "> 2: no pool for two workers, the same bytes",
    "guidance_rules.cli.batch.x_run__mutmut_5": "the Recommender's answer-cache size left at its default: the same answers (batch keeps "
    "its own memo)",
    "guidance_rules.cli.batch.x_run__mutmut_7": "workers 1 instead of one per core when not given: the same bytes, no pool",
    "guidance_rules.cli.batch.x_run__mutmut_8": "the same: workers 1 when not given",
    "guidance_rules.cli.batch.x_run__mutmut_9": "2 when the core count is unknown: the same bytes",
    "guidance_rules.cli.batch.x_run__mutmut_56": "workers left at process's default: the same bytes",
    "guidance_rules.cli.batch.x__format__mutmut_4": "the suffix of '-' is '': the same as no suffix",
    "guidance_rules.cli.batch.x__format__mutmut_8": "the same: Path('-').suffix is ''",
    "guidance_rules.cli.batch.x__format__mutmut_9": "'XXXX' for '' as standard input's suffix: no format has it, so the content decides, "
    "as before",
    "guidance_rules.cli.batch.x__head__mutmut_10": "b'XXXX' for b'' as the head of a stream without peek: neither is JSON nor holds a "
    "delimiter or a non-UTF-8 byte, the same detection",
    "guidance_rules.cli.batch.x__summary__mutmut_43": "replace every 'line', not only the first: each noun holds 'line' once",
    "guidance_rules.cli.batch.x__summary__mutmut_48": "replace 2 'line's, not 1: the same (each noun holds one)",
    "guidance_rules.cli.batch.x__umask__mutmut_3": "the umask set to 0o100 for a moment instead of 0o077: it is read and restored at "
    "once, no file is made meanwhile",
    "guidance_rules.cli.batch.x__write_atomically__mutmut_1": "temp starts as '' for None: unlinking '' fails with an OSError that is "
    "suppressed, as nothing is done for None",
    # --- service ---
}


# Mutants no in-process run can reach, by name prefix, with the reason: the function runs only while
# the module is imported, before mutmut switches a mutant on. Left out of the rate and counted apart
# ("import-time"); tests that build the schema still guard it in the ordinary suite.
IMPORT_TIME: dict[str, str] = {
    "guidance_rules.model.answer.xǁFrozenMapǁ__get_pydantic_core_schema__": "pydantic builds the schema once, when the "
    "models that use FrozenMap are defined at import",
}


def kind(mutant: str, state: str) -> str:
    if mutant in EQUIVALENT:
        return "equivalent"
    if any(mutant.startswith(prefix) for prefix in IMPORT_TIME):
        return "import-time"
    return state


def layer_of(path: str) -> str | None:
    for name, (patterns, _) in LAYERS.items():
        if any(Path(path).match(p) for p in patterns):
            return name
    return None


def changed_files() -> list[str]:
    """Core-layer files changed since this branch left main, committed or not."""
    base = subprocess.run(["git", "merge-base", "main", "HEAD"], capture_output=True, text=True, cwd=ROOT).stdout.strip() or "main"
    out = subprocess.run(["git", "diff", "--name-only", base, "--", "guidance_rules"], capture_output=True, text=True, cwd=ROOT)
    return [f for f in out.stdout.split() if f.endswith(".py") and layer_of(f) and (ROOT / f).exists()]


def plan(targets: list[str]) -> dict[str, tuple[list[str], list[str]]]:
    """One run per layer: the files to mutate and the tests to run."""
    runs: dict[str, tuple[list[str], list[str]]] = {}
    for target in targets:
        if target in LAYERS:
            runs[target] = LAYERS[target]
            continue
        layer = layer_of(target)
        if layer is None:
            raise SystemExit(f"mutate: '{target}' is neither a layer ({', '.join(LAYERS)}) nor a file of one")
        files, tests = runs.get(layer, ([], LAYERS[layer][1]))
        if files != LAYERS[layer][0]:
            runs[layer] = ([*files, target], tests)
    return runs


def prepare(name: str, files: list[str], tests: list[str]) -> Path:
    """A fresh working copy with a mutmut configuration for just these files and tests."""
    work = ROOT / ".mutation" / name
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    for folder in ("guidance_rules", "tests", "rules", "examples"):
        shutil.copytree(ROOT / folder, work / folder, ignore=ignore)
    shutil.copy2(ROOT / "pyproject.toml", work / "pyproject.toml")
    lines = [
        "[mutmut]",
        "source_paths = guidance_rules",
        "also_copy =\n    rules\n    examples",
        "only_mutate =\n" + "\n".join(f"    {f}" for f in files),
        "pytest_add_cli_args_test_selection =\n" + "\n".join(f"    {t}" for t in tests),
        "pytest_add_cli_args =\n    -p\n    no:cacheprovider\n    -q",
        "use_git_change_detection = false",
        "",
    ]
    (work / "setup.cfg").write_text("\n".join(lines))
    return work


def results(work: Path) -> dict[str, str]:
    """mutant name -> status (killed, survived, timeout, no tests, ...), from `mutmut results --all`."""
    out = subprocess.run([str(MUTMUT), "results", "--all", "true"], capture_output=True, text=True, cwd=work)
    found = {}
    for line in out.stdout.splitlines():
        match = re.match(r"\s*(\S+): (.+)$", line)
        if match:
            found[match.group(1)] = match.group(2).strip()
    return found


def report(name: str, status: dict[str, str]) -> None:
    """Kill rate per module: killed (and timeouts) over all mutants, equivalent ones left out."""
    per: dict[str, Counter[str]] = {}
    for mutant, state in status.items():
        match = re.match(r"(.+?)\.x[_ǁ]", mutant)  # module.x_function__mutmut_N or module.xǁClassǁmethod__mutmut_N
        module = match.group(1) if match else mutant
        per.setdefault(module, Counter())[kind(mutant, state)] += 1
    print(f"\n== {name}: kill rate per module (killed + timeout) / (all - equivalent - import-time)")
    for module, counts in sorted(per.items()):
        total = sum(counts.values()) - counts["equivalent"] - counts["import-time"]
        killed = counts["killed"] + counts["timeout"]
        rate = f"{100 * killed / total:5.1f} %" if total else "  n/a"
        print(f"  {module:45} {rate}  {killed}/{total}  ({', '.join(f'{k} {v}' for k, v in sorted(counts.items()))})")
    survivors = sorted(m for m, s in status.items() if kind(m, s) not in ("killed", "timeout", "equivalent", "import-time"))
    if survivors:
        print(f"  survivors ({len(survivors)}): show one with: cd {(ROOT / '.mutation' / name).relative_to(ROOT)} && mutmut show NAME")
        for mutant in survivors:
            print(f"    {mutant}  [{status[mutant]}]")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("targets", nargs="*", help="layers or files")
    parser.add_argument("--changed", action="store_true", help="the core-layer files changed against main")
    parser.add_argument("--jobs", type=int, default=1, help="mutants run at once (default 1)")
    parser.add_argument("--tests", nargs="+", help="run these tests instead of the layer's (a faster, narrower run)")
    args = parser.parse_args()
    targets = args.targets + (changed_files() if args.changed else [])
    if not targets:
        parser.error("name a layer or file, or give --changed")
    if not MUTMUT.exists():
        raise SystemExit(f"mutate: {MUTMUT} is missing; install the mutation extra: sh scripts/setup.sh dev,mutation")
    for name, (files, tests) in plan(targets).items():
        work = prepare(name, files, args.tests or tests)
        print(f"== {name}: mutating {', '.join(files)}; tests {', '.join(args.tests or tests)}", flush=True)
        with (work / "mutmut.log").open("w") as log:  # its progress display redraws one line: kept out of the report
            command = [str(MUTMUT), "run", "--max-children", str(args.jobs)]
            subprocess.run(command, cwd=work, stdout=log, stderr=subprocess.STDOUT, check=False)
        report(name, results(work))
    return 0


if __name__ == "__main__":
    sys.exit(main())
