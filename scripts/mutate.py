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
        # the in-process tests: a `serve` subprocess (most of tests/service) imports no mutant
        [f"tests/service/test_{name}.py" for name in ("fhir_units", "fhir", "store_units", "store_unit", "store", "auth_units")],
    ),
}

_COMPILE, _DURABLE = "guidance_rules.engine.compile.", "guidance_rules.engine.durable."

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
    "guidance_rules.rulebase.files.x_cache_dir__mutmut_8": "an unset GUIDANCE_RULES_CACHE read as 'XXXX', not '': "
    "neither is a word that turns the cache off",
    "guidance_rules.rulebase.files.xǁRuleFilesǁ_key__mutmut_4": "another separator between digest and code fingerprint: "
    "the digest has a fixed length, so no boundary can move",
    **{
        f"guidance_rules.rulebase.files.xǁRuleFilesǁraw__mutmut_{n}": "getattr's default for O_NONBLOCK: used only where os "
        "lacks O_NONBLOCK (not on POSIX)"
        for n in (38, 41, 44)
    },
    "guidance_rules.rulebase.files.xǁRuleFilesǁraw__mutmut_61": "read() unbounded: the size check after it refuses the same "
    "files (only the cap on memory while reading goes)",
    "guidance_rules.rulebase.files.xǁRuleFilesǁraw__mutmut_63": "read(MAX + 2) for MAX + 1: a file past MAX is refused either way",
    **{
        f"guidance_rules.rulebase.files.xǁRuleFilesǁsave_parsed__mutmut_{n}": "ensure_ascii on the cache entry: escaped or "
        "not, the JSON reads back the same"
        for n in (13, 15, 22)
    },
    **{
        f"guidance_rules.rulebase.files.xǁRuleFilesǁsave_parsed__mutmut_{n}": "the temporary file's prefix or suffix: never "
        "read, and no name it can take matches rules-*.json"
        for n in (36, 37, 39, 40, 41, 42, 43, 44)
    },
    **{
        f"guidance_rules.rulebase.files.xǁRuleFilesǁsave_parsed__mutmut_{n}": "the entry's encoding: 'UTF-8' is an alias, "
        "and Python 3.11+ defaults to UTF-8 under every locale here"
        for n in (47, 50, 54)
    },
    "guidance_rules.rulebase.files.x__loader__mutmut_5": "getattr's default for CSafeLoader: libyaml is present (a test pins "
    "that it is used)",
    **{
        f"guidance_rules.rulebase.files.x__loader__mutmut_{n}": "the loader's `deep` default or pass-through: deep or not, "
        "PyYAML builds the same data (aliases, where it differs, are refused)"
        for n in (12, 25, 27, 28, 44, 46)
    },
    "guidance_rules.rulebase.files.x__loader__mutmut_8": "the same default, removed: CSafeLoader exists",
    "guidance_rules.rulebase.limits.x_check_limits__mutmut_28": ">= for > on condition entries: entries are even (2 + 2n), "
    "the bound 31 is odd",
    "guidance_rules.rulebase.limits.x_check_limits__mutmut_32": "(31 - 3) // 2 for (31 - 2) // 2: both 14",
    "guidance_rules.rulebase.space.x_approach_space__mutmut_20": "the probe's injectate: any one serves, no constraint pairs "
    "injectate with approach",
    "guidance_rules.rulebase.space.x_approach_space__mutmut_23": "the probe's named approach: any named one serves, the "
    "constraints treat them alike",
    **{
        f"guidance_rules.rulebase.load.{name}": "vocabulary(output=None) for output=False: None is false, the same call"
        for name in ("x__with_scopes__mutmut_2", "x__load_constraints__mutmut_15")
    },
    "guidance_rules.rulebase.load.x__load_sites__mutmut_39": "a site's evidence_tests None for (): _with_scopes sets them, "
    "parsed, before the rule base is built",
    **{
        f"guidance_rules.rulebase.load.x_load__mutmut_{n}": "a placeholder of the first KnowledgeBase (digest, constraints, "
        "rules, inactive): load replaces each before the rule base is returned"
        for n in (148, 154, 156, 157, 173)
    },
    "guidance_rules.rulebase.load.x_load__mutmut_235": "_with_scopes(base, None): its sites_file parameter is never read",
    # --- engine ---
    **{
        f"{_COMPILE}{name}": "a one-clause $and (or one-branch $or) for the clause alone: it matches the same facts"
        for name in ("x__condition__mutmut_4", "x__condition__mutmut_7", "x__expression__mutmut_8", "x__expression__mutmut_27")
    },
    **{
        f"{_COMPILE}{name}": "the part model built from a one-clause $and for the clause alone: the same nodes"
        for name in ("xǁ_Networkǁadd__mutmut_16", "xǁ_Networkǁadd__mutmut_17", "xǁ_Networkǁadd__mutmut_20")
    },
    **{f"{_COMPILE}x__expression__mutmut_{n}": "sorted() without key=str: one test's values share a type, same order" for n in (21, 23)},
    **{f"{_COMPILE}x_compile_rules__mutmut_{n}": "the binding name of a condition ('m'): durable-rules takes any name" for n in (73, 74)},
    **{f"{_COMPILE}x_compile_rules__mutmut_{n}": "sort_keys of the ruleset JSON: durable reads it as a mapping" for n in (92, 94, 95)},
    **{
        f"{_COMPILE}xǁ_Networkǁ{name}": "the part root's own property or operator: only children's are read"
        for name in (*(f"__init____mutmut_{n}" for n in (2, 3, 6, 7)), *(f"_rebuild__mutmut_{n}" for n in (3, 4, 7, 8)))
    },
    **{
        f"{_COMPILE}{name}": "a starting depth: set by the first add before anything reads it"
        for name in (
            "xǁ_Networkǁ__init____mutmut_10",
            "xǁ_Networkǁ__init____mutmut_11",
            "xǁ_Networkǁadd__mutmut_39",
            "xǁ_Nodeǁ__init____mutmut_6",
            "xǁ_Nodeǁ__init____mutmut_7",
        )
    },
    **{
        f"{_COMPILE}xǁ_Networkǁ_build__mutmut_{n}": "a join node's property or operator: joins are only counted"
        for n in (17, 18, 21, 22, 23, 24)
    },
    **{
        f"{_COMPILE}xǁ_Networkǁ_build__mutmut_{n}": "a negated test's operator name: non-eq nodes are only counted"
        for n in (37, 38, 45, 46)
    },
    **{f"{_DURABLE}xǁSessionǁ__init____mutmut_{n}": "a Session's first facts/touched: session() sets both at once" for n in (3, 4, 5, 6)},
    **{f"{_DURABLE}xǁSessionǁfire_parts__mutmut_{n}": "the payload's JSON separators: durable parses either" for n in (41, 43)},
    **{
        f"{_DURABLE}xǁDurableEngineǁrule_of__mutmut_{n}": "the fast path's slice: a wrong one misses, the message is "
        "parsed: the same answer"
        for n in (1, 3, 5, 6, 7, 8, 9, 10)
    },
    f"{_COMPILE}xǁ_Networkǁadd__mutmut_35": "< for <= on joins per node (127): every join adds to the match stack, whose "
    "limit (64) binds first",
    f"{_DURABLE}xǁDurableEngineǁ__init____mutmut_8": "session numbers from 2: any start gives distinct sids of the pool",
    f"{_DURABLE}x__case_no__mutmut_4": "rindex for index: a fired message holds one case_no",
    f"{_DURABLE}x__case_no__mutmut_9": "'X' allowed in the number: the next character is ',' or '}'",
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
    **{
        f"guidance_rules.recommendation.explain.xǁPartsǁ__init____mutmut_{n}": "the parts lock not reentrant: nothing takes it "
        "while holding it (_shared builds a part outside it, fragment serialises outside it)"
        for n in (3, 4)
    },
    **{
        f"guidance_rules.recommendation.explain.xǁPartsǁexplained__mutmut_{n}": "the look-up before _shared missed: _shared "
        "looks the same key up again and returns the part already built"
        for n in (4, 5)
    },
    **{
        f"guidance_rules.recommendation.explain.{name}": "zip strict=None, False or left out: a site's evidence_tests are "
        "parsed one per evidence row at load"
        for name in ("xǁPartsǁfigures__mutmut_11", "xǁPartsǁfigures__mutmut_14", "xǁPartsǁfigures__mutmut_15")
    },
    **{
        f"guidance_rules.recommendation.explain.xǁPartsǁratings__mutmut_{n}": "zip strict=None, False or left out: the key "
        "is made from Modality itself, one rating each"
        for n in (21, 24, 25)
    },
    "guidance_rules.recommendation.explain.x_values_of__mutmut_7": "None for () as the key part of no fields: the same "
    "constant for every case either way",
    **{
        f"guidance_rules.recommendation.explain.xǁPartsǁevidence__mutmut_{n}": "zip strict=None, False or left out: the mask "
        "is made one per evidence row"
        for n in (42, 45, 46)
    },
    "guidance_rules.recommendation.explain.xǁPartsǁsummary__mutmut_12": "the key names the deciding tie-breaks by count, "
    "not identity: policy.yaml has one tie-break per preferred modality, so with the chosen modality in the key the count "
    "names it",
    **{
        f"guidance_rules.recommendation.explain.xǁPartsǁgroup__mutmut_{n}": "another tag in a group's key: it only keeps group "
        "keys apart from a single step's, which start with a rule id, and no rule is named either way"
        for n in (2, 3)
    },
    "guidance_rules.recommendation.explain.xǁPartsǁgroup__mutmut_25": "rstrip('XX.XX') for rstrip('.'): it strips a capital "
    "X too, and no fact text in facts.yaml ends in one",
    "guidance_rules.recommendation.whatif.x__possible__mutmut_30": "another separator between the steps of a modality's "
    "rating rules: no modality offered as possible is rated by more than one rule (checked over the site space)",
    "guidance_rules.recommendation.explain.xǁPartsǁgroup__mutmut_40": "rstrip('XX.XX') for rstrip('.'): no fact text ends in a capital X",
    "guidance_rules.recommendation.explain.xǁPartsǁ_shared__mutmut_1": "every part built again instead of found: an equal "
    "part, only not shared (step looks its key up itself first)",
    **{
        f"guidance_rules.recommendation.explain.{name}": "a shared part missed or not kept: it is built again, equal, only "
        "not shared (speed and memory, not the answer)"
        for name in ("xǁPartsǁ_shared__mutmut_2", "xǁPartsǁ_shared__mutmut_6", "xǁPartsǁstep__mutmut_6", "xǁPartsǁstep__mutmut_7")
    },
    **{
        f"guidance_rules.recommendation.explain.xǁPartsǁstep__mutmut_{n}": "zip strict=None or left out: the values are read "
        "one per field read"
        for n in (27, 30, 31)
    },
    **{
        f"guidance_rules.recommendation.whatif.x_what_if__mutmut_{n}": "zip strict=None, False or left out: the evaluator "
        "returns one result per candidate"
        for n in (49, 52, 53)
    },
    # --- audit ---
    "guidance_rules.audit.explanation.x_explanation_problems__mutmut_30": "_override_problems does not read its kb argument "
    "(an unused parameter): None in its place changes nothing",
    "guidance_rules.audit.invariants.x__list_steps__mutmut_6": "combinations of more values than the list holds are empty: "
    "one more size adds no subset",
    "guidance_rules.audit.invariants.x__list_steps__mutmut_17": "t is one value longer than s, so s <= t and s < t are the same test",
    "guidance_rules.audit.invariants.x_check_case__mutmut_1": "'' and None are both false: `answer or answer_of(...)` builds the "
    "answer either way",
    "guidance_rules.audit.invariants.x_check_case__mutmut_28": "sorting whole (key, case, problem) items: within a chunk no two "
    "share an index, so the keys alone decide the order",
    "guidance_rules.audit.invariants.x_invariant_findings__mutmut_26": "only the default's empty list is read here, not its count",
    "guidance_rules.audit.invariants.x_minimal_case__mutmut_10": "without its site a case never resolves to the same values (they "
    "hold the site) or does not resolve: skipping the site only saves a resolution",
    "guidance_rules.audit.invariants.x_minimal_case__mutmut_11": "the same skip of the site (upper case)",
    "guidance_rules.audit.report.x_render_html__mutmut_32": "max's default is read only when no rule exists, and then no bar is drawn",
    "guidance_rules.audit.report.x_render_html__mutmut_37": "the same default of max (2 for 1)",
    "guidance_rules.audit.report.x_render_html__mutmut_38": "`or 2` for `or 1`: the fallback applies only when every count is 0, "
    "and every bar is then 0 wide whatever it is divided by",
    "guidance_rules.audit.report.x_render_html__mutmut_133": "standalone=None for False: to_html tests `not standalone`, so it "
    "gives the fragment either way",
    "guidance_rules.audit.report.x_widths__mutmut_9": "<= for < MIN_SHARE: a share of exactly MIN_SHARE is drawn MIN_SHARE wide "
    "either way, and the others scale to the same widths",
    "guidance_rules.audit.report.x_write_html__mutmut_10": "'UTF-8' and 'utf-8' name the same codec",
    "guidance_rules.audit.report.x_write_html__mutmut_2": "encoding=None writes in the locale's encoding, UTF-8 wherever the tests "
    "run (a UTF-8 locale or Python's UTF-8 mode); no in-process test can change it",
    "guidance_rules.audit.report.x_write_html__mutmut_4": "the encoding left out: the same as None",
    "guidance_rules.audit.diff_report.x_write_html__mutmut_16": "'UTF-8' and 'utf-8' name the same codec",
    "guidance_rules.audit.diff_report.x_write_html__mutmut_6": "encoding=None: the locale's encoding, UTF-8 wherever the tests run",
    "guidance_rules.audit.diff_report.x_write_html__mutmut_8": "the encoding left out: the same as None",
    "guidance_rules.audit.diff_report.x_render__mutmut_150": "no free space: None and an empty Counter are both false, so "
    "`if free` skips the panels either way",
    "guidance_rules.audit.diff_report.x_render__mutmut_152": "the same default left out (None)",
    "guidance_rules.audit.table.x__show__mutmut_2": "lower-casing every value, not only bools: every site default shown is a "
    "vocabulary value, all lower case",
    "guidance_rules.audit.table.x_decision_tables__mutmut_6": "the recommender's default cache size: a cache only saves work, and "
    "the table asks each case once",
    "guidance_rules.audit.table.x_decision_tables__mutmut_7": "a cache of 1 for 0: the same",
    "guidance_rules.audit.table.x_decision_tables__mutmut_37": "include_url adds a 'url' key to each error; its 'msg' is the same",
    "guidance_rules.audit.table.x_decision_tables__mutmut_65": "the defaults line from the second case: the same site and variance "
    "set, another injectate, which the line does not show",
    "guidance_rules.audit.check.x_statically_dead__mutmut_30": "zip of a rule's fields with one combination of their values: "
    "always the same length, so strict never raises",
    "guidance_rules.audit.check.x_statically_dead__mutmut_33": "the same zip, strict left out",
    "guidance_rules.audit.check.x_statically_dead__mutmut_34": "the same zip, strict=False",
    "guidance_rules.audit.check.x_monotone_findings__mutmut_25": "<= for < len(MODALITIES): no code equals it (answers are 0-3, "
    "the others 253-255)",
    "guidance_rules.audit.check.x_analyse_marks__mutmut_24": "a > b for a >= b: a rule against itself is skipped by `a != b` below",
    "guidance_rules.audit.check.x_analyse_marks__mutmut_61": "x.id > y.id for >=: a rule never rates a modality differently from "
    "itself, so no clash",
    "guidance_rules.audit.diff.x__evaluated__mutmut_5": "evaluate_many of no case gives no evaluation: the same empty iterator",
    "guidance_rules.audit.diff.x__resolution_inputs__mutmut_12": "field defaults sorted as (name, value) pairs without key=str: "
    "names are unique, so values are never compared and the order is the same",
    "guidance_rules.audit.diff.x__resolution_inputs__mutmut_14": "the same sort, key left out",
    "guidance_rules.audit.diff.x_diff_chunk__mutmut_4": "same_resolution None: every block resolved again under the new base, "
    "which gives the same values when the inputs are the same; only the shortcut is lost",
    "guidance_rules.audit.diff.x_diff_chunk__mutmut_50": "the same shortcut never taken",
    **{
        f"guidance_rules.audit.diff.x_diff_chunk__mutmut_{n}": "zip strict=None, left out or False on a block's two evaluations, or on its "
        "indices, cases and evaluations: one each per case by construction, so strict never raises"
        for n in (59, 62, 71, 75, 79, 80)
    },
    "guidance_rules.audit.diff.x_diff_chunk__mutmut_105": "fired = None only turns the same-rules shortcut off: the full "
    "comparison finds the same differences",
    "guidance_rules.audit.check.x_cache_findings__mutmut_3": "cache=None for False: the loader tests `if self.cache`, so None "
    "parses from YAML too",
    **{
        f"guidance_rules.audit.check.x__capped__mutmut_{n}": "the count line from the second finding's level or check, not the "
        "first's: _capped is given one check's findings (monotone), all of one level and check"
        for n in (9, 10, 12)
    },
    **{
        f"guidance_rules.audit.check.x_run_audit__mutmut_{n}": "the parent's recommender cache size: a cache only saves work, and "
        "the parent asks each case once (examples, equipment, one sample each)"
        for n in (13, 14)
    },
    **{
        f"guidance_rules.audit.check.x_run_audit__mutmut_{n}": "how many chunks a space is cut into: the chunks tile it either way "
        "(proved by complete()), and every result is merged by index"
        for n in (145, 147)
    },
    "guidance_rules.audit.check.x_run_audit__mutmut_171": "the joined firing bits start at bit 8 for bit 0: every rule shifted "
    "alike, so counts and the subset and overlap tests are the same",
    "guidance_rules.audit.check.x_run_audit__mutmut_178": "9 bits a case for 8 after the first space: one bit per case is set, "
    "the spaces' ranges still do not overlap and every rule is shifted alike",
    "guidance_rules.audit.check.xǁCheckerǁ__init____mutmut_5": "no Fit: explanation_problems then checks each citation "
    "directly (Fit is only its memo), with the same answers",
    "guidance_rules.audit.check.xǁCheckerǁ_problems__mutmut_31": "explanation_problems without the Fit memo: the same "
    "citation checks, computed directly",
    "guidance_rules.audit.check.xǁCheckerǁ_problems__mutmut_36": "explanation_problems without the steps: it builds the "
    "same steps from the same Parts itself",
    "guidance_rules.audit.check.xǁCheckerǁ_problems__mutmut_41": "get(..., None) for get(..., False): `not` of either is True",
    **{
        f"guidance_rules.audit.check.x__checker__mutmut_{n}": "a fresh Checker for a chunk instead of the kept one: only its "
        "memos are lost, the answers are the same"
        for n in (3, 4, 7)
    },
    **{
        f"guidance_rules.audit.check.x_evaluate_chunk__mutmut_{n}": "zip of the pending cases with their evaluations: "
        "evaluate_many returns one per case, so strict never raises"
        for n in (18, 21, 23)
    },
    **{
        f"guidance_rules.audit.diff.x_run_diff__mutmut_{n}": "the answer cache of the Recommender built only to surface compile errors "
        "before the pool starts: it answers nothing and is dropped"
        for n in (12, 14, 15, 17, 19, 20)
    },
    "guidance_rules.audit.diff.x_run_diff__mutmut_74": "5 jobs per worker, not 4: more, smaller chunks that still tile each space (a test "
    "checks the tiling and at least 4 per worker); only the load balance changes",
    "guidance_rules.audit.diff.x_run_diff__mutmut_76": "chunks of size // 8001, not // 8000: one fewer job at most, the same tiling",
    "guidance_rules.audit.diff.x_run_diff__mutmut_115": "the completeness proof's per-case record b'XXXX' for b'': the diff keeps none "
    "(its spans prove completeness), and 'XXXX' holds no UNEVALUATED byte (253)",
    "guidance_rules.audit.diff.xǁDiffChunkǁmerge_into__mutmut_39": "<= for < between two chunks' first indices: chunks tile the space, so "
    "two never share a first index (a repeated chunk stops the diff)",
    "guidance_rules.audit.diff.x__same_rules__mutmut_8": "!= for ==: the shortcut then needs every rule that fired to have "
    "changed while the same rules fire; every answer fires derive rules, whose one shaping part is the fact they derive, so "
    "changing one changes what fires after it: the shortcut is never taken and the full comparison runs",
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
    "guidance_rules.cli.batch.x_process__mutmut_23": "zip strict=None: one body per record of the block",
    "guidance_rules.cli.batch.x_process__mutmut_26": "zip without strict: the same",
    "guidance_rules.cli.batch.x_process__mutmut_27": "zip strict=False: the same",
    "guidance_rules.cli.batch.x_process__mutmut_80": ">= 1: a pool of one worker writes the same bytes",
    "guidance_rules.cli.batch.x_run__mutmut_5": "the Recommender's answer-cache size left at its default: the same answers (batch keeps "
    "its own memo)",
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
    **{
        f"guidance_rules.cli.batch.x__progress__mutmut_{n}": "the progress bar's stream left to tqdm: it is sys.stderr, read "
        "when the bar is made, the same stream"
        for n in (15, 21)
    },
    **{
        f"guidance_rules.cli.batch.x__progress__mutmut_{n}": "the bar's least redraw interval (left out: tqdm's 0.1 s; 1.5 s): "
        "only how often a long batch redraws it, the final bar is the same"
        for n in (22, 27)
    },
    "guidance_rules.cli.batch.x__progress__mutmut_33": "set_postfix_str(refresh=None): None is false, the same as refresh=False",
    **{
        f"guidance_rules.cli.batch.x__format__mutmut_{n}": "another name for JSON Lines found from the extension: every format "
        "but 'csv' is read as JSON Lines, and a format found from the extension is not said"
        for n in (23, 24)
    },
    # --- service ---
    "guidance_rules.service.store.xǁStoreǁ__init____mutmut_5": "_file '' for None: a writing store (create=True) sets it at once; a "
    "reader (create=False) only reads, and only writes and readiness look at it",
    "guidance_rules.service.store.xǁStoreǁ__init____mutmut_48": "pool_size=5 left out: 5 is SQLAlchemy's default",
    "guidance_rules.service.store.xǁStoreǁ__init____mutmut_56": "checkfirst=True left out: it is create_all's default",
    "guidance_rules.service.store.xǁStoreǁ_insert_new__mutmut_3": "the PostgreSQL insert on SQLite too: it compiles to the same INSERT "
    "... ON CONFLICT DO NOTHING RETURNING there",
    "guidance_rules.service.store.xǁStoreǁ_insert_new__mutmut_8": "no conflict target: each table has one unique key a row can collide on "
    "(feedback's id is generated), so DO NOTHING on any conflict is the same",
    "guidance_rules.service.store.xǁStoreǁ_probe__mutmut_7": "the probe's row is rolled back: its issuer text is never seen",
    "guidance_rules.service.store.xǁStoreǁ_probe__mutmut_8": "the same (the probe's issuer)",
    "guidance_rules.service.store.xǁStoreǁ_probe__mutmut_11": "the probe's jti 'None' for a uuid: rolled back, and only probes use the "
    "issuer 'readiness probe'",
    "guidance_rules.service.store.xǁStoreǁ_probe__mutmut_23": "typing.cast does nothing at run time",
    "guidance_rules.service.store.x__add_report_keys__mutmut_1": "the check before the lock only saves taking it: the check under the "
    "lock finds the column too",
    "guidance_rules.service.store.x__add_report_keys__mutmut_2": "the same (the check before the lock)",
    "guidance_rules.service.store.xǁStoreǁ_probe__mutmut_29": "SQL keywords and unquoted names are case-insensitive (SQLite; PostgreSQL "
    "folds them to lower case)",
    "guidance_rules.service.store.xǁStoreǁ_probe__mutmut_30": "the same (SQL and pragma words in another case)",
    "guidance_rules.service.store.xǁStoreǁ_probe__mutmut_33": "the same (SQL and pragma words in another case)",
    "guidance_rules.service.store.xǁStoreǁ_probe__mutmut_39": "the same (SQL and pragma words in another case)",
    "guidance_rules.service.store.xǁStoreǁ_probe__mutmut_40": "the same (SQL and pragma words in another case)",
    "guidance_rules.service.store.xǁStoreǁ_probe__mutmut_47": "the same (SQL and pragma words in another case)",
    "guidance_rules.service.store.x__add_report_keys__mutmut_15": "the same (SQL and pragma words in another case)",
    "guidance_rules.service.store.x__add_report_keys__mutmut_19": "the same (SQL and pragma words in another case)",
    "guidance_rules.service.store.x__add_report_keys__mutmut_20": "the same (SQL and pragma words in another case)",
    "guidance_rules.service.store.x__backfill_report_keys__mutmut_4": "the same (SQL and pragma words in another case)",
    "guidance_rules.service.store.x__backfill_report_keys__mutmut_5": "the same (SQL and pragma words in another case)",
    "guidance_rules.service.store.x__sqlite_pragmas__mutmut_4": "the same (SQL and pragma words in another case)",
    "guidance_rules.service.store.x__sqlite_pragmas__mutmut_5": "the same (SQL and pragma words in another case)",
    "guidance_rules.service.store.x__sqlite_pragmas__mutmut_8": "the same (SQL and pragma words in another case)",
    "guidance_rules.service.store.x__sqlite_pragmas__mutmut_9": "the same (SQL and pragma words in another case)",
    "guidance_rules.service.store.x__sqlite_pragmas__mutmut_12": "the same (SQL and pragma words in another case)",
    "guidance_rules.service.store.x__sqlite_pragmas__mutmut_13": "the same (SQL and pragma words in another case)",
    "guidance_rules.service.fhir.x__validated__mutmut_15": "include_url=True: the URL is a key "
    "of its own in each error, not part of the message used",
    "guidance_rules.service.fhir.x__entries__mutmut_25": "the type given to a Bundle sent "
    "without one is only validated, and the models check no code values",
    "guidance_rules.service.fhir.x__entries__mutmut_26": "the same (the type given to a Bundle without one)",
    "guidance_rules.service.fhir.x__entries__mutmut_121": "fullUrl kept whatever its type: "
    "the Bundle validated first refuses a fullUrl that is no string",
    "guidance_rules.service.fhir.xǁ_PatientRecordǁvariance__mutmut_35": "or for and: a 'no' with words is "
    "taken by the first branch, and 'at' never has words",
    "guidance_rules.service.fhir.xǁOrderReaderǁ_order__mutmut_19": "exclude_none=None: fhir.resources dumps without empty fields "
    "by default (only exclude_none=False keeps them)",
    "guidance_rules.service.fhir.xǁOrderReaderǁ_order__mutmut_21": "the same (exclude_none left out)",
    "guidance_rules.service.fhir.xǁOrderReaderǁ_order__mutmut_80": "the same (exclude_none=None)",
    "guidance_rules.service.fhir.xǁOrderReaderǁ_order__mutmut_82": "the same (exclude_none left out)",
    "guidance_rules.service.fhir.x__codings__mutmut_7": "a code 'XXXX' for none: codings without a code "
    "are left out by the same comprehension",
    "guidance_rules.service.fhir.x__observed_at__mutmut_29": "the suffix for any length: only partial dates (4 or 7 characters) and leap "
    "seconds (20 or more, where the slice is empty) arrive as text",
    "guidance_rules.service.fhir.x__observed_at__mutmut_36": "a suffix on the only other text, a leap second: fromisoformat refuses it "
    "either way",
    "guidance_rules.service.fhir.xǁOrderReaderǁ_broken__mutmut_22": "= for |=: related is empty when _broken fills it",
    "guidance_rules.service.fhir.xǁOrderReaderǁ_medication_concept__mutmut_7": "a MedicationRequest that validates has medication[x]: "
    "without a reference it has the concept, and the target is not looked at",
    "guidance_rules.service.fhir.xǁOrderReaderǁ_medication_concept__mutmut_21": "getattr without a default: every FHIR resource model has "
    "an id attribute",
    "guidance_rules.service.fhir.xǁOrderReaderǁ_medication_concept__mutmut_34": "or for and: medication[x] is a choice (concept or "
    "reference, never both), and with neither products.get('') is None",
    "guidance_rules.service.fhir.xǁ_PatientRecordǁ_surgery__mutmut_8": "a 'no' with nothing to say: variance() ignores an answer that is "
    "neither 'at' nor a 'doubt', whatever it is called",
    "guidance_rules.service.fhir.xǁ_PatientRecordǁ_surgery__mutmut_9": "the same ('no' with nothing to say)",
    "guidance_rules.service.fhir.xǁ_PatientRecordǁ_surgery__mutmut_57": "the same ('no' with nothing to say)",
    "guidance_rules.service.fhir.xǁ_PatientRecordǁ_surgery__mutmut_58": "the same ('no' with nothing to say)",
    "guidance_rules.service.auth.xǁAuthConfigǁload__mutmut_7": "UTF-8 for utf-8: the same codec",
    "guidance_rules.service.auth.xǁAuthConfigǁload__mutmut_65": "UTF-8 for utf-8: the same codec",
    "guidance_rules.service.auth.xǁVerifierǁverify__mutmut_9": "an absent header read as 'XXXX': no bearer scheme either way, the same "
    "refusal",
    "guidance_rules.service.auth.xǁVerifierǁverify__mutmut_63": "PyJWT not checking iss: the key was chosen by this very iss, so the "
    "check cannot fail",
    "guidance_rules.service.auth.xǁVerifierǁverify__mutmut_70": "the same (issuer= left out)",
    "guidance_rules.service.auth.xǁVerifierǁverify__mutmut_99": ">= for >: a lifetime of exactly 3600.0 s (a float from time.time()) "
    "cannot be arranged",
    "guidance_rules.service.auth.xǁVerifierǁ__init____mutmut_9": "lifespan=300 left out: 300 is PyJWKClient's default",
    "guidance_rules.service.auth.xǁVerifierǁ__init____mutmut_11": "a key set cached 301 s, not 300: with cache_keys a kid once used is "
    "served from the per-key cache, and an unknown kid fetches the set anew after the cooldown either way",
}


