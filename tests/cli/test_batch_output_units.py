"""`batch --out FILE` in this process: the file is written beside its target under a hidden name and
renamed into place when complete and on disk, so a failed or interrupted run never destroys the
file and leaves nothing behind; the new file keeps the old one's mode, group and (for root) owner,
also for a user who may not give files away. Written against the mutation run of issue 24."""

from __future__ import annotations

import io
import json
import os
import shutil
import stat
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, BinaryIO

import pytest

from guidance_rules import Recommender
from guidance_rules.cli import batch as module
from guidance_rules.cli import main
from guidance_rules.cli.batch import Tally

KNEE = {"site": "knee", "injectate": "prp"}
HIP = {"site": "hip", "injectate": "prp"}
ROOT = hasattr(os, "geteuid") and os.geteuid() == 0


def jsonl(*cases: Any) -> bytes:
    return b"".join(json.dumps(c).encode() + b"\n" for c in cases)


def others(folder: Path, target: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p != target)


def test_the_output_is_written_hidden_beside_its_target_and_renamed_when_on_disk(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    target = tmp_path / "out.jsonl"
    target.write_bytes(b"old")
    target.chmod(0o640)
    seen: dict[str, Any] = {}
    synced: list[tuple[int, bytes]] = []
    real_fsync = os.fsync

    def fsync(fd: int) -> None:  # what is on the file when it is forced to disk, and the target then
        synced.append((os.fstat(fd).st_size, target.read_bytes()))
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", fsync)

    def write(out: BinaryIO) -> Tally:
        [name] = others(tmp_path, target)
        seen["name"], seen["mode"] = name, stat.S_IMODE((tmp_path / name).stat().st_mode)
        seen["target"] = target.read_bytes()
        out.write(b"new\n" * 1000)  # more than the file object's buffer holds
        out.write(b"end\n")
        return Tally(good=1001)

    tally = module._write_atomically(target, write)
    assert tally == Tally(good=1001)
    assert seen["name"].startswith(".out.jsonl.") and seen["name"].endswith(".partial")  # hidden, and no *.jsonl
    assert seen["mode"] == 0o640  # never readable by more users than the file it replaces
    assert seen["target"] == b"old"
    assert synced == [(4004, b"old")]  # all of it on disk before the rename
    assert target.read_bytes() == b"new\n" * 1000 + b"end\n" and others(tmp_path, target) == []


def test_a_failed_write_leaves_the_target_and_nothing_else(tmp_path: Path) -> None:
    target = tmp_path / "out.jsonl"
    target.write_bytes(b"old")

    def full(out: BinaryIO) -> Tally:
        out.write(b"part\n")
        raise OSError(28, "No space left on device")

    error = module._write_atomically(target, full)
    assert isinstance(error, OSError) and error.strerror == "No space left on device"
    assert target.read_bytes() == b"old" and others(tmp_path, target) == []

    def stopped(out: BinaryIO) -> Tally:
        out.write(b"part\n")
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        module._write_atomically(target, stopped)
    assert target.read_bytes() == b"old" and others(tmp_path, target) == []


def test_a_target_that_cannot_be_replaced_leaves_nothing_behind(tmp_path: Path) -> None:
    folder = tmp_path / "out.jsonl"
    (folder / "inside").mkdir(parents=True)
    error = module._write_atomically(folder, lambda out: Tally(good=out.write(b"x")))
    assert isinstance(error, OSError)  # a folder in its place: the rename fails
    assert others(tmp_path, folder) == [] and [p.name for p in folder.iterdir()] == ["inside"]
    error = module._write_atomically(tmp_path / "gone" / "out.jsonl", lambda out: Tally())
    assert isinstance(error, FileNotFoundError) and others(tmp_path, folder) == []


def test_a_full_disk_is_said_and_the_output_left_as_it_was(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsysbinary: pytest.CaptureFixture[bytes]
) -> None:
    source, target = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    source.write_bytes(jsonl(KNEE, HIP))
    target.write_bytes(b"old")

    def full(fd: int) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync", full)
    assert main(["batch", str(source), "--out", str(target)]) == 1
    out, err = capsysbinary.readouterr()
    assert out == b""
    assert err.decode() == f"error: cannot write {target}: No space left on device; {target} was left as it was\n"
    assert target.read_bytes() == b"old" and others(tmp_path, target) == ["in.jsonl"]


def test_a_fifo_is_written_in_place_and_an_interruption_says_what_it_got(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsysbinary: pytest.CaptureFixture[bytes]
) -> None:
    source, fifo = tmp_path / "in.jsonl", tmp_path / "pipe"
    source.write_bytes(jsonl(KNEE, HIP, KNEE))
    os.mkfifo(fifo)
    got: list[bytes] = []
    reader = threading.Thread(target=lambda: got.append(fifo.read_bytes()))
    reader.start()
    code = main(["batch", str(source), "--out", str(fifo)])
    reader.join(timeout=30)
    assert code == 0 and stat.S_ISFIFO(fifo.stat().st_mode) and others(tmp_path, fifo) == ["in.jsonl"]
    expected = [
        b'{"line":%d,"recommendation":' % n + Recommender().recommend_json(c).encode() + b"}" for n, c in ((1, KNEE), (2, HIP), (3, KNEE))
    ]
    assert got[0].splitlines() == expected
    assert capsysbinary.readouterr().err.decode().endswith(f"written to {fifo}\n")

    real = module.process

    def stop_after_first(records: Iterator[Any], *args: Any, tally: Tally, **kwargs: Any) -> Tally:
        real(iter([next(records)]), *args, tally=tally, **kwargs)
        raise KeyboardInterrupt

    monkeypatch.setattr(module, "process", stop_after_first)
    got.clear()
    reader = threading.Thread(target=lambda: got.append(fifo.read_bytes()))
    reader.start()
    assert main(["batch", str(source), "--out", str(fifo)]) == 130
    reader.join(timeout=30)
    assert got[0].splitlines() == expected[:1]
    assert capsysbinary.readouterr().err.decode() == (
        f"batch: interrupted; the 1 record written to {fifo} are complete, up to input line 1; the records after it were not written\n"
    )


def test_an_interrupted_run_to_a_file_keeps_the_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsysbinary: pytest.CaptureFixture[bytes]
) -> None:
    source, target = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    source.write_bytes(jsonl(KNEE, HIP))

    def stop(*args: Any, **kwargs: Any) -> Tally:
        raise KeyboardInterrupt

    monkeypatch.setattr(module, "process", stop)
    assert main(["batch", str(source), "--out", str(target)]) == 130
    assert capsysbinary.readouterr().err.decode() == (
        f"batch: interrupted; nothing was kept: {target} was left as it was (run the batch again)\n"
    )
    assert others(tmp_path, target) == ["in.jsonl"] and not target.exists()


