"""The final swap of a folder output survives SIGKILL at every step: the user sees the whole old or the whole new
folder, and the next writer finishes the swap and leaves nothing of ours behind.

The writer is a real child process. It counts every file-system change its commit makes (mkdir, create, rename,
exchange, unlink, rmdir) and stops itself (SIGSTOP) before change number ``k``; the test then SIGKILLs it there.
That places the kill exactly between two changes, for every change of the swap itself and at points spread
through the removal of the old folder (1,000 files), which wall-clock delays could not do on busy cores.
"""
from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

import pytest

import core.io.output as output
from core.io.output import staged_folder
from tests.conftest import ROOT

FILES = 1000

_CHILD = textwrap.dedent("""
    import os, signal, sys
    from pathlib import Path
    import core.io.output as out
    import core.io.swap as swap

    target, mode, stop_at, gen = Path(sys.argv[1]), sys.argv[2], int(sys.argv[3]), sys.argv[4]
    if mode == "fallback":                        # a system without renameat2(RENAME_EXCHANGE)
        swap._exchange = lambda a, b: False
    os.fsync = lambda fd: None                    # SIGKILL does not lose written data; keeps 1,000 files fast
    steps = 0
    counting = False

    def step(fn, creates_only=False):
        def wrapper(*args, **kwargs):
            global steps
            if counting and (not creates_only or args[1] & os.O_CREAT):
                steps += 1
                if steps == stop_at:
                    os.kill(os.getpid(), signal.SIGSTOP)   # the test SIGKILLs us here
            return fn(*args, **kwargs)
        return wrapper

    for name in ("mkdir", "rename", "unlink", "rmdir"):
        setattr(os, name, step(getattr(os, name)))
    os.open = step(os.open, creates_only=True)
    swap._exchange = step(swap._exchange)

    with out.staged_folder(target, overwrite=True) as tmp:
        for i in range(%d):
            (tmp / f"{i:04d}.png").write_bytes(f"{gen} {i}".encode())
        counting = True                           # from here on: the commit (fsync, journal, swap, clean-up)
    print(steps, flush=True)
""" % FILES)


@pytest.fixture()
def scratch(tmp_path):
    """A folder in memory (/dev/shm) where there is one: creating 1,000 files 60 times on a busy disk takes
    minutes, in tmpfs a second; tmp_path elsewhere."""
    shm = Path("/dev/shm")
    if not (shm.is_dir() and os.access(shm, os.W_OK)):
        yield tmp_path
        return
    folder = Path(tempfile.mkdtemp(prefix="ssl-vsr-swap-test-", dir=shm))
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def _names() -> list[str]:
    return [f"{i:04d}.png" for i in range(FILES)]


def _fill(folder: Path, gen: str) -> None:
    for name in _names():
        (folder / name).write_bytes(f"{gen} {int(name[:4])}".encode())


def _generation(folder: Path) -> str | None:
    """The one generation every file of ``folder`` holds; fails when the folder is mixed or incomplete."""
    if not folder.exists():
        return None
    assert sorted(p.name for p in folder.iterdir()) == _names(), "files missing or extra"
    gens = {(folder / name).read_bytes().decode().split(" ")[0] for name in _names()}
    assert len(gens) == 1, f"a mix of old and new files: {sorted(gens)}"
    return gens.pop()


def _run_child(target: Path, mode: str, stop_at: int, gen: str, log: Path) -> int | None:
    """Run the writer; SIGKILL it where it stopped. The number of steps it counted when it was not stopped."""
    with open(log, "w") as err:
        proc = subprocess.Popen([sys.executable, "-c", _CHILD, str(target), mode, str(stop_at), gen], cwd=ROOT,
                                stdout=subprocess.PIPE, stderr=err, text=True)
    _, status = os.waitpid(proc.pid, os.WUNTRACED)
    if os.WIFSTOPPED(status):
        os.kill(proc.pid, signal.SIGKILL)
        os.waitpid(proc.pid, 0)
        proc.returncode = -signal.SIGKILL
        proc.stdout.close()
        return None
    proc.returncode = os.waitstatus_to_exitcode(status)
    out = proc.stdout.read()
    proc.stdout.close()
    assert proc.returncode == 0, log.read_text()
    return int(out)


def _decoys(parent: Path) -> dict[Path, bytes]:
    """The user's own files and folders named like our leftovers: none of them may be touched."""
    mine = {parent / ".out.replaced-x" / "0000.png": b"mine",
            parent / ".out.replaced-abcd1234" / "out" / "0000.png": b"mine too",      # the old scheme's name
            parent / ".out.partial-abcd1234" / "notes.txt": b"no marker: mine",
            parent / ".out.swap": b"my swap notes"}
    for path, data in mine.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    return mine