# Mutants no in-process run can reach, by name prefix, with the reason: the function runs only while
# the module is imported, before mutmut switches a mutant on. Left out of the rate and counted apart
# ("import-time"); tests that build the schema still guard it in the ordinary suite.
IMPORT_TIME: dict[str, str] = {
    "guidance_rules.model.answer.xǁFrozenMapǁ__get_pydantic_core_schema__": "pydantic builds the schema once, when the "
    "models that use FrozenMap are defined at import",
    "guidance_rules.rulebase.conditions.x__enum": "builds CASE_FIELDS once, when conditions.py is imported",
    "guidance_rules.rulebase.space.x__subsets": "builds VARIANCE_SETS and EQUIPMENT_SETS once, when space.py is imported",
}


def kind(mutant: str, state: str) -> str:
    if mutant in EQUIVALENT and state not in CAUGHT:  # one a test caught is no equivalent (see `stale`)
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


# Statuses that mean the tests caught the mutant: a test failed, the run hung past its timeout, or the
# test process crashed (a mutated payload that makes the C engine segfault fails the run as surely).
CAUGHT = ("killed", "timeout", "segfault")


def report(name: str, status: dict[str, str]) -> None:
    """Kill rate per module: killed (and timeouts and crashes) over all mutants, equivalent ones left out."""
    per: dict[str, Counter[str]] = {}
    for mutant, state in status.items():
        match = re.match(r"(.+?)\.x[_ǁ]", mutant)  # module.x_function__mutmut_N or module.xǁClassǁmethod__mutmut_N
        module = match.group(1) if match else mutant
        per.setdefault(module, Counter())[kind(mutant, state)] += 1
    print(f"\n== {name}: kill rate per module (killed + timeout + segfault) / (all - equivalent - import-time)")
    for module, counts in sorted(per.items()):
        total = sum(counts.values()) - counts["equivalent"] - counts["import-time"]
        killed = sum(counts[state] for state in CAUGHT)
        rate = f"{100 * killed / total:5.1f} %" if total else "  n/a"
        print(f"  {module:45} {rate}  {killed}/{total}  ({', '.join(f'{k} {v}' for k, v in sorted(counts.items()))})")
    stale = sorted(m for m, s in status.items() if m in EQUIVALENT and s in CAUGHT)
    if stale:  # an equivalent mutant cannot be caught: the entry now names another mutant (renumbered)
        print(f"  listed as equivalent but caught ({len(stale)}): renumbered? see scripts/mutants_moved.py and mutmut show")
        for mutant in stale:
            print(f"    {mutant}")
    survivors = sorted(m for m, s in status.items() if kind(m, s) not in (*CAUGHT, "equivalent", "import-time"))
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
