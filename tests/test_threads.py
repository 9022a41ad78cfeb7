"""core.threads: the start-up wait policy, the thread-count policy, --threads parsing, and the GUI setting."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import torch

from core import threads
from core.cli import build_parser, main as cli_main

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def keep_torch_threads():
    before = torch.get_num_threads()
    yield
    torch.set_num_threads(before)


# -- policy (pure logic) ---------------------------------------------------------------------------------
def test_passive_waiting_by_default():
    assert threads.startup_environment({}) == {"OMP_WAIT_POLICY": "PASSIVE"}
    assert threads.startup_environment({"OMP_WAIT_POLICY": "  "}) == {"OMP_WAIT_POLICY": "PASSIVE"}


@pytest.mark.parametrize("env", [{"OMP_WAIT_POLICY": "ACTIVE"}, {"GOMP_SPINCOUNT": "10000"}])
def test_a_users_wait_policy_is_left_alone(env):
    assert threads.startup_environment(env) == {}
    environ = dict(env)
    threads.configure_startup(environ)
    assert environ == env


def test_configure_startup_says_whether_it_is_in_time(monkeypatch):
    environ: dict[str, str] = {}
    assert threads.configure_startup(environ) is False        # torch is imported in this test process
    assert environ["OMP_WAIT_POLICY"] == "PASSIVE"
    monkeypatch.delitem(sys.modules, "torch")
    assert threads.configure_startup({}) is True


def test_usable_cores_follow_the_affinity():
    assert threads.usable_cores({0, 3}, cpu_count=8) == 2
    assert threads.usable_cores(set(), cpu_count=8) == 8
    assert threads.usable_cores(set(), cpu_count=0) == 1


@pytest.mark.parametrize("value, expected", [("", 4), ("3", 3), ("2,1", 2), ("0", 4), ("many", 4), ("-2", 4)])
def test_default_threads_honour_a_valid_omp_num_threads(value, expected):
    assert threads.default_threads(4, {"OMP_NUM_THREADS": value}) == expected


def test_an_explicit_choice_wins_and_is_bounded():
    assert threads.resolve_threads(1, 16, {"OMP_NUM_THREADS": "8"}) == 1
    assert threads.resolve_threads(None, 16, {"OMP_NUM_THREADS": "8"}) == 8
    assert threads.resolve_threads(None, 2, {}) == 2
    for bad in (0, threads.MAX_THREADS + 1):
        with pytest.raises(ValueError):
            threads.resolve_threads(bad, 2, {})


def test_set_threads_reaches_threads_started_later(keep_torch_threads):
    import threading

    assert threads.set_threads(1) == 1
    seen = []
    t = threading.Thread(target=lambda: (torch.ones(64, 64) @ torch.ones(64, 64), seen.append(torch.get_num_threads())))
    t.start()
    t.join()
    assert seen == [1]


def test_entry_point_sets_the_policy_before_torch_loads():
    code = ("import os, sys\nfrom app.entry import main\ntry:\n    main(['--help'])\nexcept SystemExit:\n    pass\n"
            "print(os.environ.get('OMP_WAIT_POLICY'))")
    env = {k: v for k, v in __import__("os").environ.items() if k not in threads.USER_WAIT_VARIABLES}
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, env=env, timeout=300)
    assert out.stdout.strip().splitlines()[-1] == "PASSIVE"


# -- --threads on the command line ---------------------------------------------------------------------
@pytest.mark.parametrize("argv", [
    ["sr", "m.pth", "in", "out", "--threads", "0"],
    ["eval", "m.pth", "--lr", "a", "--gt", "b", "--threads", "two"],
    ["export", "m.pth", "--format", "h5", "--out", "x.h5", "--threads", "-1"],
    ["train", "c.yaml", "--threads", "0"],
    ["study", "sweep", "m.pth", "--lr", "a", "--threads", "1.5"],
])
def test_bad_threads_is_one_line_exit_2(argv, capsys):
    assert cli_main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and err.startswith("error:") and "--threads" in err


@pytest.mark.parametrize("argv", [
    ["sr", "m.pth", "in", "out"], ["eval", "m.pth", "--lr", "a", "--gt", "b"],
    ["export", "m.pth", "--format", "h5", "--out", "x.h5"], ["train", "c.yaml"],
    ["study", "sweep", "m.pth", "--lr", "a"]])
def test_threads_is_parsed_on_every_compute_command(argv):
    p = build_parser()
    assert p.parse_args(argv).threads is None
    assert p.parse_args([*argv, "--threads", "3"]).threads == 3


def test_threads_is_applied_before_the_command_runs(tmp_path, capsys, keep_torch_threads):
    torch.set_num_threads(2)
    cli_main(["eval", str(tmp_path / "missing.pth"), "--lr", str(tmp_path), "--gt", str(tmp_path), "--threads", "1"])
    assert torch.get_num_threads() == 1


# -- the GUI setting ------------------------------------------------------------------------------------
def test_threads_menu_applies_and_remembers(qtbot, tmp_path, keep_torch_threads):
    from PySide6.QtCore import QSettings
    from PySide6.QtWidgets import QMainWindow

    from app.threads_menu import SETTINGS_KEY, add_threads_menu, saved_threads

    settings = QSettings(str(tmp_path / "s.ini"), QSettings.Format.IniFormat)
    w = QMainWindow()
    qtbot.addWidget(w)
    told = []
    group = add_threads_menu(w.menuBar(), settings, told.append)
    one = next(a for a in group.actions() if a.data() == 1)
    one.trigger()
    assert told == [1] and torch.get_num_threads() == 1 and saved_threads(settings) == 1
    settings.setValue(SETTINGS_KEY, "lots")
    assert saved_threads(settings) is None