@pytest.mark.skipif(not hasattr(os, "WUNTRACED"), reason="needs POSIX job control signals")
@pytest.mark.parametrize("mode", ["exchange", "fallback"])
def test_sigkill_at_every_step_of_the_swap_leaves_old_or_new_and_the_next_writer_cleans_up(scratch, monkeypatch,
                                                                                          mode):
    if mode == "exchange" and output._renameat2() is None:
        pytest.skip("no renameat2 here: the fallback is the swap")
    monkeypatch.setattr(os, "fsync", lambda fd: None)     # as in the child: 1,000 fsyncs per write on a busy disk
    parent = scratch / "work"
    target = parent / "out"
    target.mkdir(parents=True)
    _fill(target, "g0")
    decoys = _decoys(parent)
    user = sorted({path.relative_to(parent).parts[0] for path in decoys})
    log = scratch / "child.log"

    total = _run_child(target, mode, 0, "g1", log)          # an uninterrupted run: how many steps there are
    assert total is not None and total > FILES and _generation(target) == "g1"
    # every step of the journal and the swap, points through the removal of the old folder, and the clean-up
    points = sorted({*range(1, 12), *(total * f // 8 for f in range(1, 8)), *range(total - 6, total + 1)})
    assert len(points) >= 20
    gen, outcomes = 1, {}
    for k in points:
        old, new, nxt = f"g{gen}", f"g{gen + 1}", f"g{gen + 2}"
        assert _run_child(target, mode, k, new, log) is None, f"step {k} of {total} was never reached"
        seen = _generation(target)                            # before anyone else runs: whole old, whole new,
        if seen is None:                                      # or (two renames only) absent with the journal
            assert mode == "fallback", f"exchange left no folder at step {k}"
        else:
            assert seen in (old, new), (k, seen)
        outcomes[k] = seen
        with staged_folder(target, overwrite=True) as tmp:   # the next writer
            finished = _generation(target)                    # it finished the swap before its own work:
            assert finished in (old, new) and (seen is not None or finished == new), (k, seen, finished)
            assert sorted(p.name for p in parent.iterdir()) == sorted([*user, ".out.lock", "out", tmp.name]), \
                (k, sorted(p.name for p in parent.iterdir()))
            _fill(tmp, nxt)
        assert _generation(target) == nxt
        assert sorted(p.name for p in parent.iterdir()) == sorted([*user, "out"]), k    # nothing else of ours
        assert all(path.read_bytes() == data for path, data in decoys.items())
        gen += 2
    # the kills landed on both sides of the swap (old generations are odd, new ones even)
    olds = [k for k, seen in outcomes.items() if seen is not None and int(seen[1:]) % 2 == 1]
    news = [k for k, seen in outcomes.items() if seen is not None and int(seen[1:]) % 2 == 0]
    assert len(olds) >= 3 and len(news) >= 10, outcomes
    if mode == "fallback":
        assert any(seen is None for seen in outcomes.values()), outcomes   # the window the journal exists for


def _forged_record(parent: Path, journal: dict) -> Path:
    record = parent / ".out.partial-zz99zz99"
    record.mkdir()
    (record / output.MARKER).touch()
    (record / output.SWAP_RECORD).write_text(json.dumps(journal))
    return record


def test_a_record_never_removes_what_it_did_not_move(tmp_path):
    """A record removes a folder only when its inode is the one the record wrote: a user's folder that sits at
    the staged name (without our marker) is kept, the record itself is swept, and the writer goes ahead."""
    target = tmp_path / "out"
    target.mkdir()
    (target / "0000.png").write_bytes(b"old")
    mine = tmp_path / ".out.partial-abcd1234"
    mine.mkdir()
    (mine / "notes.txt").write_text("mine")
    _forged_record(tmp_path, {"format": "ssl-vsr-swap", "target": "out", "staged": mine.name,
                              "new": [0, 1], "old": [0, 2]})
    with staged_folder(target, overwrite=True) as tmp:
        (tmp / "0000.png").write_bytes(b"new")
    assert (target / "0000.png").read_bytes() == b"new" and (mine / "notes.txt").read_text() == "mine"
    assert sorted(p.name for p in tmp_path.iterdir()) == [mine.name, "out"]


@pytest.mark.parametrize("staged", ["../elsewhere", "out", ".other.partial-abcd1234", 7])
def test_a_record_names_only_partials_of_its_own_target(tmp_path, staged):
    elsewhere = tmp_path.parent / f"{tmp_path.name}-elsewhere"
    elsewhere.mkdir()
    (elsewhere / "keep.txt").write_text("keep")
    parent = tmp_path / "work"
    parent.mkdir()
    other = parent / ".other.partial-abcd1234"
    other.mkdir()
    (other / "keep.txt").write_text("keep")
    ident = output._identity(elsewhere if staged == "../elsewhere" else other)
    _forged_record(parent, {"format": "ssl-vsr-swap", "target": "out", "staged": staged, "new": ident, "old": None})
    with staged_folder(parent / "out") as tmp:
        (tmp / "0000.png").write_bytes(b"new")
    assert (elsewhere / "keep.txt").read_text() == "keep" and (other / "keep.txt").read_text() == "keep"
    assert sorted(p.name for p in parent.iterdir()) == [".other.partial-abcd1234", "out"]
    assert (parent / "out" / "0000.png").read_bytes() == b"new"
