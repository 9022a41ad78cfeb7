"""Refuse before you touch (issue 29): a plan the network cannot have, or that prunes nothing, is refused by
``train`` before its first write (it used to leave ``dense.pth``, which blocked a corrected restart in that
folder); ``prune`` onto a disk without room for its file is refused before the reconstruction. Each: one line,
exit 2, every file the user had unchanged."""
from __future__ import annotations

import json
import shutil
from collections import namedtuple
from pathlib import Path

import pytest
import yaml

import core.io.space as space
import core.recover.reconstruct as reconstruct_module
from core.cli import main
from core.io.demo import demo_clip_dir
from tests.train_support import tiny_model_file
from tests.trust_support import checksums, refused, refused_measured

Usage = namedtuple("Usage", "total used free")


@pytest.fixture(scope="module")
def dense_file(tmp_path_factory) -> Path:
    return tiny_model_file(tmp_path_factory.mktemp("dense") / "dense.pth")


def _config(folder: Path, dense: Path) -> Path:
    """A prune-stage run (weight criterion, no reconstruction) on the demo clip: seconds when it is allowed."""
    demo = demo_clip_dir()
    raw = {"stages": ["prune"],
           "model": {"weights": str(dense), "variant": "basicvsr-uni", "num_feat": 8, "num_block": 1},
           "data": {"kind": "lr-only", "root": None, "lr_root": str(demo / "BIx4"), "clip_length": 3,
                    "patch_size": 16, "batch_size": 1, "num_workers": 0},
           "sir": {"criterion": "l1", "ratio": 0.5, "align": 1}, "prune": {"reconstruct": False},
           "runtime": {"device": "cpu"}}
    path = folder / "config.yaml"
    path.write_text("# my commented config\n" + yaml.safe_dump(raw))
    return path


@pytest.mark.parametrize("setting, pattern", [
    ("sir.ratio=1e-300", r"sir plan: ratio 1e-300 of this network's 160 prunable units is no unit: it prunes nothing"),
    ("sir.min_keep=100", r"sir plan: min_keep 100, locks and caps leave no unit any layer may lose \(the widest "
                         r"layer has 64 units\)"),
    ("sir.widths={upconv1: 500}", r"sir plan: layer 'upconv1': width 500 is outside 1\.\.8"),
    ("sir.widths={upconv1: 8, upconv2: 64}", r"sir plan: the plan's widths keep every unit of every layer"),
    ("sir.widths={fusion: 4}", r"sir plan: no prunable layer named 'fusion'"),
    ("sir.lock=[forward.0.in, forward.0.mid, forward.0.out, upconv1, upconv2, conv_hr]",
     r"sir plan: min_keep 1, locks and caps leave no unit any layer may lose"),
])
def test_a_plan_the_network_cannot_have_is_refused_before_the_first_write(tmp_path, capsys, dense_file, setting,
                                                                            pattern):
    """Nothing is written (no run folder is left), and the corrected run then works in that very folder."""
    config, run = _config(tmp_path, dense_file), tmp_path / "run"
    before = checksums(tmp_path, dense_file)
    refused(capsys, ["train", config, "--run-dir", run, "--set", setting], pattern)
    assert checksums(tmp_path, dense_file) == before and not run.exists()
    assert main(["train", str(config), "--run-dir", str(run)]) == 0       # no dense.pth blocks the restart
    assert (run / "pruned.pth").is_file()


def test_a_refused_plan_writes_nothing_of_the_run_into_a_users_folder(tmp_path, capsys, dense_file):
    """The user's own folder keeps their files byte for byte and gets no dense.pth or run_config.yaml."""
    config, run = _config(tmp_path, dense_file), tmp_path / "mine"
    run.mkdir()
    (run / "notes.txt").write_text("mine")
    before = checksums(tmp_path, dense_file)
    refused(capsys, ["train", config, "--run-dir", run, "--set", "sir.min_keep=64"], r"sir plan: min_keep 64")
    after = checksums(tmp_path, dense_file)
    assert before.items() <= after.items()
    assert not {"dense.pth", "run_config.yaml", "checkpoints"} & {p.name for p in run.iterdir()}
    assert main(["train", str(config), "--run-dir", str(run)]) == 0
    assert (run / "pruned.pth").is_file() and (run / "notes.txt").read_text() == "mine"


