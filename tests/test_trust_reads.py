"""Bounded reads (issue 29): a plan or config is read only from a regular file and only up to its limit, so
``/dev/zero``, a FIFO, a device or a link loop is refused in one line at once, in little memory, with every file
the user had unchanged and no run folder made."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.trust_support import checksums, refused, refused_measured

TINY_YAML = Path(__file__).resolve().parents[1] / "resources" / "configs" / "tiny.yaml"


def _fifo(path: Path) -> Path:
    os.mkfifo(path)
    return path


def _link_loop(path: Path) -> Path:
    (path.parent / "other").symlink_to(path.name)
    path.symlink_to("other")
    return path


@pytest.mark.parametrize("make, pattern", [
    (lambda p: p.symlink_to("/dev/zero"), r"plan\.json: is a character device, not a plan file"),
    (_fifo, r"plan\.json: is a named pipe \(FIFO\), not a plan file"),
])
def test_a_plan_that_never_ends_is_refused_at_once_in_little_memory(tmp_path, make, pattern):
    """The tester's cases: ``--plan /dev/zero`` grew to 1.9 GB in 4.5 s; a FIFO plan hung for ever."""
    make(tmp_path / "plan.json")
    before = checksums(tmp_path, TINY_YAML)
    refused_measured(["train", TINY_YAML, "--plan", tmp_path / "plan.json", "--run-dir", tmp_path / "run"], pattern)
    assert checksums(tmp_path, TINY_YAML) == before and not (tmp_path / "run").exists()


@pytest.mark.parametrize("make, pattern", [
    (lambda p: p.symlink_to("/dev/zero"), r"c\.yaml: is a character device, not a config file"),
    (_fifo, r"c\.yaml: is a named pipe \(FIFO\), not a config file"),
    (_link_loop, r"c\.yaml: cannot read the config \(a loop of symbolic links\)"),
])
def test_a_config_that_is_no_file_is_refused_at_once_in_little_memory(tmp_path, make, pattern):
    make(tmp_path / "c.yaml")
    before = checksums(tmp_path)
    refused_measured(["train", tmp_path / "c.yaml", "--run-dir", tmp_path / "run"], pattern)
    assert checksums(tmp_path) == before and not (tmp_path / "run").exists()


def test_a_plan_link_loop_and_a_plan_folder_are_one_line(tmp_path, capsys):
    _link_loop(tmp_path / "plan.json")
    (tmp_path / "dir.json").mkdir()
    before = checksums(tmp_path)
    refused(capsys, ["train", TINY_YAML, "--plan", tmp_path / "plan.json", "--run-dir", tmp_path / "run"],
            r"plan\.json: cannot read the plan \(a loop of symbolic links\)")
    refused(capsys, ["train", TINY_YAML, "--plan", tmp_path / "dir.json", "--run-dir", tmp_path / "run"],
            r"dir\.json: is a folder, not a plan file")
    assert checksums(tmp_path) == before and not (tmp_path / "run").exists()


def test_a_plan_past_its_limit_is_refused_by_its_size(tmp_path, capsys, monkeypatch):
    import core.train.cli as train_cli

    monkeypatch.setattr(train_cli, "MAX_PLAN_BYTES", 64)
    (tmp_path / "plan.json").write_text('{"settings": {"ratio": 0.5}}' + " " * 64)
    refused(capsys, ["train", TINY_YAML, "--plan", tmp_path / "plan.json", "--run-dir", tmp_path / "run"],
            r"plan\.json: refused, 92 bytes is more than a plan holds \(limit 64\)")
    assert not (tmp_path / "run").exists()
