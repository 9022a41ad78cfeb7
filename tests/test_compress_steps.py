"""Where a compress call's time goes (``StepClock``) and what it says when no time is left to distil."""
from __future__ import annotations

import time
from types import SimpleNamespace

from core.compress.run import CompressRequest, MIN_DISTILL_SECONDS, _Recipe
from core.compress.step_clock import StepClock
from core.events import Log


def _busy(seconds: float) -> None:
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        sum(range(1000))


def test_a_step_run_twice_adds_up_and_the_costliest_comes_first() -> None:
    clock = StepClock()
    with clock.step("probe"):
        _busy(0.05)
    with clock.step("reconstruct"):
        _busy(0.3)
    with clock.step("probe"):
        time.sleep(0.1)                                   # waiting costs wall time, not CPU
    steps = clock.to_json()
    assert set(steps) == {"probe", "reconstruct"}
    assert clock.wall["probe"] >= 0.15 and clock.cpu["probe"] < clock.wall["probe"]
    assert clock.cpu["reconstruct"] > 0.1 and steps["reconstruct"]["cpu_seconds"] > 0
    assert clock.line().startswith("reconstruct ") and ", probe " in clock.line()


def test_a_step_that_raises_is_still_counted() -> None:
    clock = StepClock()
    try:
        with clock.step("quantize"):
            _busy(0.02)
            raise RuntimeError("refused")
    except RuntimeError:
        pass
    assert clock.wall["quantize"] >= 0.02


def test_no_time_left_to_distil_is_said_with_the_minutes_it_had(tmp_path) -> None:
    said: list[str] = []
    req = CompressRequest(model="m.pth", footage=("clip",), out=str(tmp_path / "f.onnx"), speedup=4.0, minutes=0.5)
    recipe = _Recipe(req, lambda e: said.append(e.message) if isinstance(e, Log) else None, None)
    chosen = SimpleNamespace(plan=SimpleNamespace(plan=object()), finish_seconds=10.0)
    assert recipe.distil(chosen, dense=None, footage=None, path=tmp_path / "d.onnx") is None
    assert recipe.distillation.startswith("no distillation: --minutes 0.5 left 0.3 min")   # 30 s - 1.2 x 10 s
    assert f"needs {MIN_DISTILL_SECONDS / 60:.0f}" in recipe.distillation and said == [recipe.distillation]


def test_an_uncut_network_is_not_distilled_and_the_report_says_why(tmp_path) -> None:
    req = CompressRequest(model="m.pth", footage=("clip",), out=str(tmp_path / "f.onnx"), speedup=2.0, minutes=60)
    recipe = _Recipe(req, lambda e: None, None)
    chosen = SimpleNamespace(plan=SimpleNamespace(plan=None), finish_seconds=1.0)
    assert recipe.distil(chosen, dense=None, footage=None, path=tmp_path / "d.onnx") is None
    assert recipe.distillation == "no distillation: the dense network was not cut"
