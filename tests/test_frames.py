"""Reading and writing clips: folders, videos, dataset trees, conversions and their warnings, errors."""
from __future__ import annotations

import warnings
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from core.errors import ClipError, UserError
from core.io.frames import Clip, find_clips, frames_to_tensor, read_clip, tensor_to_frames, write_frames, write_video
from core.io.image_file import FrameConversionWarning, read_frame


def _rgb(h: int = 16, w: int = 20, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)


def _write(path: Path, img: np.ndarray) -> None:
    """Write with cv2 (BGR on disk for colour images)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    assert cv2.imwrite(str(path), img)


def _clip_folder(folder: Path, names: list[str], h: int = 16, w: int = 20) -> list[np.ndarray]:
    frames = []
    for i, n in enumerate(names):
        img = _rgb(h, w, i)
        _write(folder / n, img[:, :, ::-1])
        frames.append(img)
    return frames


# ---------------------------------------------------------------------------------------------- folders
def test_read_folder_natural_sort_and_rgb(tmp_path):
    names = ["10.png", "2.png", "1.PNG", "frame_3.bmp"]
    frames = _clip_folder(tmp_path / "clip", names)
    (tmp_path / "clip" / "notes.txt").write_text("not a frame")
    clip = read_clip(tmp_path / "clip")
    assert isinstance(clip, Clip) and clip.name == "clip" and clip.fps is None
    assert clip.names == ["1", "2", "10", "frame_3"]
    assert clip.frames.shape == (4, 16, 20, 3) and clip.frames.dtype == np.uint8
    np.testing.assert_array_equal(clip.frames[0], frames[2])  # RGB, lossless png
    np.testing.assert_array_equal(clip.frames[2], frames[0])
    assert clip.source == tmp_path / "clip"
    assert len(read_clip(tmp_path / "clip", max_frames=2)) == 2


def test_conversions_warn_once_per_kind(tmp_path):
    folder = tmp_path / "mixed"
    grey = np.arange(16 * 20, dtype=np.uint8).reshape(16, 20)
    _write(folder / "0.png", grey)
    _write(folder / "1.png", grey)
    deep = np.full((16, 20, 3), 65535, np.uint16)
    deep[0, 0] = [0, 128, 129]  # 128/257 -> 0, 129/257 -> 1 (rounding)
    _write(folder / "2.png", deep)
    bgra = np.dstack([_rgb()[:, :, ::-1], np.full((16, 20), 7, np.uint8)])
    _write(folder / "3.png", bgra)
    with pytest.warns(FrameConversionWarning) as rec:
        clip = read_clip(folder)
    texts = sorted(str(w.message) for w in rec if issubclass(w.category, FrameConversionWarning))
    assert texts == [
        "clip mixed: 16-bit image reduced to 8-bit (round(x / 257)) (1 of 4 frames)",
        "clip mixed: alpha channel dropped (colour kept as stored, not composited) (1 of 4 frames)",
        "clip mixed: grey image expanded to RGB (2 of 4 frames)",
    ]
    np.testing.assert_array_equal(clip.frames[0], np.repeat(grey[:, :, None], 3, 2))
    assert clip.frames[2, 0, 0].tolist() == [1, 0, 0]  # BGR (0,128,129) on disk -> RGB (1, 0, 0)
    assert (clip.frames[2, 1:] == 255).all()
    np.testing.assert_array_equal(clip.frames[3], _rgb())


def test_read_frame_returns_notes(tmp_path):
    _write(tmp_path / "g.png", np.zeros((4, 4), np.uint8))
    img, notes = read_frame(tmp_path / "g.png")
    assert img.shape == (4, 4, 3) and notes == ["grey image expanded to RGB"]
    _write(tmp_path / "c.png", _rgb(4, 4))
    assert read_frame(tmp_path / "c.png")[1] == []
    (tmp_path / "bad.png").write_bytes(b"not a png at all")
    with pytest.raises(ClipError, match=r"cannot read image .*bad\.png"):
        read_frame(tmp_path / "bad.png")


def test_no_warning_for_plain_rgb(tmp_path):
    _clip_folder(tmp_path / "c", ["0.png", "1.png"])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        read_clip(tmp_path / "c")


def test_different_sizes(tmp_path):
    folder = tmp_path / "c"
    _clip_folder(folder, ["0.png", "1.png"])
    _write(folder / "2.png", _rgb(12, 20))
    with pytest.raises(ClipError, match=r"frame 2\.png in .* is 12x20 but 0\.png is 16x20 \(HxW\)"):
        read_clip(folder)


def test_empty_folder(tmp_path):
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "readme.txt").write_text("x")
    with pytest.raises(ClipError, match=r"no image frames in .*empty \(accepted: \.png, \.jpg, \.jpeg, \.bmp"):
        read_clip(tmp_path / "empty")


def test_missing_path_and_other_files(tmp_path):
    with pytest.raises(ClipError, match=r"clip not found: .*nowhere \(no such file or folder\)"):
        read_clip(tmp_path / "nowhere")
    (tmp_path / "a.txt").write_text("x")
    with pytest.raises(ClipError, match=r"a\.txt is neither a folder of frames nor a video"):
        read_clip(tmp_path / "a.txt")
    _write(tmp_path / "one.png", _rgb())
    with pytest.raises(ClipError, match=r"one\.png is a single image, not a clip"):
        read_clip(tmp_path / "one.png")
    with pytest.raises(UserError, match="max_frames must be at least 1"):
        read_clip(tmp_path, max_frames=0)


# ---------------------------------------------------------------------------------------------- video
def test_unreadable_video(tmp_path):
    bad = tmp_path / "x.mp4"
    bad.write_bytes(b"\x00garbage" * 100)
    with pytest.raises(ClipError, match=r"cannot read video .*x\.mp4"):
        read_clip(bad)


def _smooth_clip(t: int = 5, h: int = 48, w: int = 64) -> np.ndarray:
    """Smooth gradients, so a lossy codec stays close."""
    yy, xx = np.mgrid[0:h, 0:w]
    frames = [
        np.stack([(xx * 3 + 8 * i) % 256, yy * 4, np.full_like(xx, 60 + 20 * i)], axis=-1) for i in range(t)
    ]
    return np.asarray(frames, dtype=np.uint8)


@pytest.mark.parametrize("ext", ["mp4", "avi"])
def test_video_round_trip(tmp_path, ext):
    frames = _smooth_clip()
    path = write_video(frames, tmp_path / "out" / f"v.{ext}", fps=12)
    assert path.exists() and [p.name for p in path.parent.iterdir()] == [f"v.{ext}"]  # no temp left
    clip = read_clip(path)
    assert clip.name == "v" and clip.fps == pytest.approx(12)
    assert clip.frames.shape == frames.shape
    diff = np.abs(clip.frames.astype(int) - frames.astype(int))
    assert diff.mean() < 6  # lossy codecs
    assert clip.frames[:, :, :, 2].mean() == pytest.approx(frames[:, :, :, 2].mean(), abs=4)  # RGB order kept
    assert len(read_clip(path, max_frames=2)) == 2


def test_write_video_rejects_unknown_extension(tmp_path):
    with pytest.raises(UserError, match=r"cannot write video .*v\.webm: \.webm is not a video type this tool writes "
                                        r"\(accepted: \.mp4, \.mkv, \.mov, \.avi\)"):
        write_video(_smooth_clip(), tmp_path / "v.webm")


# ---------------------------------------------------------------------------------------------- write frames
def test_write_frames_round_trip(tmp_path):
    frames = np.stack([_rgb(8, 12, i) for i in range(3)])
    paths = write_frames(frames, tmp_path / "o")
    assert [p.name for p in paths] == ["0000.png", "0001.png", "0002.png"]
    assert sorted(p.name for p in (tmp_path / "o").iterdir()) == ["0000.png", "0001.png", "0002.png"]
    np.testing.assert_array_equal(read_clip(tmp_path / "o").frames, frames)
    write_frames(frames[:1], tmp_path / "n", names=["im1"], ext="bmp")
    assert (tmp_path / "n" / "im1.bmp").exists()
    with pytest.raises(UserError, match=r"expected uint8 RGB frames shaped \(T, H, W, 3\)"):
        write_frames(frames.astype(np.float32), tmp_path / "f")
    with pytest.raises(UserError, match="2 names given for 3 frames"):
        write_frames(frames, tmp_path / "f", names=["a", "b"])


# ---------------------------------------------------------------------------------------------- trees
def test_find_clips_single_folder(tmp_path):
    _clip_folder(tmp_path / "c", ["0.png"])
    assert find_clips(tmp_path / "c") == [tmp_path / "c"]


def test_find_clips_reds_tree(tmp_path):
    root = tmp_path / "train_sharp"
    for name in ["010", "2", "000"]:
        _clip_folder(root / name, ["00000000.png", "00000001.png"])
    assert find_clips(root) == [root / "000", root / "2", root / "010"]


def test_find_clips_vimeo_tree(tmp_path):
    root = tmp_path / "sequences"
    for seq in ["00002", "00001"]:
        for sub in ["0010", "0002"]:
            _clip_folder(root / seq / sub, ["im1.png", "im2.png"])
    assert find_clips(root) == [
        root / "00001" / "0002",
        root / "00001" / "0010",
        root / "00002" / "0002",
        root / "00002" / "0010",
    ]


def test_find_clips_errors(tmp_path):
    with pytest.raises(ClipError, match=r"clip folder not found: .*none \(no such folder\)"):
        find_clips(tmp_path / "none")
    (tmp_path / "empty" / "sub").mkdir(parents=True)
    with pytest.raises(ClipError, match=r"no clips under .*empty: expected a folder of frames"):
        find_clips(tmp_path / "empty")


# ---------------------------------------------------------------------------------------------- tensors
def test_tensor_round_trip():
    frames = np.stack([_rgb(6, 7, i) for i in range(2)])
    t = frames_to_tensor(frames)
    assert t.shape == (1, 2, 3, 6, 7) and t.dtype == torch.float32
    assert float(t.min()) >= 0 and float(t.max()) <= 1
    assert float(t[0, 1, 0, 2, 3]) == pytest.approx(frames[1, 2, 3, 0] / 255)
    np.testing.assert_array_equal(tensor_to_frames(t), frames)
    np.testing.assert_array_equal(tensor_to_frames(t[0]), frames)


def test_tensor_to_frames_clamps_and_rounds_like_basicsr_tensor2img():
    # float32 x*255 then round half to even, as BasicSR's tensor2img (numpy round) does
    t = torch.tensor([-0.5, 0.5 / 255, 1.49 / 255, 2.5 / 255, 3.5 / 255, 1.7], dtype=torch.float32).view(1, 1, 1, 1, 6)
    t = t.expand(1, 1, 3, 1, 6)
    out = tensor_to_frames(t)
    assert out.shape == (1, 1, 6, 3)
    expected = np.round(np.clip(t[0, 0, 0, 0].numpy(), 0, 1) * np.float32(255)).astype(np.uint8)
    assert out[0, 0, :, 0].tolist() == expected.tolist()
    assert out[0, 0, [0, 5], 0].tolist() == [0, 255]
    with pytest.raises(UserError, match="batch of one clip"):
        tensor_to_frames(torch.zeros(2, 1, 3, 4, 4))


# ---------------------------------------------------------------------------------------------- demo clip
def test_demo_clip_is_consistent():
    from core.data.degrade import bi_degrade
    from core.io.demo import demo_clip_dir

    root = demo_clip_dir()
    assert find_clips(root) == [root / "BIx4", root / "GT"]
    gt, lr = read_clip(root / "GT"), read_clip(root / "BIx4")
    assert gt.frames.shape == (24, 256, 448, 3) and lr.frames.shape == (24, 64, 112, 3)
    assert gt.names == lr.names == [f"{i:04d}" for i in range(24)]
    np.testing.assert_array_equal(bi_degrade(gt.frames), lr.frames)
    assert (root / "LICENSE.txt").read_text().count("Apache") >= 1
