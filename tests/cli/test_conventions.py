"""Command-line conventions (issue 21, points 4-6 and 12): a case file with a BOM, progress and
Ctrl-C, two-line usage errors with suggestions, descriptions, colour variables, -q/-v, and the
CLI's structure (exit statuses in one place, its errors in the one hierarchy)."""

from __future__ import annotations

import ast
import fcntl
import io
import json
import os
import pty
import re
import signal
import struct
import subprocess
import sys
import termios
from pathlib import Path

import pytest

from tests.conftest import ROOT

CLI = ROOT / "guidance_rules" / "cli"


def run(*args: str, stdin: str | None = None, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "guidance_rules", *args], input=stdin, capture_output=True, text=True, cwd=ROOT, timeout=300, env=env
    )


def test_recommend_reads_a_case_file_saved_with_a_bom(tmp_path: Path) -> None:
    """Issue 21 point 4. Before: exit 2, 'not valid JSON: Unexpected UTF-8 BOM', while batch accepted the same file."""
    case = tmp_path / "case.json"
    case.write_bytes(b'\xef\xbb\xbf{"site": "knee", "injectate": "prp"}\n')
    from_file = run("recommend", str(case), "--json")
    assert from_file.returncode == 0, from_file.stderr
    from_stdin = run("recommend", "-", "--json", stdin='\ufeff{"site": "knee", "injectate": "prp"}')
    assert from_stdin.returncode == 0 and json.loads(from_stdin.stdout) == json.loads(from_file.stdout)


def _batch_on_a_terminal(args: list[str], stop_on: str | None = None) -> tuple[int, str]:
    """Run batch with standard error on a pseudo-terminal (so it draws progress); its exit status and
    what it said. With `stop_on`, Ctrl-C (SIGINT) is sent once the terminal shows that pattern: when
    batch is known to be under way, however fast or loaded the machine (a fixed delay was not)."""
    leader, follower = pty.openpty()
    fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 100, 0, 0))  # a new pseudo-terminal is 0 columns wide
    proc = subprocess.Popen([sys.executable, "-m", "guidance_rules", "batch", *args], cwd=ROOT, stdout=subprocess.DEVNULL, stderr=follower)
    os.close(follower)
    said = b""
    while True:
        try:
            chunk = os.read(leader, 65536)
        except OSError:  # the terminal closed: the process ended
            break
        if not chunk:
            break
        said += chunk
        if stop_on is not None and re.search(stop_on, said.decode(errors="replace")):
            proc.send_signal(signal.SIGINT)
            stop_on = None
    os.close(leader)
    return proc.wait(timeout=300), said.decode(errors="replace")


def test_progress_shows_the_total_a_percentage_and_the_time_left(tmp_path: Path) -> None:
    """Issue 21 point 5. Before: '5000 cases [00:01, 4211.53 cases/s]': no total, no percentage, no ETA."""
    source = tmp_path / "in.csv"
    source.write_bytes(b"site,injectate\n" + b"knee,prp\nhip,prp\n" * 2_500)
    status, said = _batch_on_a_terminal([str(source), "--out", str(tmp_path / "out.jsonl")])
    assert status == 0, said
    assert re.search(r"100%.*41\.5k/41\.5k \[[0-9:]+<[0-9:]+", said), said  # done/total [elapsed<left] of 42,515 bytes
    assert "5,000 records" in said


@pytest.mark.parametrize("to_file", [True, False])
def test_ctrl_c_says_what_was_kept(tmp_path: Path, to_file: bool) -> None:
    """Issue 21 point 5. Before: Ctrl-C ended batch with exit 130 and not a word."""
    from tests.cli.test_batch import distinct_cases

    source = tmp_path / "in.jsonl"
    source.write_bytes(b"".join(json.dumps(c).encode() + b"\n" for c in distinct_cases(30_000)))
    target = tmp_path / "out.jsonl"
    args = [str(source), *(["--out", str(target)] if to_file else []), "--workers", "1"]
    status, said = _batch_on_a_terminal(args, stop_on=r"[1-9][0-9,]* records")
    assert status == 130, said
    if to_file:
        assert f"batch: interrupted; nothing was kept: {target} was left as it was" in said and not target.exists()
    else:
        assert re.search(
            r"batch: interrupted; the [0-9,]+ records written to standard output are complete, up to input line [0-9,]+", said
        ), said


