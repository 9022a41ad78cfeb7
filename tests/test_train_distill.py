"""Distillation from the dense network: every step's hidden states, the teacher loss, LR-only data (a video or a
folder of frames, no GT), the config keys, and SIR + finetune end to end (also under torchrun)."""
from __future__ import annotations

import copy
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from core.cli import main as cli_main
from core.data.lr_clips import load_lr_clips
from core.data.patches import LRPatches, PatchSettings
from core.errors import ConfigError, DatasetError
from core.events import Progress
from core.io.checkpoint import load_checkpoint, save_model
from core.io.demo import demo_clip_dir
from core.io.frames import read_clip, write_video
from core.models.basicvsr import BasicVSR
from core.models.spec import dense_spec
from core.ssl import compute_scores, make_plan, prune_to_plan
from core.train.config import PATH_KEYS
from core.train.config_load import load_config
from core.train.losses import LossWeights, distill_loss
from core.train.pipeline import run_training
from core.train.stages import sir_iterations
from tests.train_support import tiny_config, tiny_model_file

ROOT = Path(__file__).resolve().parents[1]
QUICK_DISTILL = ROOT / "resources" / "configs" / "quick_distill.yaml"
TINY_YAML = ROOT / "resources" / "configs" / "tiny.yaml"
DISTILL = {"sr_weight": 1.0, "hidden_weight": 1.0}


@pytest.fixture(scope="module")
def lr_video(tmp_path_factory) -> Path:
    """A 10-frame H.264 video of the demo clip's LR frames (64x112, HxW): LR data with no GT anywhere near it."""
    frames = read_clip(demo_clip_dir() / "BIx4").frames[:10]
    return write_video(frames, tmp_path_factory.mktemp("video") / "holiday.mp4")


def _net(variant: str, seed: int = 0) -> BasicVSR:
    torch.manual_seed(seed)
    return BasicVSR(dense_spec(variant, 8, 1)).eval()


def _clip(t: int = 4, seed: int = 1) -> torch.Tensor:
    return torch.rand(1, t, 3, 16, 20, generator=torch.Generator().manual_seed(seed))


def _lr_only(lr_root: Path, **sections) -> dict:
    data = {"kind": "lr-only", "root": None, "lr_root": str(lr_root)}
    data.update(sections.pop("data", {}))
    return dict(data=data, **sections)


# -- every recurrent step's hidden states ---------------------------------------------------------
@pytest.mark.parametrize("variant", ["basicvsr", "basicvsr-uni"])
@pytest.mark.parametrize("grad", [False, True])
def test_every_step_hidden_states_equal_the_step_by_step_values(variant, grad):
    model, x = _net(variant), _clip()
    t = x.shape[1]
    with torch.set_grad_enabled(grad):
        out, hidden = model(x, return_hidden="all")
        plain = model(x)
        final = model(x, return_hidden=True)[1]
    assert torch.equal(out, plain)                      # the default output is untouched
    assert sorted(hidden) == sorted(final)
    assert all(len(states) == t for states in hidden.values())
    assert torch.equal(hidden["forward"][-1], final["forward"])
    with torch.no_grad():
        h_b = [None] * t
        if model.bidirectional:
            assert torch.equal(hidden["backward"][0], final["backward"])
            h = None
            for i in range(t - 1, -1, -1):
                h = model.backward_step(x[:, i], None if i == t - 1 else x[:, i + 1], h)
                h_b[i] = h
                torch.testing.assert_close(hidden["backward"][i], h, atol=1e-5, rtol=0)
        h = None
        for i in range(t):
            sr, h = model.forward_step(x[:, i], None if i == 0 else x[:, i - 1], h, h_b[i])
            torch.testing.assert_close(hidden["forward"][i], h, atol=1e-5, rtol=0)
            torch.testing.assert_close(out[:, i], sr, atol=1e-5, rtol=0)


