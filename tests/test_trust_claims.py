"""A model's state judged by measuring (issue 29, item 7): ``sr`` used to drop its raw-cut warning when a model
file's metadata was edited to say "recovered" or "trained". It now measures a pruned network on the first frames
of the clip (LR consistency against bicubic upscaling) unless the file already calls it a raw cut."""
from __future__ import annotations

import json

import pytest

import core.recover.measured as measured
from core.cli import main
from core.io.checkpoint import load_checkpoint, save_model
from core.io.demo import demo_clip_dir
from core.recover.status import recovery_status
from tests.helpers import dense_and_raw_cut
from tests.trust_support import checksums

LR = demo_clip_dir() / "BIx4"


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    return dense_and_raw_cut(tmp_path_factory.mktemp("models"))


def _claiming(cut, folder, claim: str):
    loaded = load_checkpoint(cut)
    meta = dict(loaded.meta)
    if claim in ("trained", "both"):
        meta.pop("training")
        meta["stages"] = ["sir", "finetune"]
    if claim in ("recovered", "both"):
        meta["reconstruction"] = {"method": "layerwise", "recovered": True, "calib": "my holiday", "frames": 8}
    return save_model(loaded.model, folder / f"{claim}.pth", meta)


@pytest.mark.parametrize("claim", ["recovered", "trained", "both"])
def test_sr_warns_about_a_raw_cut_whose_file_claims_otherwise(files, tmp_path, capsys, claim):
    model = _claiming(files[1], tmp_path, claim)
    assert not recovery_status(load_checkpoint(model).meta, True).raw_cut      # the file's word alone passes
    before = checksums(model, LR)
    capsys.readouterr()
    assert main(["sr", str(model), str(LR), str(tmp_path / "out"), "--max-frames", "3", "--json"]) == 0
    captured = capsys.readouterr()
    (line,) = [l for l in captured.err.splitlines() if l.startswith("warning:")]
    assert str(model) in line and "measured on LR frames" in line and "worse than bicubic" in line
    assert json.loads(captured.out)["raw_cut"] is True
    assert checksums(model, LR) == before


@pytest.mark.parametrize("which", ["dense", "cut"])
def test_no_measurement_where_the_file_tells_against_itself_or_is_dense(files, tmp_path, capsys, monkeypatch,
                                                                         which):
    """A dense network is not a cut; a file that says raw cut is believed (it can only lose by the claim)."""
    monkeypatch.setattr(measured, "margin_over_bicubic", lambda *a: pytest.fail("measured for nothing"))
    model = files[0] if which == "dense" else files[1]
    capsys.readouterr()
    assert main(["sr", str(model), str(LR), str(tmp_path / "out"), "--max-frames", "2", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["raw_cut"] is (which == "cut")


def test_a_measurement_that_is_no_number_counts_as_worse(files):
    from dataclasses import replace

    status = recovery_status(load_checkpoint(files[1]).meta, True)
    trained = replace(status, trained=True)
    assert not trained.raw_cut
    assert replace(trained, measured_margin=float("nan")).raw_cut
    assert replace(trained, measured_margin=-0.5).raw_cut and not replace(trained, measured_margin=0.5).raw_cut


@pytest.mark.parametrize("claim", ["recovered", "trained"])
def test_export_judges_a_cut_by_measuring_too(files, tmp_path, claim):
    """``export`` (fp32: no frames of the user's) measures on the bundled demo clip's first frames; the file it
    writes keeps its metadata, only the judgement changes."""
    from core.deploy.command import export_file

    model = _claiming(files[1], tmp_path, claim)
    seen = []
    export_file(model, "model", tmp_path / "copy.pth", on_loaded=seen.append)
    (status,) = seen
    assert status.raw_cut and status.measured_below_bicubic


def test_an_h5_report_is_not_measured(files, tmp_path, monkeypatch):
    from core.deploy.command import export_file

    monkeypatch.setattr(measured, "margin_over_bicubic", lambda *a: pytest.fail("a report runs no network"))
    seen = []
    export_file(_claiming(files[1], tmp_path, "trained"), "h5", tmp_path / "r.h5", on_loaded=seen.append)
    assert seen[0].measured_margin is None
