"""A training run's folder: the names a run writes there, who may write them, and what a run must never touch.

Why a module of its own: a run folder is written for hours, so every way to lose work in it is refused before
the first write, in one line:
- a live run holds an exclusive lock on the folder itself (an ``flock`` on its directory, which the kernel drops
  when the process dies, so a killed run's folder is free again, and which no file removed from the folder can
  release); a second run, a resume or a GUI start into it is refused naming the holder's pid where the system says;
- a symbolic link at any name the run writes (its marker, ``run_config.yaml``, ``train.log``, ``checkpoints`` and
  the states in it, its model files), or as the run folder itself, is refused before the first write (and a
  resume's, before its config is read): a run never writes through a link; nor does it append its log to a file
  with another name (a hard link);
- a new run refuses a folder where any of the run's own names exists; a resume needs a run's folder, and a
  finished run is left exactly as it is (``RunFinished``);
- the marker is recognised by its content, and a file at one of the run's names that the marker does not record
  as written by the run (a user's ``pruned.pth``) is refused, never replaced nor read as the run's (runmarker); a
  run from before the marker recorded names is neither resumed nor restarted (what it wrote is unknown);
- no input of the run (checkpoints, teacher, datasets, the frame cache) lies inside the run folder, and neither
  the run folder nor the frame cache the run writes lies inside an input.
"""
from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import Iterator

from ..errors import ConfigError, UserError
from ..io.locks import folder_lock, probe_folder_lock
from ..io.missing import why_missing
from ..io.output import claim_output, path_relation
from .config import PATH_KEYS, TrainConfig
from .runmarker import RUN_MARKER, Marker, read_marker, unrecorded, write_marker

RUN_CONFIG = "run_config.yaml"
# Everything a run writes at the top of its folder: a new run refuses a folder where one of these exists.
RUN_FILES = (RUN_MARKER, RUN_CONFIG, "train.log", "checkpoints", "dense.pth", "sir_pruned.pth", "cut.pth",
             "pretrain_best.pth", "finetune_best.pth", "pruned.pth", "report.h5")
STATES = ("pretrain", "sir", "prune", "finetune")   # stages that may keep a state in checkpoints/
RESULTS = ("pruned.pth", "report.h5", "dense.pth")   # what a finished run offers, named in RunFinished
WRITTEN_KEYS = ("data.cache",)       # config paths the run writes as well as reads


class RunFinished(UserError):
    """``--resume`` of a run that already finished: nothing to do, and nothing was changed."""


# -- checks before anything is written ---------------------------------------------------------------------
def check_run_paths(cfg: TrainConfig, run_dir: Path) -> None:
    """Refuse a run that could write over what it reads: an input inside the run folder (resuming with
    ``model.weights=RUN/pruned.pth`` replaced that file), the run folder inside a dataset, or ``data.cache``
    (built by the run) on, inside or around another input. Paths only: nothing is read or created."""
    paths = config_paths(cfg)
    _refuse_overlap("the run folder", str(run_dir), paths)
    for key, value in paths:
        if key in WRITTEN_KEYS:
            _refuse_overlap(key, value, [(k, v) for k, v in paths if k != key])


def config_paths(cfg: TrainConfig) -> list[tuple[str, str]]:
    """Every file system path the config names, with its key (``official:`` weights are the package's own)."""
    found = []
    for key in PATH_KEYS:
        section, name = key.split(".")
        value = getattr(getattr(cfg, section), name)
        if isinstance(value, str) and not value.startswith("official:"):
            found.append((key, value))
    return found


def _refuse_overlap(label: str, written: str, inputs: list[tuple[str, str]]) -> None:
    """``written`` (a place the run writes) must not be, lie inside or hold any of ``inputs``."""
    for key, value in inputs:
        relation = path_relation(written, value)
        if relation == "same":
            raise ConfigError(f"{label} {written} is also {key}: a run must not write what it reads; choose "
                              f"another place")
        if relation == "inside":
            raise ConfigError(f"{label} {written} lies inside {key} {value}: the run would write into its input; "
                              f"choose a place outside it")
        if relation == "holds":
            raise ConfigError(f"{key} {value} lies inside {label} {written}: the run would read files it writes "
                              f"or replaces; move it out, or choose another place for {label}")


