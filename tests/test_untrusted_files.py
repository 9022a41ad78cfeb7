"""Trust in every file and number (issue 20): hostile frames, frame folders, exported ONNX files, checkpoints and
plan files, each refused by the real command line in one ``error:`` line, exit 2, with nothing written.

Every hostile file is forged here in a few hundred bytes: image headers declaring 20000 x 20000 pixels over a
tiny body, an ONNX file of ours whose weights point at another file, a legacy checkpoint claiming 4 TiB, a plan
nested 200,000 deep. Guards prove the refusal comes first: no image is decoded (``cv2.imdecode`` fails the test)
and no network runs (``Conv2d.forward`` fails the test).
"""
from __future__ import annotations

import json
import re
import struct
import zlib
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from core.cli import main
from core.errors import ClipError, UserError
from core.io.checkpoint import save_model
from core.io.frames import write_frames
from core.io.image_file import read_frame
from core.io.image_header import read_image_header
from core.io.limits import MAX_FRAME_BYTES, MAX_PIXELS, MAX_SIDE
from core.io.safe_json import MAX_DEPTH
from core.io.source import FolderSink
from tests.helpers import tiny_model

TINY_YAML = Path(__file__).resolve().parents[1] / "resources" / "configs" / "tiny.yaml"


def refused(capsys, argv, pattern: str) -> str:
    """``main(argv)`` exits 2 with exactly one ``error:`` line on stderr matching ``pattern``."""
    assert main([str(a) for a in argv]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1 and "Traceback" not in err, err
    assert re.search(pattern, err), err
    return err


@pytest.fixture(scope="module")
def model_file(tmp_path_factory) -> Path:
    return save_model(tiny_model("basicvsr-uni", 8, 1), tmp_path_factory.mktemp("model") / "tiny.pth")


@pytest.fixture()
def no_decoding(monkeypatch):
    """Decoding any image fails the test: the refusal must come from the header."""
    monkeypatch.setattr(cv2, "imdecode", lambda *a, **k: pytest.fail("an image was decoded before the refusal"))


@pytest.fixture()
def no_inference(monkeypatch):
    monkeypatch.setattr(torch.nn.Conv2d, "forward", lambda self, x: pytest.fail("inference ran before the refusal"))


def small_clip(folder: Path, frames: int = 2, h: int = 16, w: int = 16, names=None) -> Path:
    rng = np.random.default_rng(0)
    write_frames(rng.integers(0, 256, (frames, h, w, 3), dtype=np.uint8), folder, names=names)
    return folder


# -- forged image headers (a valid header over a body of a few bytes) -----------------------------------------
def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def forged_png(width: int, height: int, depth: int = 8, colour: int = 2) -> bytes:
    ihdr = struct.pack(">IIBBBBB", width, height, depth, colour, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", ihdr) + _png_chunk(b"IDAT", zlib.compress(bytes(64)))
            + _png_chunk(b"IEND", b""))


def forged_jpeg(width: int, height: int) -> bytes:
    app0 = b"\xff\xe0" + struct.pack(">H", 16) + b"JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00"
    sof = b"\xff\xc0" + struct.pack(">HBHHB", 17, 8, height, width, 3) + b"\x01\x22\x00\x02\x11\x01\x03\x11\x01"
    return b"\xff\xd8" + app0 + sof + b"\xff\xd9"


def forged_bmp(width: int, height: int) -> bytes:
    info = struct.pack("<IiiHHIIiiII", 40, width, -height, 1, 24, 0, 0, 2835, 2835, 0, 0)
    return b"BM" + struct.pack("<IHHI", 54 + 16, 0, 0, 54) + info + bytes(16)


def forged_tiff(width: int, height: int) -> bytes:
    entries = [(256, 4, 1, width), (257, 4, 1, height), (258, 3, 1, 8), (277, 3, 1, 3)]
    ifd = struct.pack("<H", len(entries)) + b"".join(struct.pack("<HHII", *e) for e in entries) + b"\0\0\0\0"
    return b"II*\x00" + struct.pack("<I", 8) + ifd


def forged_webp(width: int, height: int) -> bytes:
    vp8x = b"VP8X" + struct.pack("<I", 10) + bytes(4) + (width - 1).to_bytes(3, "little") \
        + (height - 1).to_bytes(3, "little")
    return b"RIFF" + struct.pack("<I", 4 + len(vp8x)) + b"WEBP" + vp8x


FORGERS = {"png": forged_png, "jpg": forged_jpeg, "bmp": forged_bmp, "tif": forged_tiff, "webp": forged_webp}


@pytest.mark.parametrize("ext", ["png", "jpg", "bmp", "tif", "webp"])
def test_the_header_reader_gives_the_size_cv2_decodes(tmp_path, ext):
    img = np.random.default_rng(1).integers(0, 256, (37, 53, 3), dtype=np.uint8)
    ok, buf = cv2.imencode(f".{ext}", img)
    assert ok
    (tmp_path / f"a.{ext}").write_bytes(buf.tobytes())
    header = read_image_header(tmp_path / f"a.{ext}")
    assert (header.width, header.height) == (53, 37) and header.bytes_per_pixel >= 3
    assert read_frame(tmp_path / f"a.{ext}")[0].shape == (37, 53, 3)


@pytest.mark.parametrize("ext", sorted(FORGERS))
def test_a_20000_square_frame_header_is_refused_before_decoding_by_sr(tmp_path, capsys, model_file, no_decoding,
                                                                        ext):
    """The tester's case: two 389 KB PNGs declaring 20000x20000 took 3.7 GB and 35 s, then a traceback."""
    clip = tmp_path / "clip"
    clip.mkdir()
    name = "png" if ext == "webp" else ext         # WebP data is read by its signature whatever the name says
    for i in range(2):
        (clip / f"{i:04d}.{name}").write_bytes(FORGERS[ext](20000, 20000))
    assert sum(f.stat().st_size for f in clip.iterdir()) < 1000
    refused(capsys, ["sr", model_file, clip, tmp_path / "out"],
            rf"cannot read image .*0000\.{name}: frame size 20000x20000 \(HxW\) is outside 1\.\.{MAX_SIDE} per side")
    assert not (tmp_path / "out").exists()


def test_calibration_frames_are_bounded_before_decoding(tmp_path, capsys, model_file, no_decoding):
    calib = tmp_path / "calib"
    calib.mkdir()
    for i in range(2):
        (calib / f"{i}.png").write_bytes(forged_png(20000, 20000))
    refused(capsys, ["export", model_file, "--format", "onnx", "--precision", "int8", "--calib", calib,
                     "--out", tmp_path / "q.onnx"], r"0\.png: frame size 20000x20000 \(HxW\) is outside")
    assert not (tmp_path / "q.onnx").exists()


def test_gt_frames_are_bounded_before_decoding(tmp_path, capsys, model_file, no_inference):
    small_clip(tmp_path / "lr" / "a", frames=2)
    gt = tmp_path / "gt" / "a"
    gt.mkdir(parents=True)
    for i in range(2):
        (gt / f"{i:08d}.png").write_bytes(forged_png(64, 20000))
    refused(capsys, ["eval", model_file, "--lr", tmp_path / "lr", "--gt", tmp_path / "gt"],
            r"gt/a/00000000\.png: frame size 20000x64 \(HxW\) is outside")


@pytest.mark.parametrize("size, pattern", [
    ((16000, 8000), rf"8000x16000 \(HxW\) is 128,000,000 pixels, more than the limit of {MAX_PIXELS:,}"),
    ((0, 16), r"frame size 16x0 \(HxW\) is outside"),
])
def test_frames_past_the_pixel_limit_or_empty_are_refused(tmp_path, capsys, model_file, no_decoding, size, pattern):
    clip = tmp_path / "clip"
    clip.mkdir()
    for i in range(2):
        (clip / f"{i}.png").write_bytes(forged_png(*size))
    refused(capsys, ["sr", model_file, clip, tmp_path / "out"], pattern)
    assert not (tmp_path / "out").exists()


def test_decoded_bytes_are_bounded_too(tmp_path):
    """8192x8192 is within the pixel limit; as TIFF with 16 samples of 32 bits it would decode to 4 GiB."""
    data = forged_tiff(8192, 8192).replace(struct.pack("<HHII", 258, 3, 1, 8), struct.pack("<HHII", 258, 3, 1, 32))
    data = data.replace(struct.pack("<HHII", 277, 3, 1, 3), struct.pack("<HHII", 277, 3, 1, 16))
    (tmp_path / "deep.tif").write_bytes(data)
    with pytest.raises(ClipError, match=rf"64 bytes per pixel needs 6,352 MiB to read \(decoded and converted to "
                                        rf"8-bit RGB\), more than the limit of {MAX_FRAME_BYTES // 2**20:,} MiB"):
        read_frame(tmp_path / "deep.tif")


@pytest.mark.parametrize("content, pattern", [
    (forged_png(16, 16)[:20], r"not a readable image file \(the header ends early\)"),
    (b"P6\n16 16\n255\n" + bytes(768), r"not a readable image file \(not PNG, JPEG, BMP, TIFF or WebP data\)"),
    (b"\xff\xd8\xff\xda" + bytes(32), r"not a readable image file \(no frame header"),
])
def test_damaged_or_foreign_image_data_is_one_line(tmp_path, capsys, model_file, no_decoding, content, pattern):
    clip = tmp_path / "clip"
    clip.mkdir()
    (clip / "0.png").write_bytes(content)
    (clip / "1.png").write_bytes(content)
    refused(capsys, ["sr", model_file, clip, tmp_path / "out"], pattern)
    assert not (tmp_path / "out").exists()


def test_frames_of_different_sizes_are_refused_before_inference(tmp_path, capsys, model_file, no_inference):
    clip = small_clip(tmp_path / "clip", frames=3)
    small_clip(tmp_path / "odd", frames=1, h=16, w=24)
    (tmp_path / "odd" / "0000.png").rename(clip / "0003.png")          # the last frame differs
    refused(capsys, ["sr", model_file, clip, tmp_path / "out"],
            r"frame 0003\.png in .* is 16x24 but 0000\.png is 16x16 \(HxW\): all frames must match")
    assert not (tmp_path / "out").exists()


# -- frame names that would collide in the output -------------------------------------------------------------
@pytest.mark.parametrize("names", [("0001.jpg", "0001.png"), ("Frame.png", "frame.PNG")])
def test_two_frames_with_one_name_are_refused(tmp_path, capsys, model_file, no_inference, names):
    clip = small_clip(tmp_path / "clip", frames=2)
    for name in names:
        ok, buf = cv2.imencode(Path(name).suffix.lower(), np.zeros((16, 16, 3), np.uint8))
        (clip / name).write_bytes(buf.tobytes())
    err = refused(capsys, ["sr", model_file, clip, tmp_path / "out"], r"two frames with one name")
    assert all(n in err for n in names), err
    assert not (tmp_path / "out").exists()


def test_the_count_sr_reports_is_the_count_written(tmp_path, capsys, model_file):
    clip = small_clip(tmp_path / "clip", frames=3, names=["a", "b", "c"])
    assert main(["sr", str(model_file), str(clip), str(tmp_path / "out")]) == 0
    assert "wrote 3 frames" in capsys.readouterr().out
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["a.png", "b.png", "c.png"]


def test_a_folder_sink_never_writes_one_frame_over_another(tmp_path):
    with pytest.raises(UserError, match="two output frames would have the same name"):
        FolderSink(tmp_path / "out", names=["x", "X"])
    with pytest.raises(UserError, match=r"frame 1 would overwrite the frame named 00000001\.png"):
        with FolderSink(tmp_path / "out", names=["00000001"]) as sink:
            sink.write(np.zeros((4, 4, 3), np.uint8))
            sink.write(np.zeros((4, 4, 3), np.uint8))       # unnamed: would be 00000001 as well
    assert not (tmp_path / "out").exists()
    with pytest.raises(UserError, match="two output frames would have the same name"):
        write_frames(np.zeros((2, 4, 4, 3), np.uint8), tmp_path / "frames", names=["a", "A"])
    assert not (tmp_path / "frames").exists()


# -- exported ONNX files --------------------------------------------------------------------------------------
def ours_onnx():
    """A file shaped exactly as ``export`` writes one (the real assembler and metadata), around a hand-made step
    graph: a few KB instead of a 40-second trace. The step upsamples x4 and halves the state."""
    pytest.importorskip("onnx")
    from onnx import TensorProto, helper, numpy_helper

    from core.deploy.onnx_graph import assemble_clip_model, base_metadata

    model = tiny_model("basicvsr-uni", 8, 1)          # its spec and width only
    f = TensorProto.FLOAT
    frame, state = ["n", 3, "h", "w"], ["n", 8, "h", "w"]
    step = helper.make_graph(
        [helper.make_node("Resize", ["x_t", "", "scales"], ["sr_t"], mode="nearest", name="up"),
         helper.make_node("Mul", ["h_prev", "gain"], ["h_t"], name="decay")],
        "forward_step",
        [helper.make_tensor_value_info("x_t", f, frame), helper.make_tensor_value_info("x_prev", f, frame),
         helper.make_tensor_value_info("h_prev", f, state)],
        [helper.make_tensor_value_info("sr_t", f, ["n", 3, "H", "W"]), helper.make_tensor_value_info("h_t", f, state)],
        initializer=[numpy_helper.from_array(np.array([1, 1, 4, 4], np.float32), "scales"),
                     numpy_helper.from_array(np.full(1, 0.5, np.float32), "gain")])
    step_model = helper.make_model(step, opset_imports=[helper.make_opsetid("", 18)])
    step_model.ir_version = 10
    return assemble_clip_model(model, {"forward": step_model}, base_metadata(model, "fp32"))


def _body(proto):
    return next(a.g for n in proto.graph.node if n.op_type == "Scan" for a in n.attribute if a.name == "body")


def _set_meta(proto, key, value):
    entry = next((e for e in proto.metadata_props if e.key == key), None) or proto.metadata_props.add()
    entry.key, entry.value = key, value


def _external(location):
    def mutate(proto):
        from onnx import TensorProto

        gain = next(t for t in _body(proto).initializer if t.name == "gain")
        gain.ClearField("raw_data")
        gain.ClearField("float_data")
        gain.data_location = TensorProto.EXTERNAL
        entry = gain.external_data.add()
        entry.key, entry.value = "location", location
    return mutate


def _nan_weight(proto):
    from onnx import numpy_helper

    gain = next(t for t in _body(proto).initializer if t.name == "gain")
    gain.CopyFrom(numpy_helper.from_array(np.array([np.nan], np.float32), "gain"))


def _inf_attribute(proto):
    from onnx import helper

    _body(proto).node.append(helper.make_node("LeakyRelu", ["h_t"], ["unused"], alpha=float("inf"), name="bad"))


def _foreign_op(proto):
    from onnx import helper

    _body(proto).node.append(helper.make_node("Exfiltrate", ["h_t"], ["unused"], domain="com.example", name="x"))
    proto.opset_import.append(helper.make_opsetid("com.example", 1))


def _standard_op_of_a_foreign_domain(proto):
    from onnx import helper

    _body(proto).node.append(helper.make_node("Relu", ["h_t"], ["unused"], domain="com.example", name="x"))


def _renamed_loop(proto):
    next(n for n in proto.graph.node if n.op_type == "Scan").name = "some_loop"


def _no_loop(proto):
    kept = [n for n in proto.graph.node if n.op_type != "Scan"]
    del proto.graph.node[:]
    proto.graph.node.extend(kept)


def _nested_subgraph(proto):
    from onnx import TensorProto, helper

    inner = helper.make_graph([helper.make_node("Identity", ["h_t"], ["o"])], "inner", [],
                              [helper.make_tensor_value_info("o", TensorProto.FLOAT, None)])
    _body(proto).node.append(helper.make_node("If", ["cond"], ["unused"], then_branch=inner, else_branch=inner,
                                              name="hidden"))


@pytest.mark.parametrize("mutate, pattern", [
    (_external("/etc/passwd"), r"tensor 'gain' keeps its values in another file \('/etc/passwd'\)"),
    (_external("weights.bin"), r"tensor 'gain' keeps its values in another file \('weights\.bin'\)"),
    (_nan_weight, r"tensor 'gain' holds NaN or infinite values"),
    (_inf_attribute, r"node 'bad' has a NaN or infinite attribute 'alpha'"),
    (lambda p: _set_meta(p, "ssl_vsr.kept_float", "[\"conv"), r"damaged ssl_vsr.kept_float metadata: not valid JSON"),
    (lambda p: _set_meta(p, "ssl_vsr.spec", "{" * 5000), r"damaged ssl_vsr.spec metadata: refused, JSON nested"),
    (lambda p: _set_meta(p, "ssl_vsr.spec", json.dumps({"variant": "basicvsr-uni", "num_feat": 100000})),
     r"damaged ssl_vsr.spec metadata \(num_feat"),
    (lambda p: _set_meta(p, "ssl_vsr.precision", "int4"), r"unknown ssl_vsr.precision 'int4'"),
    (lambda p: _set_meta(p, "ssl_vsr.flow", "quarter"), r"unknown ssl_vsr.flow 'quarter'"),
    (lambda p: _set_meta(p, "ssl_vsr.version", "2"), r"unknown ssl_vsr.version '2'"),
    (lambda p: _set_meta(p, "ssl_vsr.int8_drop_db", "0.1; rm"), r"'0.1; rm' is not a number"),
    (lambda p: _set_meta(p, "ssl_vsr.meta", "[]"), r"damaged ssl_vsr.meta metadata \(not a JSON dict\)"),
    (lambda p: _set_meta(p, "ssl_vsr.loader", "x"), r"unknown metadata key 'ssl_vsr.loader'"),
    (_foreign_op, r"operators of domain 'com.example'"),
    (_standard_op_of_a_foreign_domain, r"operator 'Relu' of domain 'com.example' is not a standard ONNX operator"),
    (_no_loop, r"expected the loops forward_scan, found none"),
    (_renamed_loop, r"an unexpected subgraph in node 'some_loop'"),
    (_nested_subgraph, r"a subgraph inside the step graph of forward_scan"),
])
def test_an_exported_file_is_checked_before_onnxruntime_sees_it(tmp_path, capsys, monkeypatch, mutate, pattern):
    pytest.importorskip("onnxruntime")
    import onnxruntime

    proto = ours_onnx()
    mutate(proto)
    (tmp_path / "m.onnx").write_bytes(proto.SerializeToString())
    (tmp_path / "weights.bin").write_bytes(np.ones(1, np.float32).tobytes())
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(onnxruntime, "InferenceSession", lambda *a, **k: pytest.fail("onnxruntime saw the file"))
    clip = small_clip(tmp_path / "clip")
    refused(capsys, ["sr", tmp_path / "m.onnx", clip, tmp_path / "out"], pattern)
    assert not (tmp_path / "out").exists()


def test_a_file_shaped_like_ours_passes_the_checks_and_runs(tmp_path, capsys):
    """The control for the refusals above: unchanged, the hand-made file is accepted and streamed."""
    pytest.importorskip("onnxruntime")
    (tmp_path / "m.onnx").write_bytes(ours_onnx().SerializeToString())
    clip = small_clip(tmp_path / "clip")
    assert main(["sr", str(tmp_path / "m.onnx"), str(clip), str(tmp_path / "out")]) == 0
    assert "wrote 2 frames of 64x64" in capsys.readouterr().out
    assert len(list((tmp_path / "out").iterdir())) == 2


# -- checkpoints ----------------------------------------------------------------------------------------------
def _state():
    return {k: v.clone() for k, v in tiny_model("basicvsr-uni", 8, 1).state_dict().items()}


@pytest.mark.filterwarnings("ignore:Sparse CSR tensor support is in beta")
@pytest.mark.parametrize("case, pattern", [
    ("sparse_coo", r"tensor 'conv_last.bias' is stored as sparse_coo, not as the dense tensor"),
    ("sparse_csr", r"tensor 'upconv1.weight' is stored as sparse_csr"),
    ("meta", r"tensor '.*' holds no values \(a meta tensor, saved without its data\)"),
])
def test_checkpoints_holding_tensors_without_dense_data_are_one_line(tmp_path, capsys, case, pattern):
    state = _state()
    if case == "sparse_coo":
        state["conv_last.bias"] = state["conv_last.bias"].to_sparse()
    elif case == "sparse_csr":
        w = state["upconv1.weight"]
        state["upconv1.weight"] = w.reshape(w.shape[0], -1).to_sparse_csr()
    else:
        state = {k: v.to("meta") for k, v in state.items()}
    torch.save({"params": state}, tmp_path / "x.pth")
    for argv in (["info", tmp_path / "x.pth"], ["sr", tmp_path / "x.pth", small_clip(tmp_path / "clip"),
                                                tmp_path / "out"]):
        refused(capsys, argv, pattern)
    assert not (tmp_path / "out").exists()


def _legacy(tmp_path, state: dict[str, torch.Tensor], claim: int | None = None) -> Path:
    """A legacy (pre-1.6, non-zip) checkpoint; ``claim``: the element count its 5-value storage claims instead."""
    path = tmp_path / "legacy.pth"
    torch.save({"params": state}, path, _use_new_zipfile_serialization=False)
    if claim is not None:
        data = path.read_bytes()
        old = b"K\x05N"                                      # BININT1 5 (the element count), view metadata None
        assert data.count(old) == 1
        path.write_bytes(data.replace(old, b"\x8a\x06" + claim.to_bytes(6, "little") + b"N"))   # LONG1 claim
    return path


def test_a_legacy_checkpoint_claiming_4_tib_is_refused_before_allocation(tmp_path, capsys, monkeypatch):
    path = _legacy(tmp_path, {"forward_trunk.main.0.weight": torch.zeros(5)}, claim=1 << 40)
    assert path.stat().st_size < 1000
    monkeypatch.setattr(torch, "load", lambda *a, **k: pytest.fail("torch.load saw the file"))
    refused(capsys, ["info", path], r"its tensors claim 4,39\d,\d{3},\d{3},\d{3} bytes but the file holds only "
                                    r"[\d,]+ bytes of tensor data")
    refused(capsys, ["prune", path, "--ratio", "0.5", "--out", tmp_path / "p.pth"], r"its tensors claim")
    assert not (tmp_path / "p.pth").exists()


def test_legacy_checkpoints_still_load(tmp_path, capsys):
    """The official BasicSR weights are legacy files: the format is bounded, not refused."""
    assert main(["info", str(_legacy(tmp_path, _state())), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["channels"] == 8


def test_the_official_legacy_weights_pass_the_claim_check():
    from core.io.torch_legacy import check_legacy_claims
    from tests.helpers import official

    check_legacy_claims(official("REDS4"))        # reads the pickles only: milliseconds


def test_a_legacy_pickle_naming_something_else_than_a_storage_is_refused(tmp_path, capsys):
    data = _legacy(tmp_path, _state()).read_bytes()
    assert data.count(b"X\x07\x00\x00\x00storage") >= 1
    (tmp_path / "m.pth").write_bytes(data.replace(b"X\x07\x00\x00\x00storage", b"X\x07\x00\x00\x00modules"))
    refused(capsys, ["info", tmp_path / "m.pth"], r"its legacy pickle references 'modules', not a tensor storage")


# -- plan files -----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("text, pattern", [
    ('{"settings": ' + "[" * 200_000 + "]" * 200_000 + "}", rf"JSON nested 200,001 levels deep \(the limit is "
                                                             rf"{MAX_DEPTH}\)"),
    ('{"settings": {"ratio": 0.5, "x": ' + '{"a": ' * 200_000 + "1" + "}" * 200_000 + "}}", r"nested 200,002"),
    ('{"settings": {"ratio": 1e400}}', r"the number 1e400 is not finite"),
    ('{"settings": {"ratio": 0.5, "min_keep": 1e400}}', r"the number 1e400 is not finite"),
    ('{"settings": {"ratio": 0.5, "widths": {"fusion": -1e400}}}', r"the number -1e400 is not finite"),
    ('{"settings": {"ratio": 0.5, "align": NaN}}', r"the number NaN is not finite"),
    ('{"settings": {"ratio": 0.5, "min_keep": ' + "9" * 5000 + "}}", r"a value cannot be read"),
])
def test_a_plan_file_nested_too_deep_or_holding_non_finite_numbers_is_one_line(tmp_path, capsys, text, pattern):
    (tmp_path / "plan.json").write_text(text)
    refused(capsys, ["train", TINY_YAML, "--plan", tmp_path / "plan.json", "--run-dir", tmp_path / "run"], pattern)
    assert not (tmp_path / "run").exists()


# -- training and validation data -----------------------------------------------------------------------------
def _forged_clip(folder: Path, at: int, frames: int = 4) -> Path:
    """A clip of ``frames`` valid 64x64 frames whose frame ``at`` declares 20000x20000 (a few hundred bytes)."""
    small_clip(folder, frames=frames, h=64, w=64)
    assert (folder / f"{at:04d}.png").is_file()
    (folder / f"{at:04d}.png").write_bytes(forged_png(20000, 20000))
    return folder


@pytest.mark.parametrize("where, at", [("data", 0), ("data", 3), ("val", 2), ("lr-only", 1)])
def test_a_20000_square_frame_in_training_or_validation_data_is_refused_before_training(
        tmp_path, capsys, monkeypatch, no_decoding, no_inference, where, at):
    """Training readers used to size a clip from its first PNG header unbounded, then decode every frame: a
    forged frame anywhere in a training, validation or LR-only clip is now refused from its header in one line."""
    clip = _forged_clip(tmp_path / "clips" / "a", at)
    sets = {"data": ["data.root=" + str(clip.parent), "data.lr=BI"],
            "val": ["val.root=" + str(clip), "val.lr_root=null", "data.lr=BI"],
            "lr-only": ["data.kind=lr-only", "data.root=null", "data.lr_root=" + str(clip), "val.root=null",
                        "val.lr_root=null", "stages=[sir, finetune]", "model.weights=" + str(tmp_path / "w.pth"),
                        "sir.distill.sr_weight=1.0", "finetune.distill.sr_weight=1.0"]}[where]
    save_model(tiny_model("basicvsr-uni", 16, 2), tmp_path / "w.pth")
    argv = ["train", TINY_YAML, "--run-dir", tmp_path / "run"] + [a for s in sets for a in ("--set", s)]
    refused(capsys, argv, rf"cannot read image .*a/{at:04d}\.png: frame size 20000x20000 \(HxW\) is outside "
                          rf"1\.\.{MAX_SIDE} per side")
    assert not (tmp_path / "run").exists()          # refused before any work: not even an empty run folder


def test_a_refused_run_leaves_a_folder_it_did_not_create_as_it_was(tmp_path, capsys):
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "notes.txt").write_text("mine")
    clip = _forged_clip(tmp_path / "clips" / "a", 0)
    refused(capsys, ["train", TINY_YAML, "--run-dir", tmp_path / "run", "--set", f"data.root={clip.parent}",
                     "--set", "data.lr=BI"], r"0000\.png: frame size 20000x20000")
    assert (tmp_path / "run" / "notes.txt").read_text() == "mine"


