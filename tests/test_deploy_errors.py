"""Bad inputs to export and to running exported files: each a one-line error, exit 2, nothing written."""
from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("onnx")

from core.cli import main  # noqa: E402
from core.deploy.quantize import CalibrationError, check_calibration  # noqa: E402
from core.deploy.runtime import ForeignModelError, load_network  # noqa: E402
from core.io.checkpoint import save_model  # noqa: E402
from tests.helpers import tiny_model  # noqa: E402


def _one_line_error(capsys, argv) -> str:
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "\n" not in err, err
    return err


def _foreign_onnx(path):
    import onnx
    from onnx import TensorProto, helper

    graph = helper.make_graph([helper.make_node("Identity", ["x"], ["y"])], "g",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1])])
    onnx.save(helper.make_model(graph), str(path))
    return path


def test_foreign_or_damaged_onnx_is_refused(tmp_path):
    with pytest.raises(ForeignModelError, match="not exported by this tool"):
        load_network(_foreign_onnx(tmp_path / "foreign.onnx"))
    (tmp_path / "junk.onnx").write_bytes(b"\x00\x01 definitely not protobuf \xff" * 10)
    with pytest.raises(ForeignModelError, match="not an ONNX model"):
        load_network(tmp_path / "junk.onnx")


def test_exporting_a_file_that_is_not_a_model(tmp_path, capsys):
    (tmp_path / "notes.txt").write_text("hello")
    err = _one_line_error(capsys, ["export", str(tmp_path / "notes.txt"), "--format", "onnx",
                                   "--out", str(tmp_path / "m.onnx")])
    assert "not a PyTorch checkpoint" in err
    assert not (tmp_path / "m.onnx").exists()


@pytest.fixture
def model_file(tmp_path):
    return save_model(tiny_model("basicvsr-uni", 8, 1), tmp_path / "tiny.pth")


def test_int8_without_calibration_clip(tmp_path, capsys, model_file):
    err = _one_line_error(capsys, ["export", str(model_file), "--format", "onnx", "--precision", "int8",
                                   "--out", str(tmp_path / "q.onnx")])
    assert "--calib" in err and not (tmp_path / "q.onnx").exists()


def test_absent_calibration_clip(tmp_path, capsys, model_file):
    err = _one_line_error(capsys, ["export", str(model_file), "--format", "onnx", "--precision", "int8",
                                   "--calib", str(tmp_path / "nowhere"), "--out", str(tmp_path / "q.onnx")])
    assert "nowhere" in err and not (tmp_path / "q.onnx").exists()


def test_existing_output_is_refused_before_any_work(tmp_path, capsys, model_file):
    (tmp_path / "m.onnx").write_bytes(b"mine")
    err = _one_line_error(capsys, ["export", str(model_file), "--format", "onnx", "--out", str(tmp_path / "m.onnx")])
    assert "already exists" in err and (tmp_path / "m.onnx").read_bytes() == b"mine"


def test_calibration_frames_too_short_too_small_or_absent():
    with pytest.raises(CalibrationError, match="--calib"):
        check_calibration(None)
    with pytest.raises(CalibrationError, match="too short"):
        check_calibration(np.zeros((2, 64, 64, 3), np.uint8))
    with pytest.raises(CalibrationError, match="too small"):
        check_calibration(np.zeros((4, 20, 64, 3), np.uint8))
    assert len(check_calibration(np.zeros((20, 40, 40, 3), np.uint8))) == 8


def test_sr_refuses_a_foreign_onnx(tmp_path, capsys):
    from tests.conftest import shared_path

    clip = shared_path("data", "vid4", "calendar", "BIx4")
    err = _one_line_error(capsys, ["sr", str(_foreign_onnx(tmp_path / "foreign.onnx")), str(clip),
                                   str(tmp_path / "out"), "--max-frames", "2"])
    assert "not exported by this tool" in err and not (tmp_path / "out").exists()


def test_flow_resolution_is_for_onnx_only_and_from_a_fixed_list(tmp_path, capsys, model_file):
    err = _one_line_error(capsys, ["export", str(model_file), "--format", "h5", "--flow", "half",
                                   "--out", str(tmp_path / "r.h5")])
    assert "--flow" in err and not (tmp_path / "r.h5").exists()
    err = _one_line_error(capsys, ["export", str(model_file), "--format", "onnx", "--flow", "quarter",
                                   "--out", str(tmp_path / "m.onnx")])
    assert "invalid choice" in err and not (tmp_path / "m.onnx").exists()
