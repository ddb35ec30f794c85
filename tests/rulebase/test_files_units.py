"""Reading rule files at their own layer: where the parsed-data cache lives and how it is turned off,
each refusal of an unsafe or oversized file (and the race between checking a file and reading it),
the digest, which cache entries are trusted, what is never cached, and the YAML loader's rules."""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any

import pytest

from guidance_rules._version import __version__
from guidance_rules.errors import RuleFileError
from guidance_rules.rulebase import files
from guidance_rules.rulebase.files import RuleFiles, cache_dir

CACHE_VARIABLES = ("GUIDANCE_RULES_CACHE", "GUIDANCE_RULES_CACHE_DIR", "XDG_CACHE_HOME")


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> pytest.MonkeyPatch:
    for name in CACHE_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    return monkeypatch


# -- where the cache is ------------------------------------------------------------------------------


@pytest.mark.parametrize("value", ["0", "off", "no", "false", "OFF", "False"])
def test_the_cache_is_turned_off_by_any_false_word(clean_env: pytest.MonkeyPatch, value: str) -> None:
    clean_env.setenv("GUIDANCE_RULES_CACHE", value)
    clean_env.setenv("GUIDANCE_RULES_CACHE_DIR", "/somewhere")
    assert cache_dir() is None


@pytest.mark.parametrize("value", ["", "1", "on", "yes"])
def test_other_values_keep_the_cache(clean_env: pytest.MonkeyPatch, value: str) -> None:
    clean_env.setenv("GUIDANCE_RULES_CACHE", value)
    clean_env.setenv("GUIDANCE_RULES_CACHE_DIR", "/somewhere")
    assert cache_dir() == Path("/somewhere")


def test_the_cache_folder_defaults_to_the_users_cache(clean_env: pytest.MonkeyPatch, tmp_path: Path) -> None:
    assert cache_dir() == tmp_path / "home" / ".cache" / "guidance-rules"
    clean_env.setenv("XDG_CACHE_HOME", "/xdg")
    assert cache_dir() == Path("/xdg/guidance-rules")
    clean_env.setenv("GUIDANCE_RULES_CACHE_DIR", "")  # empty: not set
    assert cache_dir() == Path("/xdg/guidance-rules")
    clean_env.setenv("GUIDANCE_RULES_CACHE_DIR", "/chosen")
    assert cache_dir() == Path("/chosen")


