"""The train sub-command: overrides, --stages, progress on stderr, outputs listed, errors as UserError."""
from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from core.errors import ConfigError, UserError
from core.train.cli import add_train_commands
from tests.train_support import tiny_model_file

TINY_YAML = str(Path(__file__).resolve().parents[1] / "resources" / "configs" / "tiny.yaml")

TINY = ["--set", "data.clip_length=3", "--set", "data.patch_size=16", "--set", "data.batch_size=1",
        "--set", "sir.delta=0.05", "--set", "sir.t1=1", "--set", "sir.tau=0.1", "--set", "sir.stabilize_iters=1",
        "--set", "runtime.log_every=1"]


def _parse(argv):
    parser = argparse.ArgumentParser()
    add_train_commands(parser.add_subparsers(dest="command"))
    return parser.parse_args(argv)


def test_train_command_runs_sir_alone(tmp_path, capsys):
    weights = tiny_model_file(tmp_path / "dense.pth")
    args = _parse(["train", TINY_YAML, "--run-dir", str(tmp_path / "run"), "--stages", "sir",
                   "--device", "cpu", "--set", f"model.weights={weights}", "--set", "model.num_feat=8",
                   "--set", "model.num_block=1", *TINY])
    assert args.func(args) == 0
    err = capsys.readouterr().err
    assert "[sir] started" in err and "pruned model:" in err
    assert (tmp_path / "run" / "pruned.pth").is_file() and (tmp_path / "run" / "train.log").is_file()
    assert "stages:\n- sir" in (tmp_path / "run" / "run_config.yaml").read_text()


def test_bad_override_is_a_config_error(tmp_path):
    args = _parse(["train", TINY_YAML, "--run-dir", str(tmp_path), "--set", "sir.ratio=2"])
    with pytest.raises(ConfigError, match=r"sir\.ratio"):
        args.func(args)


def test_resume_needs_an_existing_run(tmp_path):
    args = _parse(["train", "--resume", str(tmp_path / "missing")])
    with pytest.raises(UserError):
        args.func(args)