def test_return_hidden_refuses_other_values():
    with pytest.raises(ValueError, match="return_hidden"):
        _net("basicvsr-uni")(_clip(), return_hidden="final")


# -- the teacher loss ----------------------------------------------------------------------------
@pytest.mark.parametrize("variant", ["basicvsr", "basicvsr-uni"])
def test_distill_loss_is_zero_for_the_teacher_itself_and_positive_otherwise(variant):
    teacher, x = _net(variant), _clip()
    w = LossWeights(gt=0.0, sr=1.0, hidden=1.0, tf=1.0)
    same, terms = distill_loss(copy.deepcopy(teacher).train(), teacher, x, None, w)
    assert set(terms) == {"sr", "hidden", "tf"}
    # Charbonnier's ε = 1e-6 is the floor of the SR term
    assert float(same.detach()) < 2e-6 and float(terms["hidden"].detach()) < 1e-10
    pruned = prune_to_plan(teacher, make_plan(compute_scores(teacher, "l1"), 0.5)).train()
    loss, terms = distill_loss(pruned, teacher, x, None, w)
    assert all(float(v.detach()) > 1e-6 for v in terms.values()), terms
    loss.backward()
    assert all(p.grad is None for p in teacher.parameters())         # the teacher carries no gradient
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in pruned.parameters())


def test_hidden_term_is_the_mean_over_every_step_of_both_branches():
    teacher, x = _net("basicvsr"), _clip(t=5)
    student = _net("basicvsr", seed=4)
    with torch.no_grad():
        terms = distill_loss(student, teacher, x, None, LossWeights(gt=0.0, sr=1.0, hidden=1.0, tf=1.0))[1]
        hs, ht = student(x, return_hidden="all")[1], teacher(x, return_hidden="all")[1]
    per_step = {k: [float(((a - b) ** 2).mean()) for a, b in zip(hs[k], ht[k])] for k in hs}
    assert float(terms["hidden"]) == pytest.approx(np.mean([np.mean(v) for v in per_step.values()]), rel=1e-5)
    final = np.mean([per_step["backward"][0], per_step["forward"][-1]])      # TF: the final states only
    assert float(terms["tf"]) == pytest.approx(final, rel=1e-5)