def test_a_plan_file_whose_widths_do_not_fit_is_refused_before_the_first_write(tmp_path, capsys, dense_file):
    config = _config(tmp_path, dense_file)
    plan = tmp_path / "plan.json"
    plan.write_text(json.dumps({"settings": {"ratio": 0.5, "criterion": "l1", "widths": {"conv_hr": 65}}}))
    before = checksums(tmp_path, dense_file)
    refused(capsys, ["train", config, "--plan", plan, "--run-dir", tmp_path / "run"],
            r"sir plan: layer 'conv_hr': width 65 is outside 1\.\.64")
    assert checksums(tmp_path, dense_file) == before and not (tmp_path / "run").exists()


@pytest.mark.parametrize("free", [0, 1 << 20])
def test_prune_onto_a_full_disk_is_refused_before_the_reconstruction(tmp_path, capsys, monkeypatch, dense_file,
                                                                      free):
    monkeypatch.setattr(space.shutil, "disk_usage", lambda p: Usage(1 << 30, (1 << 30) - free, free))
    monkeypatch.setattr(reconstruct_module, "reconstruct",
                        lambda *a, **k: pytest.fail("the reconstruction ran before the refusal"))
    (tmp_path / "out").mkdir()
    before = checksums(tmp_path, dense_file)
    refused(capsys, ["prune", dense_file, "--ratio", "0.5", "--criterion", "l1", "--out", tmp_path / "out" / "p.pth"],
            rf"cannot write .*p\.pth: it needs about \d+\.\d MiB and the file system at /\S* has "
            rf"{free / 2**20:.1f} MiB free; nothing was done")
    assert checksums(tmp_path, dense_file) == before


def test_prune_with_room_is_not_refused(tmp_path, dense_file):
    assert shutil.disk_usage(tmp_path).free > space.model_file_bytes(torch_model(dense_file))
    assert main(["prune", str(dense_file), "--ratio", "0.5", "--criterion", "l1", "--no-reconstruct",
                 "--out", str(tmp_path / "p.pth")]) == 0


def torch_model(path: Path):
    from core.io.checkpoint import load_checkpoint

    return load_checkpoint(path).model


def test_a_full_disk_under_the_training_log_is_one_line_naming_the_disk(tmp_path, capsys, monkeypatch, dense_file):
    """The tester's traceback: train.log's append on a full disk. Now the run ends on one error line naming the disk
    (after its progress lines), exit 2, with no half-written file of its own left (states and models are staged and
    moved into place whole)."""
    import errno
    import os
    import re

    import core.train.logfile as logfile

    def full(path, text):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))

    monkeypatch.setattr(logfile, "append_text", full)
    config, run = _config(tmp_path, dense_file), tmp_path / "run"
    before = checksums(config, dense_file)
    assert main(["train", str(config), "--run-dir", str(run)]) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and [l for l in err.splitlines() if l.startswith("error:")] == [err.splitlines()[-1]]
    assert re.search(r"^error: cannot write .*run/train\.log: the disk is full: no space .*left on the file system "
                     r"at /", err.splitlines()[-1]), err
    assert checksums(config, dense_file) == before
    assert not [p for p in run.rglob("*") if ".partial-" in p.name]


# -- malformed plan metadata in a model file (info, export --format h5) ----------------------------------------
@pytest.fixture(scope="module")
def raw_cut(tmp_path_factory, dense_file) -> Path:
    out = tmp_path_factory.mktemp("cut") / "cut.pth"
    assert main(["prune", str(dense_file), "--ratio", "0.5", "--criterion", "l1", "--no-reconstruct",
                 "--out", str(out)]) == 0
    return out


def _with_plan(cut: Path, folder: Path, plan) -> Path:
    from core.io.checkpoint import load_checkpoint, save_model

    loaded = load_checkpoint(cut)
    return save_model(loaded.model, folder / "edited.pth", {**loaded.meta, "plan": plan(loaded.meta["plan"])})


@pytest.mark.parametrize("command", [["info"], ["export", "--format", "h5"]])
@pytest.mark.parametrize("plan, pattern", [
    (lambda p: "garbage", r"the plan stored in its metadata is damaged \(a str, not a plan\)"),
    (lambda p: [1, 2], r"the plan stored in its metadata is damaged \(a list, not a plan\)"),
    (lambda p: {"settings": 5}, r"the stored plan is damaged or from an older version"),
    (lambda p: {**p, "layers": [{"name": 1}]}, r"the stored plan is damaged or from an older version"),
    (lambda p: {**p, "spec": "x"}, r"the stored plan is damaged or from an older version \(spec is not a mapping\)"),
    (lambda p: {**p, "layers": [{**p["layers"][0], "kept_indices": [99]}, *p["layers"][1:]]},
     r"the stored plan is damaged or from an older version \(layer forward\.0\.in: kept indices out of range\)"),
])
def test_a_damaged_stored_plan_is_one_line(tmp_path, capsys, raw_cut, command, plan, pattern):
    model = _with_plan(raw_cut, tmp_path, plan)
    before = checksums(tmp_path)
    argv = [command[0], model, *command[1:], *(["--out", tmp_path / "r.h5"] if command[0] == "export" else [])]
    refused(capsys, argv, rf"edited\.pth: {pattern}")
    assert checksums(tmp_path) == before


