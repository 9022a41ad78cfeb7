"""The int8 guard's search for how many layers stay float: doubling, then bisection back to the fewest that fit."""
import pytest

from core.deploy.quantize import fewest_float

pytestmark = pytest.mark.usefixtures("memo_traces")     # one ONNX trace per distinct network (tests/trace_memo.py)


def _drops(needed: int):
    """A drop that fits 0.3 dB once ``needed`` of the ranked layers are float (1 dB with none)."""
    calls = []

    def attempt(n: int):
        calls.append(n)
        return f"model with {n} float", 0.3 if n >= needed else 1.0 - 0.5 * n / needed
    return attempt, calls


@pytest.mark.parametrize("needed", [1, 3, 37, 70, 100, 149])
def test_the_count_is_within_a_quarter_of_the_fewest_that_fit(needed):
    attempt, calls = _drops(needed)
    count, result, drop, trials = fewest_float(150, attempt, 0.3, ("all int8", 1.0))
    assert needed <= count <= needed + max(1, count // 4)
    assert result == f"model with {count} float" and drop == 0.3
    assert [n for n, _ in trials] == calls
    assert len(calls) <= 2 * 8 + 2                # log-many attempts, not one per layer


def test_an_all_int8_model_that_fits_needs_no_attempt():
    attempt, calls = _drops(10)
    assert fewest_float(150, attempt, 0.3, ("all int8", 0.1)) == (0, "all int8", 0.1, [])
    assert calls == []


def test_a_budget_no_count_meets_ends_with_every_layer_float():
    count, result, drop, trials = fewest_float(20, lambda n: (n, 0.5), 0.3, ("all int8", 1.0))
    assert count == 20 and drop == 0.5 and [n for n, _ in trials] == [1, 2, 4, 8, 16, 20]


def test_a_half_flow_already_over_budget_is_refused_before_quantizing_and_writes_nothing(tmp_path):
    """The float file at half-resolution flow is judged first: when the approximation alone exceeds the budget no
    int8 layer choice can fit, so the export stops in one line (no quantization attempts, no file)."""
    pytest.importorskip("onnxruntime")
    from core.deploy.check import Int8OverBudget
    from core.deploy.onnx_export import export_onnx
    from tests.helpers import tiny_model
    from tests.test_compress import moving_frames

    out = tmp_path / "half.int8.onnx"
    with pytest.raises(Int8OverBudget, match="float file alone .*half resolution"):
        export_onnx(tiny_model("basicvsr-uni", 8, 1), out, precision="int8", calib=moving_frames(4, 40, 48),
                    max_drop=1e-9, flow="half")
    assert not out.exists() and not list(tmp_path.iterdir())