def test_a_training_clip_mixing_frame_sizes_is_refused_at_discovery(tmp_path, capsys, no_inference):
    clip = small_clip(tmp_path / "clips" / "a", frames=4, h=64, w=64)
    small_clip(tmp_path / "odd", frames=1, h=64, w=80)
    (tmp_path / "odd" / "0000.png").replace(clip / "0002.png")
    refused(capsys, ["train", TINY_YAML, "--run-dir", tmp_path / "run", "--set", f"data.root={clip.parent}",
                     "--set", "data.lr=BI"],
            r"frame 0002\.png in .*a is 64x80 but 0000\.png is 64x64 \(HxW\): all frames must match")


def test_refusing_a_forged_training_frame_costs_little_memory(tmp_path):
    """The real entry point in a subprocess: its own peak RSS stays under the refusal budget (500 MB)."""
    from tests.test_untrusted_input import assert_refused, run_entry

    clip = _forged_clip(tmp_path / "clips" / "a", 0)
    rc, err, peak = run_entry(tmp_path, "train", TINY_YAML, "--run-dir", tmp_path / "run",
                              "--set", f"data.root={clip.parent}", "--set", "data.lr=BI")
    assert_refused(rc, err, r"0000\.png: frame size 20000x20000 \(HxW\) is outside", peak)


