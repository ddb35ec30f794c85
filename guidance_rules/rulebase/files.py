"""Reading the files of a rule base: safely, each once, digested, and parsed at most once per content.

Safety: only regular files with plain names inside the directory are read (a FIFO would block
forever, a link to a device never end), at most MAX_RULE_FILE bytes each; YAML is loaded with the
safe loader, with no anchors or aliases (an alias bomb expands to gigabytes when walked) and no key
given twice in a mapping (YAML would silently keep the last).

Speed: parsing YAML is most of a rule base load (and importing PyYAML a tenth of the command
line's start), so the parsed data of a rule base is kept as JSON in a cache folder, keyed by the
SHA-256 of every file's bytes and of this module. A later load of the same bytes reads the JSON
instead; everything after parsing (schemas, cross-references, cycles) still runs on every load.
JSON cannot run code, a cache entry is used only when its key matches, and data that JSON cannot
hold exactly is never cached. `GUIDANCE_RULES_CACHE=off` turns the cache off;
`GUIDANCE_RULES_CACHE_DIR` moves it (default: `$XDG_CACHE_HOME/guidance-rules` or `~/.cache/...`).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import stat
import tempfile
from pathlib import Path
from typing import Any

from guidance_rules._version import __version__
from guidance_rules.errors import RuleFileError

MAX_RULE_FILE = 4 * 1024 * 1024  # bytes; the whole shipped rule base is under 200 KB
RULE_FILE_NAME = r"^[A-Za-z0-9][A-Za-z0-9_.-]*\.yaml$"  # a plain name inside the rule directory
CACHE_FORMAT = 1


def cache_dir() -> Path | None:
    """Where parsed rule bases are kept, or None when the cache is turned off."""
    if os.environ.get("GUIDANCE_RULES_CACHE", "").lower() in ("0", "off", "no", "false"):
        return None
    if os.environ.get("GUIDANCE_RULES_CACHE_DIR"):
        return Path(os.environ["GUIDANCE_RULES_CACHE_DIR"])
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "guidance-rules"


def _code_fingerprint() -> bytes:
    """This module's own source and the package version: a change to how files are parsed must
    never be answered from data parsed the old way."""
    try:
        return Path(__file__).read_bytes() + __version__.encode()
    except OSError:
        return b"unknown:" + __version__.encode()


class RuleFiles:
    """The files of one rule directory, read once each, safely; see the module docstring."""

    def __init__(self, directory: Path, *, cache: bool = True) -> None:
        self.directory = directory
        self.cache = cache
        self.read: dict[str, bytes] = {}
        self._parsed: dict[str, Any] | None = None  # from the cache, when its key matched
        self._fresh: dict[str, Any] = {}  # parsed here from YAML

    def read_all(self) -> None:
        """Read every `*.yaml` of the directory (so all are checked and digested), then look
        for their parsed data in the cache."""
        for path in sorted(self.directory.glob("*.yaml")):
            self.raw(path.name)
        self._parsed = self._cached()

    def data(self, name: str) -> Any:
        """The parsed content of one file (from the cache when it holds these exact bytes)."""
        raw = self.raw(name)
        if self._parsed is not None and name in self._parsed:
            return self._parsed[name]
        data = _parse_yaml(name, raw)
        self._fresh[name] = data
        return data

    def raw(self, name: str) -> bytes:
        if name in self.read:
            return self.read[name]
        if not re.match(RULE_FILE_NAME, name):
            raise RuleFileError(name, "a rule file must be a plain file name ending in .yaml, inside the rule directory")
        path = self.directory / name
        try:
            info = path.stat()
            if not stat.S_ISREG(info.st_mode):
                raise RuleFileError(name, "not a regular file (a directory, FIFO, socket or device); a rule file must be a plain file")
            if info.st_size > MAX_RULE_FILE:
                raise RuleFileError(name, f"file is {info.st_size} bytes; at most {MAX_RULE_FILE} are read")
            fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
            with os.fdopen(fd, "rb") as handle:
                if not stat.S_ISREG(os.fstat(handle.fileno()).st_mode):
                    raise RuleFileError(name, "not a regular file; a rule file must be a plain file")
                raw = handle.read(MAX_RULE_FILE + 1)
        except FileNotFoundError:
            raise RuleFileError(name, "file is missing from the rule base") from None
        except OSError as error:
            raise RuleFileError(name, f"cannot be read: {error.strerror or error}") from None
        if len(raw) > MAX_RULE_FILE:
            raise RuleFileError(name, f"file is larger than {MAX_RULE_FILE} bytes")
        self.read[name] = bytes(raw)
        return self.read[name]

    def digest(self) -> str:
        """A hash of every file read, name and bytes: changes whenever any rule file changes."""
        sha = hashlib.sha256()
        for name in sorted(self.read):
            sha.update(name.encode() + b"\0" + self.read[name] + b"\0")
        return "sha256:" + sha.hexdigest()

    # -- the parsed-data cache -------------------------------------------------------------------

    def _key(self) -> str:
        return hashlib.sha256(self.digest().encode() + b"\0" + _code_fingerprint()).hexdigest()

    def _cached(self) -> dict[str, Any] | None:
        folder = cache_dir() if self.cache else None
        if folder is None:
            return None
        key = self._key()
        try:
            entry = json.loads((folder / f"rules-{key}.json").read_bytes())
        except (OSError, ValueError, RecursionError):
            return None
        if not isinstance(entry, dict) or entry.get("format") != CACHE_FORMAT or entry.get("key") != key:
            return None
        files = entry.get("files")
        return files if isinstance(files, dict) else None

    def save_parsed(self) -> None:
        """Keep what was parsed from YAML in this load, when the cache lacked it (best effort:
        an unwritable cache folder only costs the next load its parsing)."""
        folder = cache_dir() if self.cache else None
        if folder is None or not self._fresh or self._parsed is not None:
            return
        files = dict(self._fresh)
        try:
            text = json.dumps({"format": CACHE_FORMAT, "key": self._key(), "files": files}, ensure_ascii=False)
            if json.loads(text)["files"] != files:  # e.g. a YAML date or a number as a key: not exact in JSON
                return
        except (TypeError, ValueError):
            return
        with contextlib.suppress(OSError):
            folder.mkdir(parents=True, exist_ok=True)
            handle, temp = tempfile.mkstemp(dir=folder, prefix=".rules-", suffix=".partial")
            try:
                with os.fdopen(handle, "w", encoding="utf-8") as out:
                    out.write(text)
                os.replace(temp, folder / f"rules-{self._key()}.json")
            finally:
                with contextlib.suppress(OSError):
                    os.unlink(temp)


def _parse_yaml(name: str, raw: bytes) -> Any:
    import yaml  # here, not at the top: a load answered from the cache never imports PyYAML

    try:
        return yaml.load(raw, Loader=_loader())
    except yaml.YAMLError as error:
        raise RuleFileError(name, f"not valid YAML: {error}") from None
    except RecursionError:
        raise RuleFileError(name, "not valid YAML: nested too deeply") from None


_LOADER: list[Any] = []


def _loader() -> Any:
    """The safe YAML loader with aliases and duplicate keys refused (built on first use)."""
    if _LOADER:
        return _LOADER[0]
    import yaml

    base: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml's when present: about 10x faster

    class RuleLoader(base):  # type: ignore[misc]
        def construct_object(self, node: yaml.Node, deep: bool = False) -> Any:
            if node in self.constructed_objects or node in self.recursive_objects:
                raise yaml.constructor.ConstructorError(
                    None, None, "anchors and aliases (&name, *name) are not allowed in rule files; write the value out", node.start_mark
                )
            return super().construct_object(node, deep)

        def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> Any:
            seen: set[tuple[str, Any]] = set()
            for key_node, _ in node.value:
                if isinstance(key_node, yaml.ScalarNode):
                    key = (key_node.tag, key_node.value)
                    if key in seen:
                        raise yaml.constructor.ConstructorError(
                            "in the mapping starting",
                            node.start_mark,
                            f"key '{key_node.value}' is given twice; give it once",
                            key_node.start_mark,
                        )
                    seen.add(key)
            return super().construct_mapping(node, deep)

    _LOADER.append(RuleLoader)
    return RuleLoader
