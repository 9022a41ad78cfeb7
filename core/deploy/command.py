"""``export``: one call from the command line to a verified file (the CLI only parses and prints)."""
from __future__ import annotations

from pathlib import Path
from typing import Callable

from ..errors import UserError
from .check import ExportCheck
from .quantize import MAX_CALIB_FRAMES, CalibrationError


def _frames(path: str | Path | None):
    if path is None:
        return None
    from ..io.frames import read_clip

    return read_clip(path, max_frames=MAX_CALIB_FRAMES).frames


def _refuse_if_not_worth_quantizing(model, calib, calib_gt) -> float:
    """int8 only for a float model better than bicubic upscaling on the calibration frames (a few seconds of
    PyTorch on at most MAX_CALIB_FRAMES frames, before the trace); ``NotWorthQuantizingError`` otherwise. Returns
    its margin over bicubic (dB)."""
    import torch

    from ..io.frames import frames_to_tensor, tensor_to_frames
    from .onnx_export import deploy_copy
    from .quantize import check_calibration, check_worth_quantizing

    calib = check_calibration(calib)
    with torch.no_grad():
        float_sr = tensor_to_frames(deploy_copy(model)(frames_to_tensor(calib)))
    return check_worth_quantizing(float_sr, calib, calib_gt)


def _measured(status, model, margin: float | None):
    """``status`` judged by measuring (``core.recover.measured``), not by the file's word: the int8 guard's margin
    when it measured one, else a probe on the bundled demo clip's first frames (an fp32 export has no frames of the
    user's; a raw cut is far below bicubic on any clip)."""
    from dataclasses import replace

    import torch

    from ..io.demo import demo_clip_dir
    from ..io.frames import read_clip
    from ..recover.measured import PROBE_FRAMES, measured_status

    if margin is not None:
        return replace(status, measured_margin=margin) if status.pruned else status
    frames = read_clip(demo_clip_dir() / "BIx4", max_frames=PROBE_FRAMES).frames
    return measured_status(status, model, frames, torch.device("cpu"))


# File name endings that say what a file is: an export named with another format's is refused (a model.h5
# holding ONNX, or an ONNX file named like a checkpoint, would be opened as what its name says).
_NAMED_FORMATS = {".onnx": ("onnx", "an ONNX model"), ".h5": ("h5", "an HDF5 report"),
                  ".hdf5": ("h5", "an HDF5 report"), ".pth": ("model", "a PyTorch checkpoint"),
                  ".pt": ("model", "a PyTorch checkpoint")}
_FORMAT_SUFFIX = {"onnx": ".onnx", "h5": ".h5", "model": ".pth"}


def _refuse_other_format(out: str | Path, fmt: str) -> None:
    named = _NAMED_FORMATS.get(Path(out).suffix.lower())
    if named is not None and named[0] != fmt:
        raise UserError(f"--out {out} is named like {named[1]}, but --format {fmt} writes "
                        f"{_NAMED_FORMATS[_FORMAT_SUFFIX[fmt]][1]}: name it *{_FORMAT_SUFFIX[fmt]}")


def export_file(model_path: str | Path, fmt: str, out: str | Path, *, precision: str = "fp32",
                calib: str | Path | None = None, calib_gt: str | Path | None = None, max_drop: float = 0.3,
                overwrite: bool = False, allow_nonfinite: bool = False, flow: str = "full",
                on_loaded: Callable[[object], None] | None = None) -> ExportCheck:
    """Load a model file and export it; the output is claimed before any heavy work.

    An int8 export of a float model worse than bicubic upscaling on the calibration frames is refused
    (``core.deploy.quantize.NotWorthQuantizingError``) before anything is traced. ``on_loaded(status)`` is called
    with the model's ``core.recover.status.RecoveryStatus`` once it is loaded and accepted, before the export (the
    CLI warns there about a raw cut; core never prints).
    """
    from ..io.checkpoint import load_checkpoint
    from ..io.output import held_output
    from ..recover.status import recovery_status
    from .export import export_as

    sources = [model_path, calib, calib_gt]
    with held_output(out, inputs=sources, overwrite=overwrite):    # the lock from the start, not at the write
        if fmt != "onnx" and (precision != "fp32" or calib is not None or flow != "full"):
            raise UserError(f"--precision, --calib and --flow apply to --format onnx only, not {fmt}")
        if precision != "int8" and (calib is not None or calib_gt is not None):
            raise UserError("--calib and --calib-gt calibrate an int8 export; with --precision fp32 they would be "
                            "read for nothing (add --precision int8, or leave them out)")
        _refuse_other_format(out, fmt)
        if precision == "int8" and calib is None:
            raise CalibrationError("int8 needs calibration frames: give --calib CLIP (a frame folder or video "
                                   "of the kind the model will see)")
        if not max_drop > 0:
            raise UserError(f"--max-drop must be a positive number of dB, got {max_drop}")
        loaded = load_checkpoint(model_path, allow_nonfinite=allow_nonfinite)
        options, margin = {}, None
        if fmt == "onnx":
            options = {"precision": precision, "calib": _frames(calib),
                       "calib_gt": _frames(calib_gt), "max_drop": max_drop, "flow": flow}
            if precision == "int8":
                margin = _refuse_if_not_worth_quantizing(loaded.model, options["calib"], options["calib_gt"])
        if on_loaded is not None:
            status = recovery_status(loaded.meta, loaded.is_pruned)
            on_loaded(_measured(status, loaded.model, margin) if fmt != "h5" else status)
        meta = {**loaded.meta, "source": str(loaded.path), "source_format": loaded.source_format}
        return export_as(fmt, loaded.model, out, meta=meta, overwrite=overwrite, inputs=sources, **options)
