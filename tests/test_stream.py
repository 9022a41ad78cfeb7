"""Streaming: the recurrent steps and the engine are exact to the whole-clip network, memory stays flat, scratch
data never outlives a run, and `sr` leaves nothing that looks complete when it is interrupted or killed."""
import copy
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from core.cli import main
from core.errors import ClipError, UserError
from core.infer import super_resolve
from core.io.frames import frames_to_tensor, read_clip, tensor_to_frames, write_frames
from core.io.source import ArraySource, FolderSource, open_sink, open_source
from core.ssl import compute_scores, make_plan, prune_to_plan
from core.stream import StreamRun, stream_frames
from tests.conftest import ROOT, shared_path
from tests.helpers import official, rss_mib, tiny_model

H, W = 37, 53          # neither a multiple of 4 nor of 32


@pytest.fixture(autouse=True)
def one_thread():
    """Frames this small gain nothing from threads and lose 10x to OpenMP spinning on busy cores."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def calendar(frames: int, h: int = H, w: int = W) -> np.ndarray:
    """Real LR frames (Vid4 calendar), cropped to an awkward size."""
    clip = read_clip(shared_path("data", "vid4", "calendar", "BIx4"), max_frames=frames)
    return np.ascontiguousarray(clip.frames[:, 30:30 + h, 40:40 + w])


def whole_clip(model, frames: np.ndarray) -> torch.Tensor:
    """The batched network as CPU inference runs it (channels-last weights): (T, 3, 4h, 4w)."""
    net = copy.deepcopy(model).to(memory_format=torch.channels_last)
    with torch.no_grad():
        return net(frames_to_tensor(frames))[0]


def streamed(model, frames: np.ndarray, **options) -> torch.Tensor:
    """The engine over a lazy iterator (so pass 0 caches the frames), float outputs: (T, 3, 4h, 4w)."""
    return torch.cat(list(StreamRun(model, iter(list(frames)), raw=True, **options)), 0)


def pruned(model):
    return prune_to_plan(copy.deepcopy(model), make_plan(compute_scores(model), 0.5))


# -- exactness -------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("variant", ["basicvsr", "basicvsr-uni"])
@pytest.mark.parametrize("prune", [False, True], ids=["dense", "pruned"])
@pytest.mark.parametrize("frames, budget", [(2, None), (4, 0)], ids=["T2-memory", "T4-disk"])
def test_streaming_equals_the_whole_clip_on_real_frames(variant, prune, frames, budget):
    model = tiny_model(variant, num_feat=16, num_block=2)
    if prune:
        model = pruned(model)
        assert model.count_parameters(False) < tiny_model(variant).count_parameters(False)
    lr = calendar(frames)
    options = {} if budget is None else {"memory_budget": budget}
    diff = (streamed(model, lr, **options) - whole_clip(model, lr)).abs().max().item()
    assert diff <= 1e-5, diff


def test_official_weights_stream_exactly():
    from core.io.checkpoint import load_checkpoint

    model = load_checkpoint(official("REDS4")).model
    lr = calendar(3)
    diff = (streamed(model, lr, memory_budget=0) - whole_clip(model, lr)).abs().max().item()
    assert diff <= 1e-5, diff


def test_steps_are_pure_and_zero_state_equals_cold_start():
    model = tiny_model("basicvsr").to(memory_format=torch.channels_last)
    x = frames_to_tensor(calendar(2))[0]
    x0, x1 = x[:1], x[1:]
    with torch.no_grad():
        h1 = model.backward_step(x1, None, None)
        kept = h1.clone()
        h0 = model.backward_step(x0, x1, h1)
        assert torch.equal(h1, kept)   # inputs are never written into
        zeros = torch.zeros_like(h1)
        assert torch.allclose(model.backward_step(x1, x0, zeros), h1, atol=1e-6)
        sr, hf = model.forward_step(x0, None, None, h0)
        assert sr.shape == (1, 3, 4 * H, 4 * W) and hf.shape == h0.shape
        assert torch.allclose(model.forward_step(x0, x1, zeros, h0)[0], sr, atol=1e-6)
        assert model.flow(x0, x1).shape == (1, 2, H, W)
    assert model.bidirectional and not tiny_model("basicvsr-uni").bidirectional


def test_the_given_model_is_never_changed():
    model = tiny_model("basicvsr").train()
    before = {k: (v.clone(), v.stride()) for k, v in model.state_dict().items()}
    lr = (np.random.default_rng(1).random((3, 20, 24, 3)) * 255).astype(np.uint8)
    list(stream_frames(model, lr))
    super_resolve(model, lr)
    assert model.training
    for k, v in model.state_dict().items():
        assert torch.equal(v, before[k][0]) and v.stride() == before[k][1], k


def test_super_resolve_matches_the_whole_clip_in_uint8():
    model = tiny_model("basicvsr")
    lr = calendar(3)
    out = super_resolve(model, lr).frames
    ref = tensor_to_frames(whole_clip(model, lr))
    assert out.shape == ref.shape and np.abs(out.astype(int) - ref.astype(int)).max() <= 1


def test_eval_scores_each_frame_as_it_streams(tmp_path):
    from core.evaluate import evaluate_dataset
    from core.metrics import clip_metrics

    lr = calendar(3)
    gt_all = read_clip(shared_path("data", "vid4", "calendar", "GT"), max_frames=3).frames
    gt = np.ascontiguousarray(gt_all[:, 120:120 + 4 * H, 160:160 + 4 * W])
    write_frames(lr, tmp_path / "lr" / "cal")
    write_frames(gt, tmp_path / "gt" / "cal")
    model = tiny_model("basicvsr")
    report = evaluate_dataset(model, tmp_path / "lr", tmp_path / "gt", crop_border=2)
    ref = clip_metrics(super_resolve(model, lr).frames, gt, crop_border=2, name="cal")
    assert report.clips[0].psnr == ref.psnr and report.clips[0].ssim == ref.ssim and len(ref.psnr) == 3
    write_frames(gt[:2], tmp_path / "short" / "cal")
    with pytest.raises(ClipError, match="3 LR frames but 2 GT frames"):
        evaluate_dataset(model, tmp_path / "lr", tmp_path / "short")


# -- memory, scratch, progress ---------------------------------------------------------------------------------
class ToyStepper:
    """A stepper with BasicVSR's state sizes but almost no compute: the engine's memory is what is measured."""

    bidirectional = True

    def __init__(self, num_feat: int = 16) -> None:
        self.num_feat = num_feat

    def flow(self, x_a, x_b):
        return torch.zeros(x_a.shape[0], 2, *x_a.shape[-2:])

    def backward_step(self, x_t, x_next, h_next):
        h = x_t.repeat(1, self.num_feat // 3 + 1, 1, 1)[:, :self.num_feat]
        return h if h_next is None else h + 0.5 * h_next

    def forward_step(self, x_t, x_prev, h_prev, h_b):
        h = h_b if h_prev is None else h_b + 0.5 * h_prev
        return F.interpolate(h[:, :3] * 0.1, scale_factor=4), h


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="needs Linux /proc for the resident set")
def test_memory_stays_flat_over_300_frames(tmp_path):
    h, w, t = 64, 64, 300     # 256 KiB of backward state per frame: 75 MiB if the engine kept them
    frames = (np.random.default_rng(0).integers(0, 256, (h, w, 3), dtype=np.uint8) for _ in range(t))
    run = StreamRun(ToyStepper(), frames, None, memory_budget=0, scratch=tmp_path)
    rss = []
    for i, _ in enumerate(run):
        if i in (30, t - 1):
            rss.append(rss_mib())
    assert run.frames_done == t
    assert rss[1] - rss[0] < 16, rss
    assert run.scratch_bytes == t * (16 * h * w * 4 + h * w * 3)
    assert list(tmp_path.iterdir()) == []


def test_scratch_is_removed_on_cancel_and_progress_counts_every_step(tmp_path):
    lr = (np.random.default_rng(0).random((4, 12, 16, 3)) * 255).astype(np.uint8)
    seen = []
    list(StreamRun(ToyStepper(), lr, progress=lambda d, n: seen.append((d, n)), scratch=tmp_path, memory_budget=0))
    assert seen == [(i, 8) for i in range(1, 9)]

    class Cancelled(Exception):
        pass

    def cancel(done, total):
        assert len(list(tmp_path.iterdir())) == 1     # the scratch folder, hidden
        assert next(tmp_path.iterdir()).name.startswith(".")
        if done == 5:
            raise Cancelled

    with pytest.raises(Cancelled):
        list(StreamRun(ToyStepper(), iter(list(lr)), progress=cancel, scratch=tmp_path, memory_budget=0))
    assert list(tmp_path.iterdir()) == []


def test_a_one_frame_clip_is_refused():
    with pytest.raises(ClipError, match="at least 2"):
        list(StreamRun(ToyStepper(), iter([np.zeros((8, 8, 3), np.uint8)])))


# -- sources and sinks -----------------------------------------------------------------------------------------
def test_folder_source_is_lazy_and_folder_sink_appears_complete(tmp_path):
    frames = (np.random.default_rng(2).random((3, 10, 14, 3)) * 255).astype(np.uint8)
    write_frames(frames, tmp_path / "clip", names=["a1", "a2", "a10"])
    src = open_source(tmp_path / "clip")
    assert isinstance(src, FolderSource) and src.size == (10, 14) and src.count == 3
    assert src.frame_names == ["a1", "a2", "a10"]
    assert np.array_equal(np.stack(list(src)), frames)
    out = tmp_path / "out"
    with open_sink(out, fps=None, inputs=[tmp_path / "clip"], names=src.frame_names) as sink:
        for f in src:
            sink.write(f)
            assert not out.exists()
    assert sorted(p.name for p in out.iterdir()) == ["a1.png", "a10.png", "a2.png"]
    with pytest.raises(UserError, match="already holds files"):
        open_sink(out, fps=None).__enter__()
    with pytest.raises(UserError, match="video outputs only"):
        open_sink(tmp_path / "o2", fps=None, codec="h264")
    assert ArraySource(frames).count == 3


# -- the CLI ---------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def ckpt(tmp_path_factory):
    path = tmp_path_factory.mktemp("ckpt") / "tiny.pth"
    torch.save({"params": tiny_model("basicvsr", 16, 1).state_dict()}, path)
    return path


def test_golden_output_holds_through_sr(golden, tmp_path, capsys):
    frames = np.round(golden["basicvsr_in"][0] * 255).astype(np.uint8).transpose(0, 2, 3, 1)
    write_frames(frames, tmp_path / "in")
    assert main(["sr", str(official("REDS4")), str(tmp_path / "in"), str(tmp_path / "out"), "--json"]) == 0
    out = read_clip(tmp_path / "out").frames
    ref = tensor_to_frames(torch.from_numpy(golden["basicvsr_out"]))
    assert out.shape == ref.shape and np.abs(out.astype(int) - ref.astype(int)).max() <= 1


def test_sr_refuses_before_any_work(tmp_path, capsys, ckpt):
    frames = np.zeros((1, 8, 8, 3), np.uint8)
    write_frames(frames, tmp_path / "one")
    assert main(["sr", str(ckpt), str(tmp_path / "one"), str(tmp_path / "o")]) == 2
    assert "needs at least 2" in capsys.readouterr().err
    (tmp_path / "taken").mkdir()
    (tmp_path / "taken" / "mine.txt").write_text("keep")
    # the checkpoint does not even exist: the output is refused first, so nothing was loaded
    assert main(["sr", str(tmp_path / "missing.pth"), str(tmp_path / "one"), str(tmp_path / "taken")]) == 2
    assert "already holds files" in capsys.readouterr().err
    assert main(["sr", str(ckpt), str(tmp_path / "one"), str(tmp_path / "one" / "x")]) == 2
    assert "inside the input" in capsys.readouterr().err


def _partials(folder: Path) -> list[Path]:
    return [p for p in folder.iterdir() if p.name.startswith(".out.partial-")]


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGKILL], ids=["SIGINT", "SIGKILL"])
def test_interrupted_or_killed_sr_leaves_nothing_that_looks_complete(tmp_path, ckpt, sig):
    # Long enough that the signal lands mid-run on a slow or busy machine too (60 frames ended first in a CI run).
    frames = (np.random.default_rng(3).random((400, 16, 16, 3)) * 255).astype(np.uint8)
    write_frames(frames, tmp_path / "clip")
    out = tmp_path / "out"
    out.mkdir()
    (out / "0000.png").write_bytes(b"an earlier output frame")   # --overwrite replaces only a folder of frames
    cmd = [sys.executable, str(ROOT / "main.py"), "sr", str(ckpt), str(tmp_path / "clip"), str(out), "--overwrite",
           "--device", "cpu"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 240
    while len(_partials(tmp_path)) < 2:    # the staged output folder and the scratch folder: inference runs
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline
        time.sleep(0.05)
    time.sleep(0.3)
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == (130 if sig == signal.SIGINT else -signal.SIGKILL), err
    assert [p.name for p in out.iterdir()] == ["0000.png"]
    assert (out / "0000.png").read_bytes() == b"an earlier output frame"
    visible = [p.name for p in tmp_path.iterdir() if not p.name.startswith(".")]
    assert sorted(visible) == ["clip", "out"]
    if sig == signal.SIGINT:
        assert _partials(tmp_path) == []
    rerun = subprocess.run([*cmd, "--max-frames", "2"], cwd=ROOT, env=env, capture_output=True, text=True,
                           timeout=240)
    assert rerun.returncode == 0, rerun.stderr
    assert sorted(p.name for p in out.iterdir()) == ["0000.png", "0001.png"]
    assert _partials(tmp_path) == []