@contextmanager
def as_user(uid: int, gid: int, groups: list[int]) -> Iterator[None]:
    """This process as another user (effective ids), as root may become for a while."""
    saved = os.getgroups()
    os.setgroups(groups)
    os.setegid(gid)
    os.seteuid(uid)
    try:
        yield
    finally:
        os.seteuid(0)
        os.setegid(0)
        os.setgroups(saved)


@pytest.fixture
def shared_folder() -> Iterator[Path]:
    """A folder every user may write (pytest's own are root's alone)."""
    folder = Path(tempfile.mkdtemp())
    folder.chmod(0o777)
    try:
        yield folder
    finally:
        shutil.rmtree(folder)


@pytest.mark.skipif(not ROOT, reason="becoming another user needs root")
@pytest.mark.parametrize(
    ("owner", "mode", "kept"),
    [
        ((9999, 4322), 0o2664, (4321, 4322, 0o2664)),  # the group kept (the writer is a member), and its set-group-id bit
        ((9999, 7777), 0o664, (4321, 4321, 0o664)),  # a group the writer is not in: the writer's own, the mode kept
        ((4321, 4322), 0o640, (4321, 4322, 0o640)),
    ],
)
def test_a_user_who_may_not_give_files_away_keeps_what_it_may(
    shared_folder: Path, owner: tuple[int, int], mode: int, kept: tuple[int, int, int]
) -> None:
    target = shared_folder / "out.jsonl"
    target.write_bytes(b"old")
    os.chown(target, *owner)
    target.chmod(mode)
    with as_user(4321, 4321, [4321, 4322]):
        tally = module._write_atomically(target, lambda out: Tally(good=out.write(b"new\n")))
    assert tally == Tally(good=4)
    info = target.stat()
    assert (info.st_uid, info.st_gid, stat.S_IMODE(info.st_mode)) == kept
    assert target.read_bytes() == b"new\n" and others(shared_folder, target) == []


@pytest.mark.skipif(not ROOT, reason="only root may give a file to another owner")
def test_root_keeps_a_files_group_when_it_owns_it(tmp_path: Path) -> None:
    target = tmp_path / "out.jsonl"
    target.write_bytes(b"old")
    os.chown(target, os.geteuid(), 4322)
    target.chmod(0o2640)
    assert module._write_atomically(target, lambda out: Tally(good=out.write(b"new\n"))) == Tally(good=4)
    info = target.stat()
    assert (info.st_uid, info.st_gid, stat.S_IMODE(info.st_mode)) == (os.geteuid(), 4322, 0o2640)


def test_a_new_file_gets_the_usual_mode_under_any_umask(tmp_path: Path) -> None:
    for mask, mode in ((0o022, 0o644), (0o077, 0o600), (0o000, 0o666)):
        target = tmp_path / f"new-{mask:o}.jsonl"
        before = os.umask(mask)
        try:
            module._write_atomically(target, lambda out: Tally())
            assert os.umask(mask) == mask
        finally:
            os.umask(before)
        assert stat.S_IMODE(target.stat().st_mode) == mode
    assert sorted(p.name for p in tmp_path.iterdir()) == ["new-0.jsonl", "new-22.jsonl", "new-77.jsonl"]