def test_gt_and_teacher_terms_add_with_their_weights():
    teacher, x = _net("basicvsr-uni"), _clip()
    student = _net("basicvsr-uni", seed=3)
    gt = torch.rand(1, 4, 3, 64, 80, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        total, terms = distill_loss(student, teacher, x, gt, LossWeights(gt=0.5, sr=2.0, hidden=3.0))
    expect = 0.5 * terms["pix"] + 2.0 * terms["sr"] + 3.0 * terms["hidden"]
    assert float(total) == pytest.approx(float(expect), rel=1e-6)


# -- LR-only data --------------------------------------------------------------------------------
def test_lr_patches_from_a_video_and_a_frame_folder(lr_video):
    settings = PatchSettings(clip_length=3, patch_size=16)
    (video,) = load_lr_clips(lr_video, 64)
    assert video.frames == 10 and video.size == (64, 112) and video.decoded is not None
    (folder,) = load_lr_clips(demo_clip_dir() / "BIx4", 64)
    assert folder.frames == 24 and folder.files is not None and folder.decoded is None   # read as needed
    for clips in ([video], [folder]):
        ds = LRPatches(clips, settings, seed=5)
        lr, gt = ds[7]
        assert lr.shape == (3, 3, 16, 16) and lr.dtype == torch.uint8 and gt.numel() == 0 and not ds.has_gt
        assert torch.equal(ds[7][0], lr)                                 # drawn by index: reproducible


def test_video_over_the_memory_limit_is_refused_before_training(tmp_path):
    gt_frames = read_clip(demo_clip_dir() / "GT").frames[:12]           # 12 x 256x448 (HxW): 4 MiB decoded
    video = write_video(gt_frames, tmp_path / "big.mp4")
    weights = tiny_model_file(tmp_path / "dense.pth")
    cfg = tiny_config(weights, **_lr_only(video, data={"lr_cache_mb": 1}, sir={"distill": DISTILL},
                                          finetune={"distill": DISTILL}))
    with pytest.raises(DatasetError, match=r"big\.mp4: its 12 frames \(4 MiB\) of 256x448 \(HxW\) do not fit in "
                                           r"data\.lr_cache_mb = 1 MiB") as err:
        run_training(cfg, tmp_path / "run")
    assert "\n" not in str(err.value)
    assert not (tmp_path / "run" / "checkpoints").exists()


# -- end to end ----------------------------------------------------------------------------------
def test_distillation_runs_from_a_video_without_gt(tmp_path, lr_video):
    weights = tiny_model_file(tmp_path / "dense.pth")
    cfg = tiny_config(weights, **_lr_only(lr_video, sir={"distill": DISTILL},
                                          finetune={"distill": DISTILL, "tf_weight": 0.0}))
    events = []
    res = run_training(cfg, tmp_path / "run", events.append)
    assert res.pruned_model.is_file() and res.best_model is None          # no GT: no validation
    progress = [e for e in events if isinstance(e, Progress)]
    for stage in ("sir", "finetune"):
        terms = [e.losses for e in progress if e.stage == stage]
        assert terms and all(set(t) == {"loss", "sr", "hidden"} for t in terms), terms
        assert all(np.isfinite(v) for t in terms for v in t.values())
    sir_terms = [e.losses for e in progress if e.stage == "sir"]
    assert sir_terms[0]["loss"] < 1e-4       # SIR starts from the teacher itself: nothing to distil yet
    assert "Charbonnier to the teacher's SR frames" in (tmp_path / "run" / "train.log").read_text()
    # the distilled network stays closer to the teacher than zero-shot pruning of the same network
    teacher = load_checkpoint(weights).model.eval()
    x = torch.from_numpy(read_clip(lr_video).frames[:4]).permute(0, 3, 1, 2).float().div(255)[None, :, :, :32, :32]
    zero_shot = prune_to_plan(teacher, make_plan(compute_scores(teacher, "l1"), 0.5))
    with torch.no_grad():
        target = teacher(x)
        err = {name: float((m.eval()(x) - target).abs().mean()) for name, m in
               (("distilled", res.model), ("zero-shot", zero_shot))}
    print(f"mean |SR - teacher SR|: {err}")
    assert err["distilled"] < err["zero-shot"]


def test_finetune_alone_distils_from_a_given_teacher_on_a_frame_folder_and_validates_on_gt(tmp_path):
    teacher_file = tiny_model_file(tmp_path / "teacher.pth")
    teacher = load_checkpoint(teacher_file).model
    student = prune_to_plan(teacher, make_plan(compute_scores(teacher, "l1"), 0.5))
    student_file = save_model(student, tmp_path / "student.pth")
    demo = demo_clip_dir()
    cfg = tiny_config(student_file, **_lr_only(demo / "BIx4", stages=["finetune"],
                                                finetune={"distill": DISTILL, "tf_weight": 0.0, "iterations": 4,
                                                          "teacher": str(teacher_file)},
                                                val={"root": str(demo / "GT"), "lr_root": str(demo / "BIx4"),
                                                     "max_frames": 3, "crop": 16, "every": 2}))
    res = run_training(cfg, tmp_path / "run")      # trains on LR frames only; GT is read by validation alone
    assert res.pruned_model.is_file() and res.best_model.is_file()
    assert len(res.metrics["val_psnr_history"]) == 2


def test_teacher_of_another_width_is_refused_for_hidden_states(tmp_path):
    teacher_file = tiny_model_file(tmp_path / "teacher.pth", num_feat=16)
    student_file = tiny_model_file(tmp_path / "student.pth")
    cfg = tiny_config(student_file, stages=["finetune"],
                      finetune={"distill": {"hidden_weight": 1.0}, "tf_weight": 0.0, "teacher": str(teacher_file)})
    with pytest.raises(ConfigError, match=r"16.* 8\b") as err:        # refused before any training
        run_training(cfg, tmp_path / "run")
    assert "\n" not in str(err.value) and not (tmp_path / "run" / "checkpoints").exists()


CHILD = textwrap.dedent("""
    import os, sys
    import torch
    from core.train.pipeline import run_training
    from tests.train_support import tiny_config
    distill = {"sr_weight": 1.0, "hidden_weight": 1.0}
    cfg = tiny_config(sys.argv[2], data={"batch_size": 2, "kind": "lr-only", "root": None, "lr_root": sys.argv[4]},
                      sir={"delta": 0.05, "t1": 1, "tau": 0.1, "stabilize_iters": 1, "distill": distill},
                      finetune={"iterations": 3, "distill": distill})
    res = run_training(cfg, sys.argv[1])
    torch.save(res.model.state_dict(), os.path.join(sys.argv[3], f"rank{os.environ['RANK']}.pt"))
""")


def test_two_process_gloo_distillation(tmp_path, lr_video):
    weights = tiny_model_file(tmp_path / "dense.pth")
    script = tmp_path / "child.py"
    script.write_text(CHILD)
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
           str(script), str(tmp_path / "run"), str(weights), str(tmp_path), str(lr_video)]
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    a, b = torch.load(tmp_path / "rank0.pt"), torch.load(tmp_path / "rank1.pt")
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert (tmp_path / "run" / "pruned.pth").is_file()