@pytest.mark.parametrize(
    ("args", "said"),
    [
        (("recommend", "--sitee", "knee"), "guidance-rules recommend: error: unknown option '--sitee'; did you mean '--site'?"),
        (("bogus",), "guidance-rules: error: 'bogus' is not a command; the commands: recommend, what-if"),
        (("recomend", "--site", "knee"), "'recomend' is not a command; did you mean 'recommend'?"),
        (("batch", "x.csv", "--format", "cvs"), "argument --format: 'cvs' is not one of jsonl, csv; did you mean 'csv'?"),
        (("batch", "x.csv", "--extra-colums", "ignore"), "unknown option '--extra-colums'; did you mean '--extra-columns'?"),
    ],
)
def test_a_usage_error_is_two_lines_with_the_closest_option_or_command(args: tuple[str, ...], said: str) -> None:
    """Issue 21 point 6. Before: 14 lines of usage and no suggestion for --sitee or bogus."""
    result = run(*args)
    assert result.returncode == 2 and result.stdout == ""
    first, second = result.stderr.splitlines()
    assert said in first, result.stderr
    assert re.fullmatch(r"Run 'guidance-rules( [a-z-]+)? --help' for the usage\.", second)


def test_every_command_has_a_description(capsys: pytest.CaptureFixture[str]) -> None:
    """Issue 21 point 6. Before: only recommend had one; the others' help went from usage straight to the options."""
    from guidance_rules.cli import main

    with pytest.raises(SystemExit):
        main(["--help"])
    listing = capsys.readouterr().out
    names = re.findall(r"^    ([a-z][a-z-]+)\s", listing, re.MULTILINE)
    assert {"recommend", "batch", "serve", "consultations", "table"} <= set(names)
    for name in names:
        with pytest.raises(SystemExit):
            main([name, "--help"])
        text = capsys.readouterr().out
        after_usage = text.split("\n\n")[1]
        assert not after_usage.startswith(("options:", "positional arguments:")), (name, text)


def test_empty_no_color_is_ignored_and_force_color_is_honoured(monkeypatch: pytest.MonkeyPatch) -> None:
    """Issue 21 point 6 (no-color.org, force-color.org). Before: an empty NO_COLOR turned colour off, FORCE_COLOR did nothing."""
    from guidance_rules.cli.render import Style

    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    monkeypatch.setenv("TERM", "xterm")
    monkeypatch.setenv("NO_COLOR", "")
    monkeypatch.delenv("FORCE_COLOR", raising=False)
    assert Style.detect(Terminal()).color is True
    monkeypatch.setenv("FORCE_COLOR", "1")
    assert Style.detect(io.StringIO()).color is True
    monkeypatch.setenv("NO_COLOR", "1")
    assert Style.detect(Terminal()).color is False
    env = {k: v for k, v in os.environ.items() if k != "NO_COLOR"} | {"FORCE_COLOR": "1"}
    assert "\x1b[" in run("examples", env=env).stdout


def test_quiet_and_verbose() -> None:
    """Issue 21 point 6. Before: -q and -v were unknown options (exit 2)."""
    data = "site,injectate\nknee,prp\n"
    normal = run("batch", "-", stdin=data)
    assert "batch: reading standard input as CSV" in normal.stderr and "output record" in normal.stderr
    for quiet in (("-q", "batch", "-"), ("batch", "-", "--quiet")):
        result = run(*quiet, stdin=data)
        assert result.returncode == 0 and result.stderr == "" and result.stdout == normal.stdout, result.stderr
    verbose = run("batch", "-", "-v", stdin=data)
    assert "rule base: " in verbose.stderr and "rule base: " not in normal.stderr
    assert run("batch", "-", "-q", stdin="site,injectate\nknee,nope\n").returncode == 2  # quiet changes what is said, not the status


def test_exit_statuses_are_named_in_one_place() -> None:
    """Issue 21 point 12. Before: 0, 1, 2, 130 and 143 were written as numbers in five modules of the CLI."""
    literal = []
    for path in CLI.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Return) and isinstance(node.value, ast.Constant) and type(node.value.value) is int:
                literal.append(f"{path.name}:{node.lineno}")
    assert literal == []


def test_the_cli_raises_only_errors_of_the_one_hierarchy() -> None:
    """Issue 21 point 12. Before: Invalid, InputError, BatchInputError and Terminated were the CLI's own classes."""
    from guidance_rules.errors import GuidanceRulesError, InputError

    own = [
        f"{path.name}: {node.name}"
        for path in CLI.glob("*.py")
        for node in ast.walk(ast.parse(path.read_text()))
        if isinstance(node, ast.ClassDef) and any(isinstance(b, ast.Name) and b.id.endswith(("Error", "Exception")) for b in node.bases)
    ]
    assert own == []
    assert issubclass(InputError, GuidanceRulesError)


def test_one_module_per_command() -> None:
    """Issue 21 point 12. Before: nine commands' bodies in one 523-line commands.py."""
    from guidance_rules.cli.commands import COMMANDS

    for name in ("recommend", "what-if", "examples", "diff", "rules", "schema", "audit", "table", "batch"):
        module = CLI / f"{name.replace('-', '')}.py"
        assert "def run(" in module.read_text(), name
        assert name in COMMANDS
    assert "def cmd_" not in (CLI / "commands.py").read_text()