def test_stopped_messages_count_the_records(capsys: pytest.CaptureFixture[str]) -> None:
    assert module._stopped(Tally(good=1, invalid=1, failed=1, last_line=1234), "out", replaced=False) == (
        "batch: interrupted; the 3 records written to out are complete, up to input line 1,234; the records after it were not written"
    )
    assert module._stopped(Tally(failed=1), "out", replaced=False) != module._stopped(Tally(), "out", replaced=False)
    assert module._stopped(Tally(good=5), "out", replaced=True).startswith("batch: interrupted; nothing was kept")


def test_a_regular_file_is_told_from_a_pipe() -> None:
    with tempfile.TemporaryFile() as handle:
        assert module._regular(handle)
    read, write = os.pipe()
    try:
        with os.fdopen(read, "rb") as pipe:
            assert not module._regular(pipe)
    finally:
        os.close(write)
    assert not module._regular(io.BytesIO())  # no file descriptor
    with tempfile.TemporaryFile() as closed:
        pass
    assert not module._regular(closed)  # ValueError: a closed file


class Terminal(io.StringIO):
    """Standard error that says it is a terminal, so batch shows its progress bar there."""

    def isatty(self) -> bool:
        return True


def test_the_progress_bar_counts_kibibytes_of_the_input(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from tqdm import tqdm

    monkeypatch.setattr(module, "BLOCK", 4)
    source, target = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    records = jsonl(*[KNEE] * 20)
    source.write_bytes(b" " * (1100 - len(records)) + b"\n" + records)
    assert source.stat().st_size == 1101  # 1.08 KiB (1.07 in units of 1,025 bytes, 1.10 kB)
    shown = Terminal()
    monkeypatch.setattr("sys.stderr", shown)
    assert main(["batch", str(source), "--out", str(target)]) == 0
    size = tqdm.format_sizeof(1101, "", 1024)
    text = shown.getvalue()
    assert size == "1.08k" and f"100%|##########| {size}/{size} [" in text
    assert "B/s, 20 records]" in text  # bytes per second


@pytest.mark.parametrize("stop", [OSError(28, "No space left on device"), KeyboardInterrupt()])
def test_a_temporary_file_already_gone_does_not_hide_why_the_write_stopped(tmp_path: Path, stop: BaseException) -> None:
    target = tmp_path / "out.jsonl"
    target.write_bytes(b"old")

    def removed_then_stopped(out: BinaryIO) -> Tally:  # as a cleaner of stale files might
        [name] = others(tmp_path, target)
        (tmp_path / name).unlink()
        raise stop

    if isinstance(stop, OSError):
        assert module._write_atomically(target, removed_then_stopped) is stop
    else:
        with pytest.raises(KeyboardInterrupt):
            module._write_atomically(target, removed_then_stopped)
    assert target.read_bytes() == b"old" and others(tmp_path, target) == []


def test_a_csv_header_that_does_not_fit_is_refused_before_the_progress_bar(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    source, target = tmp_path / "in.csv", tmp_path / "out.jsonl"
    source.write_bytes(b"site,colour\nknee,red\n")
    shown = Terminal()
    monkeypatch.setattr("sys.stderr", shown)
    assert main(["batch", str(source), "--out", str(target)]) == 2
    said = shown.getvalue().splitlines()
    assert said[0].startswith(f"batch: reading {source} as CSV; detected: encoding UTF-8")
    assert said[1].startswith("invalid input: header: column 'colour' is not a case field") and len(said) == 2
    assert "%" not in shown.getvalue() and not target.exists()


def test_the_progress_bar_is_not_redrawn_for_every_block(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A million-line batch writes thousands of blocks: drawing the bar for each would cost more
    than the answers; it is redrawn at most twice a second, and at the end."""
    monkeypatch.setattr(module, "BLOCK", 1)
    source, target = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    source.write_bytes(jsonl(*[KNEE, HIP] * 40))
    shown = Terminal()
    monkeypatch.setattr("sys.stderr", shown)
    assert main(["batch", str(source), "--out", str(target)]) == 0
    text = shown.getvalue()
    assert "80 records]" in text and text.count("\r") < 30  # 80 blocks written


def test_the_encoding_is_detected_from_the_first_64_kib_not_the_first_buffer(
    tmp_path: Path, capsysbinary: pytest.CaptureFixture[bytes]
) -> None:
    source = tmp_path / "in.csv"
    rows = b"".join(b"A-%d,knee,prp\n" % n for n in range(1500))  # about 20 KB of ASCII
    source.write_bytes(b"order,site,injectate\n" + rows + "Réf,hip,prp\n".encode("cp1252"))
    assert 16_384 < source.stat().st_size < 65_536
    assert main(["batch", str(source), "--id-column", "order"]) == 0
    out, err = capsysbinary.readouterr()
    assert json.loads(out.splitlines()[-1])["id"] == "Réf"
    assert "detected: encoding Windows-1252 (not UTF-8 text)" in err.decode()