def check_run_dir(run_dir: Path, resume: bool) -> None:
    """Read-only checks of the folder (nothing is created, so a refused folder stays exactly as it was): not held
    by a live run; for a new run, none of the run's names taken; for a resume, an unfinished run's folder."""
    if run_dir.is_dir():
        probe_folder_lock(run_dir, lambda pid: _in_use(run_dir, pid))
    _check_state(run_dir, resume)


def _refuse_links(run_dir: Path) -> None:
    """No name the run writes is a symbolic link (nor ``checkpoints`` anything but a real folder): a run writes
    its own files, never through a link to someone else's."""
    names = [*RUN_FILES, *(f"checkpoints/{stage}_last.pth" for stage in STATES)]
    for name in names:
        path = run_dir / name
        if path.is_symlink():
            raise UserError(f"{path} is a symbolic link where the run writes its own file: refusing to write "
                            f"through it; remove the link, or choose another run folder")
    log = run_dir / "train.log"
    if log.is_file() and log.stat().st_nlink > 1:       # the one file a run writes in place (appends)
        raise UserError(f"{log} is a hard link to a file with another name: the run appends to its log in place, "
                        f"which would change that file too; move it away, or choose another run folder")
    checkpoints = run_dir / "checkpoints"
    if os.path.lexists(checkpoints) and not checkpoints.is_dir():
        raise UserError(f"{checkpoints} is not a folder: the run keeps its states there; move it away, or choose "
                        f"another run folder")


def refuse_run_links(run_dir: Path) -> None:
    """Neither the run folder itself nor any name the run writes or a resume reads (``run_config.yaml``, the
    states) is a symbolic link: called before a resume reads the folder's config, and again before any write."""
    if run_dir.is_symlink():
        missing = why_missing(run_dir, "folder")
        if missing is not None:
            raise UserError(f"run folder {run_dir}: {missing}")
        raise UserError(f"run folder {run_dir} is a symbolic link (to {os.readlink(run_dir)}): refusing to read "
                        f"or write a run through it; give the folder itself")
    if run_dir.is_dir():
        _refuse_links(run_dir)


def check_resume_folder(run_dir: Path) -> None:
    """What ``--resume DIR`` needs before it reads ``DIR/run_config.yaml``: a folder, reached through no link, with
    no link at the run's own names (the marker and the rest are checked with the run, under its lock)."""
    refuse_run_links(run_dir)
    if not run_dir.is_dir():
        raise UserError(f"cannot resume: {run_dir}: {why_missing(run_dir, 'folder') or 'not a folder'}")


def _check_state(run_dir: Path, resume: bool) -> None:
    marker = None
    refuse_run_links(run_dir)
    if run_dir.is_dir():
        marker = read_marker(run_dir)           # a file of the user's named like it is refused here
    if resume:
        check_resume_folder(run_dir)
        if marker is None:
            raise UserError(f"cannot resume: {run_dir} is not a training run's folder (no {RUN_MARKER} in it)")
        if _finished(run_dir, marker):
            results = ", ".join(str(run_dir / n) for n in RESULTS if (run_dir / n).is_file()) or "none"
            raise RunFinished(f"run folder {run_dir} holds a finished run: nothing to resume, nothing changed "
                              f"(results: {results}); to train further, start a new run in another folder "
                              f"from its model (--set model.weights=...)")
        _refuse_legacy(run_dir, marker)
        _refuse_unrecorded(run_dir, marker)
        return
    if run_dir.exists() and not run_dir.is_dir():
        raise UserError(f"run folder {run_dir} is an existing file: choose a folder")
    taken = [name for name in RUN_FILES if (run_dir / name).exists()]
    if marker is not None and not _finished(run_dir, marker):
        _refuse_legacy(run_dir, marker)
    if marker is not None and set(taken) <= {RUN_MARKER, RUN_CONFIG, "train.log"}:
        _refuse_unrecorded(run_dir, marker)
        return      # a run of ours that failed before its first saved state: starting again is harmless
    if marker is not None and _finished(run_dir, marker):
        raise UserError(f"{run_dir} already holds a run that finished: choose another run folder")
    if taken:
        what = "a run" if marker is not None else f"files named like the run's own ({', '.join(taken[:3])})"
        raise UserError(f"{run_dir} already holds {what}: resume it (--resume) or choose another run folder")
    claim_output(run_dir / RUN_MARKER)    # writable, nothing in the way


def _finished(run_dir: Path, marker: Marker) -> bool:
    """The marker says so, or the run wrote its report, its last file (it was killed before marking its end)."""
    return marker.finished or ("report.h5" in marker.written and (run_dir / "report.h5").is_file())