# -- entries named like frames or videos that are no file to read ---------------------------------------------
@pytest.mark.parametrize("kind, pattern", [
    ("fifo", r"0002\.png is named like a frame but is not a regular file \(a device, FIFO or socket\)"),
    ("device", r"0002\.png is named like a frame but is not a regular file"),
    ("dangling", r"0002\.png is named like a frame but is a symbolic link to nothing: it points to "),
    ("loop", r"0002\.png is named like a frame but is a loop of symbolic links"),
])
def test_an_entry_named_like_a_frame_that_is_no_file_is_refused_not_skipped(tmp_path, capsys, model_file,
                                                                          no_inference, kind, pattern):
    """Such an entry used to be skipped without a word: 'wrote 2 frames' from a clip of three names."""
    import os

    clip = small_clip(tmp_path / "clip", frames=2)
    if kind == "fifo":
        os.mkfifo(clip / "0002.png")
    else:
        (clip / "0002.png").symlink_to({"device": Path("/dev/null"), "loop": clip / "0002.png"}.get(
            kind, tmp_path / "gone.png"))
    refused(capsys, ["sr", model_file, clip, tmp_path / "out"], pattern)
    assert not (tmp_path / "out").exists()


def test_a_video_path_that_is_a_device_says_so(tmp_path, capsys, model_file):
    (tmp_path / "clip.mp4").symlink_to("/dev/zero")
    refused(capsys, ["sr", model_file, tmp_path / "clip.mp4", tmp_path / "out"],
            r"cannot read video .*clip\.mp4: not a regular file \(a folder, device, FIFO or socket\)")


@pytest.mark.parametrize("which", ["input", "output"])
def test_a_symbolic_link_loop_as_input_or_output_is_one_line(tmp_path, capsys, model_file, which):
    """Path.resolve raised RuntimeError('Symlink loop ...') out of the output rule: a traceback."""
    (tmp_path / "loop").symlink_to(tmp_path / "loop")
    clip = small_clip(tmp_path / "clip")
    argv = ["sr", model_file, tmp_path / "loop", tmp_path / "out"] if which == "input" else \
        ["sr", model_file, clip, tmp_path / "loop"]
    pattern = (r"loop(: | \()a loop of symbolic links\)?$" if which == "input" else
               r"loop is a symbolic link: refusing to write through it")      # no output is written through a link
    refused(capsys, argv, pattern)