def test_the_cache_key_covers_this_modules_code_and_the_version(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    assert files._code_fingerprint() == Path(files.__file__).read_bytes() + __version__.encode()
    monkeypatch.setattr(files, "__file__", str(tmp_path / "gone.py"))
    assert files._code_fingerprint() == b"unknown:" + __version__.encode()


# -- reading a file ------------------------------------------------------------------------------


def folder_with(tmp_path: Path, **contents: bytes) -> Path:
    folder = tmp_path / "rules"
    folder.mkdir(parents=True, exist_ok=True)
    for name, data in contents.items():
        (folder / f"{name}.yaml").write_bytes(data)
    return folder


def refusal(folder: Path, name: str) -> str:
    with pytest.raises(RuleFileError) as caught:
        RuleFiles(folder, cache=False).raw(name)
    assert caught.value.file == name
    return str(caught.value)


@pytest.mark.parametrize("name", ["../a.yaml", "a.yml", ".hidden.yaml", "sub/a.yaml", "a.yaml.bak", "-a.yaml"])
def test_only_plain_yaml_names_are_read(tmp_path: Path, name: str) -> None:
    assert refusal(folder_with(tmp_path), name) == (
        f"{name}: a rule file must be a plain file name ending in .yaml, inside the rule directory"
    )


def test_a_missing_file_and_a_directory_are_named(tmp_path: Path) -> None:
    folder = folder_with(tmp_path)
    assert refusal(folder, "absent.yaml") == "absent.yaml: file is missing from the rule base"
    (folder / "dir.yaml").mkdir()
    assert (
        refusal(folder, "dir.yaml")
        == "dir.yaml: not a regular file (a directory, FIFO, socket or device); a rule file must be a plain file"
    )


def test_an_unreadable_file_says_why(tmp_path: Path) -> None:
    folder = folder_with(tmp_path)
    (folder / "loop.yaml").symlink_to(folder / "loop.yaml")
    assert refusal(folder, "loop.yaml") == "loop.yaml: cannot be read: Too many levels of symbolic links"


def test_a_file_of_the_largest_size_is_read_whole_and_a_byte_more_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(files, "MAX_RULE_FILE", 10)
    folder = folder_with(tmp_path, fits=b"a: 1234567", over=b"a: 12345678")
    assert RuleFiles(folder).raw("fits.yaml") == b"a: 1234567"
    assert refusal(folder, "over.yaml") == "over.yaml: file is 11 bytes; at most 10 are read"


class _Shrunk:
    """Path.stat's answer for a file that changes after it was checked: `size` bytes, a regular file."""

    def __init__(self, real: os.stat_result, size: int) -> None:
        self.st_mode, self.st_size = real.st_mode, size


def test_a_file_that_grows_after_its_check_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(files, "MAX_RULE_FILE", 10)
    folder = folder_with(tmp_path, grown=b"a: 12345678", fits=b"a: 1234567")
    real_stat = Path.stat
    monkeypatch.setattr(Path, "stat", lambda self, **kw: _Shrunk(real_stat(self, **kw), 5))
    assert refusal(folder, "grown.yaml") == "grown.yaml: file is larger than 10 bytes"
    assert RuleFiles(folder).raw("fits.yaml") == b"a: 1234567"


def test_a_file_swapped_for_a_fifo_after_its_check_is_refused_not_waited_on(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    folder = folder_with(tmp_path, plain=b"a: 1")
    os.mkfifo(folder / "swapped.yaml")
    plain = (folder / "plain.yaml").stat()
    real_stat = Path.stat
    monkeypatch.setattr(Path, "stat", lambda self, **kw: plain if self.name == "swapped.yaml" else real_stat(self, **kw))
    assert refusal(folder, "swapped.yaml") == "swapped.yaml: not a regular file; a rule file must be a plain file"


def test_a_file_is_read_once(tmp_path: Path) -> None:
    folder = folder_with(tmp_path, a=b"x: 1")
    rule_files = RuleFiles(folder)
    first = rule_files.raw("a.yaml")
    (folder / "a.yaml").write_bytes(b"x: 2")
    assert rule_files.raw("a.yaml") is first
    assert rule_files.data("a.yaml") == {"x": 1}


# -- the digest ----------------------------------------------------------------------------------


def test_the_digest_hashes_every_name_and_its_bytes_in_name_order(tmp_path: Path) -> None:
    folder = folder_with(tmp_path, b=b"two", a=b"one")
    forward, backward = RuleFiles(folder), RuleFiles(folder)
    forward.read_all()
    backward.raw("b.yaml")
    backward.raw("a.yaml")
    expected = "sha256:" + hashlib.sha256(b"a.yaml\0one\0b.yaml\0two\0").hexdigest()
    assert forward.digest() == backward.digest() == expected
    moved = folder_with(tmp_path / "moved", a=b"one\0b.yaml", b=b"two")  # no boundary can be moved unseen
    both = RuleFiles(moved)
    both.read_all()
    assert both.digest() != expected


# -- the parsed-data cache -------------------------------------------------------------------------


@pytest.fixture
def cache(clean_env: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    folder = tmp_path / "xdg" / "cache"  # its parent missing too: made as needed
    clean_env.setenv("GUIDANCE_RULES_CACHE_DIR", str(folder))
    return folder


def parsed_once(folder: Path) -> RuleFiles:
    rule_files = RuleFiles(folder)
    rule_files.read_all()
    for name in sorted(rule_files.read):
        rule_files.data(name)
    rule_files.save_parsed()
    return rule_files


def entry(cache: Path) -> Path:
    (found,) = cache.glob("rules-*.json")
    return found


def test_a_cache_entry_holds_the_parsed_files_under_their_key(cache: Path, tmp_path: Path) -> None:
    folder = folder_with(tmp_path, a=b"x: [1, 2]", b=b"name: caf\xc3\xa9")
    rule_files = parsed_once(folder)
    key = rule_files._key()
    assert entry(cache).name == f"rules-{key}.json"
    assert json.loads(entry(cache).read_text(encoding="utf-8")) == {
        "format": 1,
        "key": key,
        "files": {"a.yaml": {"x": [1, 2]}, "b.yaml": {"name": "café"}},
    }
    assert [p.name for p in cache.iterdir()] == [entry(cache).name]  # no partial file left behind


def test_a_matching_entry_answers_without_parsing(cache: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    folder = folder_with(tmp_path, a=b"x: 1")
    parsed_once(folder)
    data = json.loads(entry(cache).read_text())
    data["files"]["a.yaml"] = {"x": "from the cache"}
    entry(cache).write_text(json.dumps(data))
    monkeypatch.setattr(files, "_parse_yaml", lambda name, raw: pytest.fail("parsed although cached"))
    again = RuleFiles(folder)
    again.read_all()
    assert again.data("a.yaml") == {"x": "from the cache"}


def test_a_file_the_entry_lacks_is_parsed(cache: Path, tmp_path: Path) -> None:
    folder = folder_with(tmp_path, a=b"x: 1", b=b"y: 2")
    parsed_once(folder)
    data = json.loads(entry(cache).read_text())
    del data["files"]["b.yaml"]
    entry(cache).write_text(json.dumps(data))
    again = RuleFiles(folder)
    again.read_all()
    assert again.data("a.yaml") == {"x": 1} and again.data("b.yaml") == {"y": 2}
    again.save_parsed()  # an entry is written only by a load that found none: this one stays as it was
    assert json.loads(entry(cache).read_text()) == data


@pytest.mark.parametrize(
    "damage",
    [
        lambda e: {**e, "files": ["a.yaml"]},
        lambda e: {**e, "format": 2},
        lambda e: {**e, "key": "another"},
        lambda e: {k: v for k, v in e.items() if k != "format"},
        lambda e: {**e, "files": [["a.yaml", {"x": "cached"}]]},
        lambda e: [e],
    ],
)
def test_an_entry_of_another_format_or_key_or_shape_is_ignored(cache: Path, tmp_path: Path, damage: Any) -> None:
    folder = folder_with(tmp_path, a=b"x: 1")
    parsed_once(folder)
    data = json.loads(entry(cache).read_text())
    data["files"]["a.yaml"] = {"x": "cached"}
    entry(cache).write_text(json.dumps(damage(data)))
    again = RuleFiles(folder)
    again.read_all()
    assert again.data("a.yaml") == {"x": 1}


@pytest.mark.parametrize("text", ["{not json", "[" * 100_000 + "]" * 100_000, ""])
def test_an_entry_that_is_not_json_is_ignored(cache: Path, tmp_path: Path, text: str) -> None:
    folder = folder_with(tmp_path, a=b"x: 1")
    parsed_once(folder)
    entry(cache).write_text(text)
    again = RuleFiles(folder)
    again.read_all()
    assert again.data("a.yaml") == {"x": 1}


def test_what_is_parsed_is_kept_without_reading_the_whole_folder_first(cache: Path, tmp_path: Path) -> None:
    rule_files = RuleFiles(folder_with(tmp_path, a=b"x: 1", b=b"y: 2"))
    assert rule_files.data("a.yaml") == {"x": 1}
    rule_files.save_parsed()
    assert json.loads(entry(cache).read_text())["files"] == {"a.yaml": {"x": 1}}


def test_an_unwritable_cache_folder_only_costs_the_next_parse(clean_env: pytest.MonkeyPatch, tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    clean_env.setenv("GUIDANCE_RULES_CACHE_DIR", str(blocker / "cache"))
    parsed_once(folder_with(tmp_path, a=b"x: 1"))  # no error
    assert blocker.read_text() == ""


def test_the_partial_file_is_written_beside_the_entry(cache: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """In the cache folder itself, so that the rename is atomic (a system temp folder may be another file system)."""
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "no-such-temp-folder"))
    parsed_once(folder_with(tmp_path, a=b"x: 1"))
    assert len(list(cache.glob("rules-*.json"))) == 1


def test_an_existing_cache_folder_is_written_into(cache: Path, tmp_path: Path) -> None:
    cache.mkdir(parents=True)
    parsed_once(folder_with(tmp_path, a=b"x: 1"))
    assert len(list(cache.glob("rules-*.json"))) == 1


def test_a_cache_turned_off_for_one_reader_is_neither_read_nor_written(cache: Path, tmp_path: Path) -> None:
    folder = folder_with(tmp_path, a=b"x: 1")
    parsed_once(folder)
    data = json.loads(entry(cache).read_text())
    data["files"]["a.yaml"] = {"x": "cached"}
    entry(cache).write_text(json.dumps(data))
    uncached = RuleFiles(folder, cache=False)
    uncached.read_all()
    assert uncached.data("a.yaml") == {"x": 1}
    entry(cache).unlink()
    uncached.save_parsed()
    assert not list(cache.iterdir())


def test_an_answer_from_the_cache_is_not_written_again(cache: Path, tmp_path: Path) -> None:
    folder = folder_with(tmp_path, a=b"x: 1")
    parsed_once(folder)
    marked = json.loads(entry(cache).read_text())
    marked["files"]["a.yaml"] = {"x": "cached"}
    entry(cache).write_text(json.dumps(marked))
    again = parsed_once(folder)
    assert again.data("a.yaml") == {"x": "cached"}
    assert json.loads(entry(cache).read_text()) == marked


def test_nothing_is_written_when_nothing_was_parsed(cache: Path, tmp_path: Path) -> None:
    rule_files = RuleFiles(folder_with(tmp_path, a=b"x: 1"))
    rule_files.read_all()
    rule_files.save_parsed()
    assert not cache.exists()


@pytest.mark.parametrize("text", [b"when: 2026-12-02", b"1: one", b"s: !!set {a, b}", b"x: .nan"])
def test_data_json_cannot_hold_exactly_is_never_cached(cache: Path, tmp_path: Path, text: bytes) -> None:
    parsed_once(folder_with(tmp_path, a=text))
    assert not list(cache.glob("rules-*.json"))


# -- the YAML loader ---------------------------------------------------------------------------------


@pytest.fixture
def fresh_loader(monkeypatch: pytest.MonkeyPatch) -> None:
    """The loader is built once per process: build it anew, so that these tests check how it is built."""
    monkeypatch.setattr(files, "_LOADER", [])


def test_the_loader_is_libyamls_when_present(fresh_loader: None) -> None:
    import yaml

    assert issubclass(files._loader(), getattr(yaml, "CSafeLoader", yaml.SafeLoader))


def test_the_loader_is_built_once(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(files, "_LOADER", [])
    first = files._loader()
    assert files._loader() is first
    assert len(files._LOADER) == 1 and files._LOADER[0] is first


def test_keys_alike_only_in_text_are_two_keys(tmp_path: Path, fresh_loader: None) -> None:
    assert RuleFiles(folder_with(tmp_path, a=b"{1: int, '1': str}")).data("a.yaml") == {1: "int", "1": "str"}
    assert RuleFiles(folder_with(tmp_path / "n", a=b"[{a: 1}, {a: 2}]")).data("a.yaml") == [{"a": 1}, {"a": 2}]


def yaml_refusal(tmp_path: Path, text: bytes) -> str:
    with pytest.raises(RuleFileError) as caught:
        RuleFiles(folder_with(tmp_path, a=text)).data("a.yaml")
    return str(caught.value)


def test_a_key_given_twice_names_the_key_and_where(tmp_path: Path, fresh_loader: None) -> None:
    assert yaml_refusal(tmp_path, b"a: {b: 1, b: 2}") == (
        "a.yaml: not valid YAML: in the mapping starting\n"
        '  in "<byte string>", line 1, column 4\n'
        "key 'b' is given twice; give it once\n"
        '  in "<byte string>", line 1, column 11'
    )


@pytest.mark.parametrize("text", [b"x: &one [1]\ny: *one\n", b"x: &a [*a]\n", b"x: &a {k: *a}\n"])
def test_an_alias_is_refused_with_the_reason(tmp_path: Path, fresh_loader: None, text: bytes) -> None:
    assert yaml_refusal(tmp_path, text) == (
        "a.yaml: not valid YAML: anchors and aliases (&name, *name) are not allowed in rule files; write the value out\n"
        '  in "<byte string>", line 1, column 4'
    )


def test_yaml_nested_too_deeply_is_a_rule_file_error(tmp_path: Path, fresh_loader: None) -> None:
    deep = b"x: " + b"[" * 50_000 + b"]" * 50_000
    with pytest.raises(RuleFileError) as caught:
        RuleFiles(folder_with(tmp_path, a=deep)).data("a.yaml")
    assert str(caught.value).startswith("a.yaml: not valid YAML: ")
    # libyaml's own nesting limit, met before Python's recursion limit (pure-Python PyYAML meets that)
    assert "nesting depth" in str(caught.value) or str(caught.value).endswith("nested too deeply")


def test_a_parser_out_of_stack_is_a_rule_file_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import yaml

    def exhausted(*args: Any, **kwargs: Any) -> Any:
        raise RecursionError("maximum recursion depth exceeded")

    monkeypatch.setattr(yaml, "load", exhausted)
    with pytest.raises(RuleFileError) as caught:
        RuleFiles(folder_with(tmp_path, a=b"x: 1")).data("a.yaml")
    assert (caught.value.file, str(caught.value)) == ("a.yaml", "a.yaml: not valid YAML: nested too deeply")