def test_an_intact_stored_plan_is_still_shown_and_exported(tmp_path, capsys, raw_cut):
    assert main(["info", str(raw_cut), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["plan_settings"]["criterion"] == "l1"
    assert main(["export", str(raw_cut), "--format", "h5", "--out", str(tmp_path / "r.h5")]) == 0


# -- output names near NAME_MAX ---------------------------------------------------------------------------------
@pytest.mark.parametrize("length", [234, 251, 255, 300])
def test_an_output_name_too_long_for_its_temporaries_is_one_line_before_any_work(tmp_path, capsys, monkeypatch,
                                                                                   dense_file, length):
    """``.NAME.partial-XXXXXXXX.pth`` adds 22 bytes to NAME: a 250-byte name used to end in an OSError traceback."""
    monkeypatch.setattr(reconstruct_module, "reconstruct", lambda *a, **k: pytest.fail("work before the refusal"))
    name = "é" * ((length - 4) // 2) + "a" * ((length - 4) % 2) + ".pth"       # bytes, not characters, count
    assert len(name.encode()) == length
    before = checksums(tmp_path, dense_file)
    refused(capsys, ["prune", dense_file, "--ratio", "0.5", "--criterion", "l1", "--out", tmp_path / name],
            rf"an output name of {length} bytes is too long: the file system takes names of up to 255 bytes and "
            rf"the tool's temporary file beside it adds 22; give a name of at most 233 bytes")
    assert checksums(tmp_path, dense_file) == before


def test_the_longest_name_allowed_is_written(tmp_path, dense_file, raw_cut):
    name = "a" * 229 + ".pth"
    assert main(["prune", str(dense_file), "--ratio", "0.5", "--criterion", "l1", "--no-reconstruct",
                 "--out", str(tmp_path / name)]) == 0
    report = "r" * 231 + ".h5"
    assert main(["export", str(raw_cut), "--format", "h5", "--out", str(tmp_path / report)]) == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == [name, report]


# -- torch's warnings before the one line ----------------------------------------------------------------------
@pytest.mark.parametrize("layout", ["sparse_csr", "sparse_csc", "sparse_bsr", "sparse_coo"])
@pytest.mark.parametrize("command", ["info", "sr"])
def test_a_sparse_checkpoint_is_one_line_with_no_torch_warning_before_it(tmp_path, layout, command):
    """Run in a fresh process: pytest would swallow the warnings torch prints while loading sparse CSR data."""
    import torch

    from tests.helpers import tiny_model

    dense = torch.eye(4)
    sparse = {"sparse_csr": dense.to_sparse_csr, "sparse_csc": dense.to_sparse_csc, "sparse_coo": dense.to_sparse,
              "sparse_bsr": lambda: dense.to_sparse_bsr((2, 2))}[layout]()
    state = {**tiny_model("basicvsr-uni", 8, 1).state_dict(), "extra": sparse}
    path = tmp_path / "sparse.pth"
    torch.save(state, path)
    before = checksums(tmp_path)
    argv = [command, path, *([demo_clip_dir() / "BIx4", tmp_path / "out"] if command == "sr" else [])]
    refused_measured(argv, rf"sparse\.pth: tensor 'extra' is stored as {layout}, not as the dense tensor")
    assert checksums(tmp_path) == before


def test_a_plan_that_align_rounds_to_nothing_leaves_no_dense_file_behind(tmp_path, capsys, dense_file):
    """Only ``align``'s rounding depends on the scores, so SIR refuses it when it has them; it used to write
    ``dense.pth`` first, and that file then refused every corrected restart in the folder."""
    config, run = _config(tmp_path, dense_file), tmp_path / "run"
    settings = ["--set", "stages=[sir]", "--set", "sir.ratio=0.01", "--set", "sir.align=8", "--set",
                "sir.distill.sr_weight=1.0"]
    assert main(["train", str(config), "--run-dir", str(run), *settings]) == 2
    assert "the plan prunes no unit of this network" in capsys.readouterr().err.splitlines()[-1]
    assert not (run / "dense.pth").exists()
    assert main(["train", str(config), "--run-dir", str(run)]) == 0        # the corrected run, in the same folder
