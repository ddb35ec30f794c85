"""The command line, driven as a subprocess: each command, the JSON contract, every bad-input class."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.conftest import ROOT
from tests.model.test_case import CONTRACT_KEYS


def run(*args: str, stdin: str | None = None, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "guidance_rules", *args], input=stdin, capture_output=True, text=True, cwd=cwd, timeout=120
    )


def assert_invalid(result: subprocess.CompletedProcess[str], field: str) -> None:
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr + result.stdout
    assert field in result.stderr, result.stderr
    assert result.stdout == ""


def test_recommend_json_from_options_is_the_contract() -> None:
    result = run("recommend", "--site", "hip", "--injectate", "cell_based", "--variance", "obesity", "--json")
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["modality"] == "ultrasound"
    assert set(data) == CONTRACT_KEYS
    assert all(step["sources"] for step in data["reasoning"])


def test_recommend_from_file_and_stdin_agree(tmp_path: Path) -> None:
    case = {"site": "lumbar_facet", "injectate": "corticosteroid"}
    path = tmp_path / "case.json"
    path.write_text(json.dumps(case))
    from_file = run("recommend", str(path), "--json")
    from_stdin = run("recommend", "-", "--json", stdin=json.dumps(case))
    assert from_file.returncode == from_stdin.returncode == 0
    assert json.loads(from_file.stdout) == json.loads(from_stdin.stdout)
    assert json.loads(from_file.stdout)["modality"] == "fluoroscopy"


def test_recommend_text_shows_the_chain() -> None:
    result = run("recommend", "--site", "knee", "--injectate", "corticosteroid")
    assert result.returncode == 0
    out = result.stdout
    assert out.startswith("Recommended guidance: LANDMARK")
    for heading in (
        "Ratings",
        "Reasoning",
        "Assumptions",
        "Documentation",
        "Questions the patient or a reviewer may ask",
        "Evidence for this site",
    ):
        assert heading in out
    assert "[LM-SUITABLE]" in out and "sources:" in out


@pytest.mark.parametrize(
    ("stdin", "field"),
    [
        ('{"site": "knee", "injectate": "prp", "colour": "red"}', "colour"),
        ('{"site": "knee", "injectate": "steroid"}', "injectate"),
        ('{"site": "knee", "injectate": "prp", "palpable": "yes"}', "palpable"),
        ('{"site": "knee", "injectate": 3}', "injectate"),
        ('{"site": "knee"}', "injectate"),
        ('{"region": "spinal", "depth": "deep", "tissue": "tendon_sheath", "injectate": "prp"}', "region"),
        ("this is not json", "not valid JSON"),
        ("", "empty input"),
        ("[1, 2]", "expected a JSON object"),
        ('{"site": "hipp", "injectate": "prp"}', "did you mean 'hip'"),
    ],
)
def test_bad_input_exits_2_naming_the_field(stdin: str, field: str) -> None:
    assert_invalid(run("recommend", "-", "--json", stdin=stdin), field)


def test_bad_option_value_suggests_the_closest() -> None:
    result = run("recommend", "--site", "knee", "--injectate", "corticosteriod")
    assert_invalid(result, "injectate")
    assert "did you mean 'corticosteroid'" in result.stderr
    assert "corticosteroid, local_anesthetic" in result.stderr


def test_unknown_command_and_missing_file_exit_2() -> None:
    assert run("frobnicate").returncode == 2
    assert_invalid(run("recommend", "/no/such/file.json"), "not found")


def test_examples_table_and_exit_code() -> None:
    result = run("examples")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "examples agree with their expected modality" in result.stdout


def test_examples_exit_1_when_one_disagrees(tmp_path: Path) -> None:
    (tmp_path / "wrong.json").write_text(
        json.dumps({"case": {"site": "knee", "injectate": "corticosteroid"}, "expected": "both", "why": "x"})
    )
    result = run("examples", "--dir", str(tmp_path))
    assert result.returncode == 1 and "DIFFERS" in result.stdout


def test_an_invalid_example_is_named_and_the_others_still_run(tmp_path: Path) -> None:
    """It said only 'injectate: required', named no file and printed no other example (review finding)."""
    (tmp_path / "a-good.json").write_text(json.dumps({"case": {"site": "hip", "injectate": "prp"}, "expected": "ultrasound", "why": "x"}))
    (tmp_path / "b-broken.json").write_text(json.dumps({"case": {"site": "knee"}, "expected": "landmark", "why": "x"}))
    result = run("examples", "--dir", str(tmp_path))
    assert result.returncode == 2 and "a-good" in result.stdout and "INVALID" in result.stdout
    assert "invalid input: b-broken: injectate: required" in result.stderr and "Traceback" not in result.stderr
    lines = [json.loads(line) for line in run("examples", "--dir", str(tmp_path), "--json").stdout.splitlines()]
    assert [("recommendation" in line, "problems" in line) for line in lines] == [(True, False), (False, True)]


def test_rules_lists_and_shows() -> None:
    listing = run("rules")
    assert listing.returncode == 0 and "LU-DEPTH" in listing.stdout and "sources:" in listing.stdout
    one = run("rules", "LU-DEPTH")
    assert one.returncode == 0 and "rationale:" in one.stdout and "depth is deep, intermediate" in one.stdout
    assert_invalid(run("rules", "LU-DEPHT"), "did you mean 'LU-DEPTH'")


def test_schema_is_json_schema_with_sites() -> None:
    result = run("schema")
    schema = json.loads(result.stdout)
    assert schema["additionalProperties"] is False
    assert "hip" in schema["properties"]["site"]["anyOf"][0]["enum"]
    assert schema["required"] == ["injectate"]


def test_version() -> None:
    result = run("--version")
    version = yaml.safe_load((ROOT / "rules" / "ruleset.yaml").read_text())["version"]
    assert result.returncode == 0 and f"rule base {version}" in result.stdout and "sha256:" in result.stdout


def test_a_broken_rule_base_given_with_rules_is_bad_input_naming_the_file(tmp_path: Path) -> None:
    result = run("--rules", str(tmp_path), "rules")
    assert result.returncode == 2 and "Traceback" not in result.stderr and "ruleset.yaml" in result.stderr


def _lines(text: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in text.splitlines()]


def test_batch_jsonl_loses_no_line(tmp_path: Path) -> None:
    lines = [
        '{"site": "knee", "injectate": "corticosteroid"}',
        "not json",
        '{"site": "knee", "injectate": "steroid"}',
        "",
        '{"site": "sacroiliac", "injectate": "corticosteroid"}',
    ]
    source = tmp_path / "in.jsonl"
    source.write_text("\n".join(lines) + "\n")
    out = tmp_path / "out.jsonl"
    result = run("batch", str(source), "--out", str(out))
    assert result.returncode == 2
    assert "5 input lines, 4 output records (the difference: 1 blank line): 2 recommended, 2 invalid" in result.stderr
    records = _lines(out.read_text())
    assert [r["line"] for r in records] == [1, 2, 3, 5]  # a blank line is not a record
    assert records[0]["recommendation"]["modality"] == "landmark"
    assert records[3]["recommendation"]["modality"] == "fluoroscopy"
    assert records[2]["errors"][0]["field"] == "injectate"
    assert "Traceback" not in result.stderr


def test_batch_csv(tmp_path: Path) -> None:
    source = tmp_path / "in.csv"
    source.write_text(
        "site,injectate,anatomy_variance,palpable\nknee,corticosteroid,,\nknee,corticosteroid,obesity;effusion,\nknee,prp,,perhaps\n"
    )
    result = run("batch", str(source))
    records = _lines(result.stdout)
    assert [r["line"] for r in records] == [2, 3, 4]
    assert records[0]["recommendation"]["modality"] == "landmark"
    assert records[1]["recommendation"]["modality"] == "ultrasound"
    assert records[2]["errors"][0]["field"] == "palpable"
    assert result.returncode == 2


def test_batch_all_good_exits_0(tmp_path: Path) -> None:
    source = tmp_path / "in.jsonl"
    source.write_text('{"site": "hip", "injectate": "prp"}\n' * 3)
    result = run("batch", str(source))
    assert result.returncode == 0 and len(_lines(result.stdout)) == 3


def test_bad_input_of_every_kind_exits_2_not_1(tmp_path: Path) -> None:
    """Before: a 5,000-digit integer, bad files under `examples --dir` and a missing `--rules`
    directory were reported as internal errors (exit 1)."""
    long_number = '{"site": "knee", "injectate": "prp", "palpable": ' + "9" * 5_000 + "}"
    assert_invalid(run("recommend", "-", stdin=long_number), "palpable: a number")
    bad = tmp_path / "examples"
    bad.mkdir()
    (bad / "a.json").write_text('{"case": {"site": "knee", "injectate": "prp"}, "case": {}}')
    assert_invalid(run("examples", "--dir", str(bad)), "a.json")
    (bad / "a.json").write_bytes(b'{"case": "\xff"}')
    assert_invalid(run("examples", "--dir", str(bad)), "a.json")
    assert_invalid(run("--rules", str(tmp_path / "nonexistent"), "rules"), "rule directory not found")


# -- native to Python users (issue 11) -----------------------------------------------------------


def test_recommend_help_lists_the_allowed_values_of_each_option() -> None:
    text = run("recommend", "--help").stdout
    for expected in ("superficial, intermediate, deep", "corticosteroid, local_anesthetic", "knee, hip", "--no-palpable", "--brief"):
        assert expected in " ".join(text.split()), expected


def test_option_values_are_case_insensitive_and_flags_have_a_negative_form() -> None:
    upper = run("recommend", "--site", "Knee", "--injectate", "PRP", "--variance", "Obesity", "--no-palpable", "--json")
    lower = run("recommend", "--site", "knee", "--injectate", "prp", "--variance", "obesity", "--palpable", "false", "--json")
    assert upper.returncode == 0 and upper.stdout == lower.stdout
    bare = json.loads(run("recommend", "--site", "hip", "--injectate", "prp", "--near-neurovascular", "--json").stdout)
    assert "near_neurovascular" not in {a["field"] for a in bare["assumptions"]}
    assert_invalid(run("recommend", "--site", "knee", "--injectate", "prp", "--palpable", "maybe"), "--palpable")


def test_brief_names_every_rule_that_decided_the_answer() -> None:
    full = json.loads(run("recommend", "--site", "hip", "--injectate", "cell_based", "--json").stdout)
    brief = run("recommend", "--site", "hip", "--injectate", "cell_based", "--brief").stdout
    assert len(brief.splitlines()) < 21  # the bottom line, ratings, chain, assumptions and the cautions named: a few lines
    deciding = {r["rule"] for step in full["reasoning"] for r in step["reasons"] or [step]} | {
        r for rating in full["ratings"].values() for r in rating["rules"]
    }
    assert all(rule in brief for rule in deciding), deciding
    assert full["modality"].upper() in brief


def test_brief_opens_with_the_whole_bottom_line() -> None:
    """The bottom line (issue 19) is the modality, the decisive reason, the key figure and any refer
    caution, in --brief too: the brief answer named the deciding rules but not the reason."""
    case = ("recommend", "--site", "sacroiliac", "--injectate", "corticosteroid", "--available", "ultrasound")
    summary = json.loads(run(*case, "--json").stdout)["summary"]
    head = " ".join(" ".join(run(*case, "--brief").stdout.split("\n  ultrasound ")[0].split()).split())
    assert f"Why: {summary['reason']}" in head
    assert summary["figure"]["text"] in head and "REFER:" in head


def test_rules_json_policy_and_case_insensitive_ids() -> None:
    listed = json.loads(run("rules", "--json").stdout)
    assert {"rules", "policy"} <= set(listed) and all({"id", "when", "sources", "examples"} <= set(r) for r in listed["rules"])
    policy = run("rules", "policy-select")
    assert policy.returncode == 0 and "POLICY-SELECT" in policy.stdout and "preference" not in policy.stdout
    one = json.loads(run("rules", "lu-small", "--json").stdout)
    assert one["id"] == "LU-SMALL"
    assert_invalid(run("rules", "lu-smal"), "did you mean 'LU-SMALL'")


def test_messages_say_what_was_given_and_what_is_expected() -> None:
    quoted = run("recommend", "-", stdin='{"site": "knee", "injectate": "prp", "palpable": "true"}')
    assert_invalid(quoted, "palpable")
    assert "boolean is expected: true without quotes" in quoted.stderr and "did you mean" not in quoted.stderr
    unknown = run("recommend", "-", stdin='{"site": "knee", "injectate": "prp", "palpabel": true}')
    assert_invalid(unknown, "'palpabel' is not a case field; did you mean 'palpable'? Valid fields: site, region")


def test_shell_completion_offers_the_allowed_values(tmp_path: Path) -> None:
    out = tmp_path / "completions"
    line = "guidance-rules recommend --depth "
    env = {
        **__import__("os").environ,
        "_ARGCOMPLETE": "1",
        "COMP_LINE": line,
        "COMP_POINT": str(len(line)),
        "_ARGCOMPLETE_STDOUT_FILENAME": str(out),
        "_ARGCOMPLETE_IFS": "\n",
    }
    subprocess.run([sys.executable, "-m", "guidance_rules"], env=env, capture_output=True, timeout=60, cwd=ROOT)
    assert set(out.read_text().split()) == {"superficial", "intermediate", "deep"}


def test_colour_only_on_a_terminal_without_no_color(monkeypatch: pytest.MonkeyPatch) -> None:
    import io
    import shutil

    from guidance_rules.cli.render import WIDTH, Style

    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    monkeypatch.delenv("NO_COLOR", raising=False)
    monkeypatch.setenv("TERM", "xterm")
    monkeypatch.setattr(shutil, "get_terminal_size", lambda fallback=(0, 0): __import__("os").terminal_size((120, 40)))
    assert Style.detect(Terminal()) == Style(119, True)
    assert Style.detect(io.StringIO()) == Style(WIDTH, False)
    monkeypatch.setenv("NO_COLOR", "1")
    assert Style.detect(Terminal()).color is False
    assert "\x1b[" not in run("recommend", "--site", "knee", "--injectate", "prp").stdout


def test_a_contradiction_with_the_site_names_both_fields_without_listing_every_value() -> None:
    result = run("recommend", "--site", "knee", "--injectate", "prp", "--tissue", "bursa")
    assert_invalid(result, "tissue, site")
    assert "contradicts site 'knee'" in result.stderr and "glenohumeral" not in result.stderr


def test_questions_say_who_asks_them_and_speak_of_the_patient() -> None:
    text = run("recommend", "--site", "knee", "--injectate", "corticosteroid").stdout
    assert "Questions the patient or a reviewer may ask" in text
    every = json.loads(run("rules", "--json").stdout)["rules"]
    questions = [r["then"] for r in every if r["then"].startswith("question:")]
    assert questions and not any(word in q.split() for q in questions for word in ("I", "my", "me"))


@pytest.mark.parametrize("command", [("audit", "--quick"), ("diff", "rules", "rules"), ("batch", "-"), ("serve",)])
@pytest.mark.parametrize("value", ["0", "-1", "two"])
def test_workers_must_be_one_or_more_for_every_command(command: tuple[str, ...], value: str) -> None:
    """Before: audit -1 was an internal ValueError (exit 1), diff -1 a ZeroDivisionError, batch took 0 and -1."""
    result = run(*command, "--workers", value, stdin="")
    assert_invalid(result, "--workers: ")
    assert "1 or more" in result.stderr and value in result.stderr


@pytest.mark.parametrize("command", [("audit", "--quick"), ("diff", "rules", "rules", "--site", "knee")])
def test_an_html_report_in_a_missing_folder_is_refused_before_the_work(tmp_path: Path, command: tuple[str, ...]) -> None:
    """Before: the whole audit ran, then failed with errno 2 (exit 1)."""
    result = run(*command, "--html", str(tmp_path / "nodir" / "a.html"))
    assert_invalid(result, "--html")
    assert "does not exist" in result.stderr and "nodir" in result.stderr


def test_counts_agree_with_their_nouns_and_messages_end_their_sentences() -> None:
    """Before: '1 records', '1 documentation items', "no rule 'NOPE-X' Run ..." and "did you mean 'injectate'?; to carry"."""
    from guidance_rules.cli.render import brief
    from guidance_rules.recommendation.recommender import Recommender

    rec = Recommender().recommend({"site": "knee", "injectate": "corticosteroid"})
    one_each = rec.model_copy(update={"documentation": rec.documentation[:1], "questions": rec.questions[:1], "cautions": []})
    assert "  1 documentation item, 1 question and the sources (run" in brief(one_each)
    batch = run("batch", "-", "--format", "csv", stdin="site,injectate\nknee,prp\n")
    assert "batch: 2 input lines, 1 output record (the difference: 1 header line): 1 recommended" in batch.stderr
    jsonl = run("batch", "-", stdin='{"site": "knee", "injectat": "prp"}\n')
    assert "batch: 1 input line, 1 output record: 0 recommended" in jsonl.stderr
    assert "'injectat' is not a case field; did you mean 'injectate'? To carry it" in jsonl.stdout
    assert_invalid(run("rules", "NOPE-X"), "no rule 'NOPE-X'. Run 'guidance-rules rules' for the list.")


def test_a_case_file_takes_word_values_in_any_case_as_the_options_do() -> None:
    by_file = run("recommend", "-", "--json", stdin='{"site": "Hip", "injectate": "Cell_Based", "available_modalities": ["Ultrasound"]}')
    by_options = run("recommend", "--site", "HIP", "--injectate", "cell_based", "--available", "ULTRASOUND", "--json")
    assert by_file.returncode == by_options.returncode == 0, by_file.stderr
    assert json.loads(by_file.stdout) == json.loads(by_options.stdout)
    boolean = run("recommend", "-", stdin='{"site": "hip", "injectate": "prp", "palpable": "TRUE"}')
    assert boolean.returncode == 2 and "palpable" in boolean.stderr  # a JSON boolean stays a boolean, not text


def test_help_shows_the_negated_flag_without_a_value() -> None:
    """Help said '--no-palpable [true|false]' but '--no-palpable false' is refused (it takes no value)."""
    text = run("recommend", "--help").stdout
    assert "--palpable [true|false], --no-palpable\n" in text and "--no-palpable [" not in text


def test_brief_keeps_the_cautions_a_refer_caution_above_all() -> None:
    """--brief showed '2 cautions' and hid 'this clinic has no fluoroscopy: refer' (review finding)."""
    result = run("recommend", "--site", "lumbar_facet", "--injectate", "corticosteroid", "--available", "ultrasound", "--brief")
    assert result.returncode == 0
    assert "  cautions: CAUTION-REFER-FLUOROSCOPY, CAUTION-RADIATION\n" in result.stdout


@pytest.mark.parametrize("command", [("rules",), ("rules", "POLICY-SELECT"), ("rules", "LU-DEPTH"), ("examples",)])
def test_text_wraps_at_96_columns_when_not_a_terminal(command: tuple[str, ...]) -> None:
    """The README's promise; rules' source lines ran to 438 columns and examples' reasons to 319."""
    result = run(*command, cwd=ROOT)
    assert result.returncode == 0 and max(len(line) for line in result.stdout.splitlines()) <= 96