# -- the config ----------------------------------------------------------------------------------
def test_no_gt_and_no_distillation_is_one_line_exit_2(tmp_path, capsys, lr_video):
    cfg = yaml.safe_load(TINY_YAML.read_text())
    cfg["stages"] = ["sir", "finetune"]
    cfg["data"].update(kind="lr-only", root=None, lr_root=str(lr_video))
    cfg["val"] = {}
    path = tmp_path / "nogt.yaml"
    path.write_text(yaml.safe_dump(cfg))
    assert cli_main(["train", str(path), "--run-dir", str(tmp_path / "run")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("error: sir: data.kind = lr-only has no GT and sir.distill is off")
    assert not (tmp_path / "run").exists()                            # refused before any work


@pytest.mark.parametrize("overrides, message", [
    (["finetune.distill.sr_weight=-1"], r"finetune\.distill\.sr_weight = -1\.0 is out of range"),
    (["sir.distill.hidden_weight=much"], r"sir\.distill\.hidden_weight must be a finite number"),
    (["sir.distill.sr_wieght=1"], r"unknown config key sir\.distill\.sr_wieght"),
    (["sir.distill=1"], r"sir\.distill must be a mapping"),
    (["data.lr_cache_mb=0"], r"data\.lr_cache_mb = 0 is out of range"),
    (["data.kind=lr-only", "data.root=null", "data.lr_root=null"], r"data\.lr_root is needed for data\.kind = lr-only"),
    (["data.kind=lr-only", "data.lr_root=x.mp4"], r"data\.root is for datasets with GT"),
    (["data.kind=lr-only", "data.root=null", "data.lr_root=x.mp4", "data.lr=BI", "sir.distill.sr_weight=1",
      "finetune.distill.sr_weight=1"], r"data\.lr = BI makes LR frames from GT"),
    (["data.kind=lr-only", "data.root=null", "data.lr_root=x.mp4", "stages=[sir]", "sir.distill.sr_weight=1",
      "sir.distill.gt_weight=1"], r"sir\.distill\.gt_weight = 1\.0: data\.kind = lr-only has no GT"),
    (["data.kind=lr-only", "data.root=null", "data.lr_root=x.mp4", "sir.distill.sr_weight=1",
      "finetune.distill.sr_weight=1"], r"the pretrain stage trains against GT"),       # tiny.yaml pretrains
    (["data.kind=lr-only", "data.root=null", "data.lr_root=x.mp4", "stages=[sir]", "sir.distill.hidden_weight=1"],
     r"sir: nothing trains the output frames"),
    (["stages=[sir]", "sir.distill.gt_weight=0", "sir.distill.hidden_weight=1"], r"sir: nothing trains the output"),
    (["stages=[finetune]", "finetune.distill.sr_weight=1"], r"finetune\.teacher \(the dense network\) is needed"),
])
def test_bad_distillation_settings_are_one_line(overrides, message):
    with pytest.raises(ConfigError, match=message) as err:
        load_config(TINY_YAML, overrides)
    assert "\n" not in str(err.value)


def test_distillation_keys_load():
    cfg = load_config(TINY_YAML, ["stages=[sir, finetune]", "data.kind=lr-only", "data.root=null",
                                  "data.lr_root=clip.mp4", "data.lr_cache_mb=512", "sir.distill.sr_weight=1",
                                  "finetune.distill={sr_weight: 1, hidden_weight: 0.5}"])
    assert cfg.data.lr_cache_mb == 512 and Path(cfg.data.lr_root).is_absolute()
    assert (cfg.sir.distill.sr_weight, cfg.sir.distill.hidden_weight, cfg.sir.distill.gt_weight) == (1.0, 0.0, None)
    assert (cfg.finetune.distill.sr_weight, cfg.finetune.distill.hidden_weight) == (1.0, 0.5)
    plain = load_config(TINY_YAML)       # defaults: distillation off, GT Charbonnier as before
    assert plain.sir.distill.sr_weight == plain.sir.distill.hidden_weight == 0 and plain.data.kind == "folder"


# -- the recipe ----------------------------------------------------------------------------------
def test_quick_distill_recipe_distils_the_official_network_on_lr_frames_only():
    cfg = load_config(QUICK_DISTILL)
    assert cfg.stages == ["sir", "finetune"] and cfg.model.weights == "official:REDS4"
    assert cfg.data.kind == "lr-only" and cfg.data.root is None and cfg.val.root is None
    assert Path(cfg.data.lr_root) == ROOT / "resources" / "demo" / "BIx4"
    for stage in (cfg.sir, cfg.finetune):
        assert stage.distill.sr_weight > 0 and stage.distill.hidden_weight > 0 and not stage.distill.gt_weight
    used = [Path(getattr(getattr(cfg, k.split(".")[0]), k.split(".")[1])) for k in PATH_KEYS
            if getattr(getattr(cfg, k.split(".")[0]), k.split(".")[1]) not in (None, "official:REDS4")]
    assert used == [ROOT / "resources" / "demo" / "BIx4"]               # no GT anywhere
    assert sir_iterations(cfg.sir) + cfg.finetune.iterations <= 200
    assert cfg.data.num_workers == 0 and cfg.runtime.device == "cpu"


def test_recover_distill_recipe_finetunes_a_pruned_file_from_the_official_teacher_on_lr_frames_only():
    from core.io.weights import official_weight, weights_file

    cfg = load_config(ROOT / "resources" / "configs" / "recover_distill.yaml")
    assert cfg.stages == ["finetune"] and Path(cfg.model.weights) == ROOT / "runs" / "pruned.pth"
    assert cfg.data.kind == "lr-only" and cfg.data.root is None and cfg.val.root is None
    assert cfg.finetune.distill.sr_weight > 0 and cfg.finetune.distill.hidden_weight > 0
    assert cfg.finetune.teacher == "official:REDS4" and cfg.finetune.iterations <= 100
    assert weights_file(cfg.finetune.teacher, "finetune.teacher") == official_weight("REDS4")
    with pytest.raises(ConfigError, match="finetune.teacher = official:NOPE"):
        weights_file("official:NOPE", "finetune.teacher")