def _refuse_legacy(run_dir: Path, marker: Marker) -> None:
    """An unfinished run from before the ledger: which of its folder's files it wrote is unknown (a user's
    ``pruned.pth`` would pass for the run's), so it is neither resumed nor started over; its models stay usable."""
    if not marker.legacy:
        return
    names = [n for n in RUN_FILES if n != RUN_MARKER and os.path.lexists(run_dir / n)]
    if names:
        models = [n for n in RUN_FILES if n.endswith(".pth") and (run_dir / n).is_file()]
        model = models[-1] if models else "model"
        raise UserError(f"{run_dir} already holds a run of an earlier version of this tool, whose {RUN_MARKER} does "
                        f"not record the files it wrote: it cannot be resumed or restarted safely, nothing changed; "
                        f"resume it with that version, or train on from its {model} in a new run folder "
                        f"(--set model.weights=...)")


def _refuse_unrecorded(run_dir: Path, marker: Marker) -> None:
    """A file at one of the run's names that the run did not write is the user's: never replaced nor read."""
    names = [n for n in RUN_FILES if n not in (RUN_MARKER, "checkpoints")]     # the folder: the states in it
    names += [f"checkpoints/{stage}_last.pth" for stage in STATES]
    name = unrecorded(run_dir, marker, names)
    if name is not None:
        raise UserError(f"{run_dir / name} was not written by this run (its {RUN_MARKER} does not record it): "
                        f"refusing to replace it or take it for the run's own; move it out of the run folder")


def _in_use(run_dir: Path, pid: int | None) -> UserError:
    who = f" (pid {pid})" if pid is not None else ""
    return UserError(f"run folder {run_dir} is in use by another run{who}: wait for it to end, or choose "
                     f"another run folder")


# -- holding the folder ------------------------------------------------------------------------------------
@contextlib.contextmanager
def hold_run_dir(run_dir: Path, resume: bool) -> Iterator[None]:
    """Hold the folder's lock while the block runs (released at exit; the kernel releases it if the process is
    killed), re-checking under it what ``check_run_dir`` saw: another run may have started or ended since."""
    lock = contextlib.ExitStack()
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
        lock.enter_context(folder_lock(run_dir, lambda pid: _in_use(run_dir, pid)))
    except OSError as e:
        raise UserError(f"cannot use run folder {run_dir}: {e.strerror or e}") from None
    with lock:
        _check_state(run_dir, resume)
        before = None if resume else _present(run_dir)
        try:
            yield
        except UserError:
            if before is not None:
                _forget_refused_start(run_dir, before)
            raise


def _present(run_dir: Path) -> set[str]:
    return {name for name in RUN_FILES if os.path.lexists(run_dir / name)}


def _forget_refused_start(run_dir: Path, before: set[str]) -> None:
    """A new run refused before it wrote anything but its marker (its data is read before the marker, but a
    stage may still refuse its input): remove that marker, so a refused command leaves the user's folder as it was. Only the marker this run
    wrote, recording nothing but its log, and only where nothing else of the run's appeared."""
    if _present(run_dir) - before != {RUN_MARKER}:
        return
    with contextlib.suppress(OSError, UserError):
        marker = read_marker(run_dir)
        if marker is not None and marker.written <= {"train.log"} and not marker.finished:
            (run_dir / RUN_MARKER).unlink()


def forget_refused_run(run_dir: Path) -> None:
    """Remove the folder a new run created and was refused in before it wrote anything but its marker: a refused
    ``train`` (bad data, a bad teacher ...) into the default, time-stamped run folder would otherwise leave one
    empty folder behind per try. Anything else in the folder (another run that took it since, a file of the
    user's) keeps it as it is."""
    with contextlib.suppress(OSError, UserError):
        if [p.name for p in run_dir.iterdir()] == [RUN_MARKER]:
            marker = read_marker(run_dir)
            if marker is None or not marker.written <= {"train.log"}:
                return
            (run_dir / RUN_MARKER).unlink()
        run_dir.rmdir()                 # only an empty folder


def start_marker(run_dir: Path) -> None:
    """Mark the folder as a new run's (a resume needs it): its log is the first file it writes."""
    write_marker(run_dir, Marker(frozenset({"train.log"})))


def finish_marker(run_dir: Path) -> None:
    """Mark the run as ended: a resume of it then changes nothing."""
    marker = read_marker(run_dir) or Marker()
    write_marker(run_dir, Marker(marker.written, finished=True))
