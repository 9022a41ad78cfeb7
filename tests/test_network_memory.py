"""A size the network cannot run at in this machine's memory is refused before any work, in one line and exit 2
(core.memory.check_network_memory, used by compress, plan/prune --target-*, sr and eval); compress's speed options
refuse infinities as plan's do (one parser). Available memory is set small here: no real huge allocation."""
import numpy as np
import pytest

from core import memory
from core.cli import build_parser, main
from core.errors import UserError
from core.io.frames import write_frames
from core.plan_args import target_arg
from tests.test_cli import ckpt  # noqa: F401  (fixture: a tiny 16-channel checkpoint)


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    folder = tmp_path_factory.mktemp("clip") / "lr"
    write_frames(np.random.default_rng(0).integers(0, 255, (3, 24, 28, 3), dtype=np.uint8), folder)
    return folder


@pytest.fixture
def little_memory(monkeypatch):
    """This machine has 64 MiB available: a 24x28 clip needs more (the allocator's overhead alone is 256 MiB)."""
    monkeypatch.setattr(memory, "available_memory", lambda device=None: 64 << 20)


def refused(capsys, argv) -> str:
    assert main([str(a) for a in argv]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1, err
    return err


def test_needed_memory_is_compared_with_what_the_machine_has(monkeypatch):
    assert memory.network_bytes((90, 160), 64) == (memory.FEATURE_TENSORS_ALIVE * 64 * 90 * 160 * 4
                                                   + memory.OVERHEAD_BYTES)
    assert memory.available_memory() is None or memory.available_memory() > 0
    monkeypatch.setattr(memory, "available_memory", lambda device=None: 10 << 30)
    memory.check_network_memory((90, 160), 64, "clip x")             # fits: nothing said
    with pytest.raises(UserError, match=r"clip x: running the network at 8000x8000 .* GiB of memory, but this "
                                        r"machine has 10.0 GiB available"):
        memory.check_network_memory((8000, 8000), 64, "clip x")


@pytest.mark.parametrize("value", ["inf", "-inf", "nan", "0", "-1"])
def test_compress_speedup_must_be_finite_and_positive(capsys, value):
    err = refused(capsys, ["compress", "m.pth", "--footage", "f", "--out", "o.onnx", "--speedup", value])
    assert "--speedup" in err


@pytest.mark.parametrize("value", ["inf", "nan", "2e9", "0"])
def test_compress_target_ms_is_checked_as_plans(capsys, value):
    err = refused(capsys, ["compress", "m.pth", "--footage", "f", "--out", "o.onnx", "--size", "90x160",
                           "--target-ms", value])
    assert "--target-ms" in err and "1e+09" in err


def test_compress_and_plan_share_the_target_parser():
    sub = build_parser()._subparsers._group_actions[0].choices
    types = {name: next(a.type for a in sub[name]._actions if "--target-ms" in a.option_strings)
             for name in ("compress", "plan", "prune")}
    assert set(types.values()) == {target_arg}


def test_compress_help_says_target_ms_needs_size():
    sub = build_parser()._subparsers._group_actions[0].choices
    size = next(a for a in sub["compress"]._actions if "--size" in a.option_strings)
    assert "--target-ms needs it" in size.help


def test_compress_refuses_a_size_too_big_for_memory(capsys, tmp_path, ckpt, clip, little_memory):
    err = refused(capsys, ["compress", ckpt, "--footage", clip, "--speedup", "2", "--size", "8000x8000",
                           "--out", tmp_path / "o.onnx"])
    assert "--size 8000x8000" in err and "GiB" in err and "available" in err
    assert not list(tmp_path.iterdir())


def test_compress_refuses_footage_too_big_for_memory(capsys, tmp_path, ckpt, clip, little_memory):
    err = refused(capsys, ["compress", ckpt, "--footage", clip, "--speedup", "2", "--out", tmp_path / "o.onnx"])
    assert f"footage {clip}" in err and "24x28" in err


@pytest.mark.parametrize("target", [["--target-ms", "100"], ["--target-fps", "10"]])
def test_plan_refuses_a_latency_size_too_big_for_memory(capsys, ckpt, little_memory, target):
    err = refused(capsys, ["plan", ckpt, *target, "--size", "8000x8000", "--criterion", "l1"])
    assert "--size 8000x8000" in err and "available" in err


def test_plan_at_a_ratio_runs_nothing_at_size(capsys, ckpt, little_memory):
    assert main(["plan", str(ckpt), "--ratio", "0.5", "--size", "8000x8000", "--criterion", "l1", "--json"]) == 0


def test_sr_refuses_frames_too_big_for_memory(capsys, tmp_path, ckpt, clip, little_memory):
    out = tmp_path / "sr"
    err = refused(capsys, ["sr", ckpt, clip, out, "--device", "cpu"])
    assert "clip lr" in err and "24x28" in err and "available" in err
    assert not out.exists() and not list(tmp_path.iterdir())


def test_eval_refuses_frames_too_big_for_memory(capsys, tmp_path, ckpt, clip, little_memory):
    gt = tmp_path / "gt"
    write_frames(np.zeros((3, 96, 112, 3), np.uint8), gt)
    err = refused(capsys, ["eval", ckpt, "--lr", clip, "--gt", gt, "--device", "cpu"])
    assert "24x28" in err and "available" in err


def test_prune_refuses_a_latency_size_too_big_for_memory(capsys, tmp_path, ckpt, little_memory):
    err = refused(capsys, ["prune", ckpt, "--target-ms", "100", "--size", "8000x8000", "--criterion", "l1",
                           "--no-reconstruct", "--out", tmp_path / "p.pth"])
    assert "--size 8000x8000" in err and not (tmp_path / "p.pth").exists()


@pytest.mark.parametrize("kind", ["sensitivity", "sweep"])
def test_study_refuses_frames_too_big_for_memory(capsys, ckpt, clip, little_memory, kind):
    err = refused(capsys, ["study", kind, ckpt, "--lr", clip, "--device", "cpu", "--max-frames", "all"])
    assert f"--lr {clip}" in err and "24x28" in err and "available" in err
