"""Checkpoints of every layout load; every bad file is refused with a one-line reason."""
import re

import numpy as np
import pytest
import torch

from core.errors import CheckpointError
from core.io.checkpoint import load_checkpoint, save_model
from core.models.basicvsr import BasicVSR
from core.models.spec import BlockSpec
from tests.helpers import official, random_clip, tiny_model


def to_mmagic(state):
    """BasicSR names → MMagic/mmedit BasicVSRNet names, written out independently of the loader."""
    out = {}
    for k, v in state.items():
        m = re.match(r"spynet\.basic_module\.(\d+)\.basic_module\.(\d+)\.(weight|bias)$", k)
        if m:
            k = f"spynet.basic_module.{m[1]}.basic_module.{int(m[2]) // 2}.conv.{m[3]}"
        k = k.replace("upconv1.", "upsample1.upsample_conv.").replace("upconv2.", "upsample2.upsample_conv.")
        k = k.replace("backward_trunk.", "backward_resblocks.").replace("forward_trunk.", "forward_resblocks.")
        out[f"generator.{k}"] = v
    out["step_counter"] = torch.zeros(1)
    return out


def outputs(model, x):
    with torch.no_grad():
        return model(x)


def test_mmagic_keys_reproduce_the_golden_output(golden, tmp_path):
    state = torch.load(official("REDS4"), weights_only=True)["params"]
    path = tmp_path / "mmagic.pth"
    torch.save({"meta": {"mmedit_version": "0.x"}, "state_dict": to_mmagic(state)}, path)
    loaded = load_checkpoint(path)
    assert loaded.source_format == "mmagic"
    out = outputs(loaded.model, torch.from_numpy(golden["basicvsr_in"]))
    assert np.abs(out.numpy() - golden["basicvsr_out"]).max() <= 1e-4


@pytest.mark.parametrize("wrap, fmt", [
    (lambda s: {"params": s}, "basicsr"),
    (lambda s: {"params_ema": s, "params": {k: v * 0 for k, v in s.items()}}, "basicsr"),
    (lambda s: s, "plain"),
    (lambda s: {"state_dict": to_mmagic(s)}, "mmagic"),
    (lambda s: to_mmagic(s), "mmagic"),
])
def test_all_layouts_load_to_the_same_network(tmp_path, wrap, fmt):
    model = tiny_model("basicvsr", 16, 2)
    path = tmp_path / "ckpt.pth"
    torch.save(wrap(model.state_dict()), path)
    loaded = load_checkpoint(path)
    assert loaded.source_format == fmt
    x = random_clip()
    assert torch.equal(outputs(loaded.model, x), outputs(model, x))


@pytest.mark.parametrize("variant", ["basicvsr", "basicvsr-uni"])
def test_variant_channels_and_blocks_are_inferred(tmp_path, variant):
    model = tiny_model(variant, num_feat=12, num_block=3)
    torch.save({"params": model.state_dict()}, tmp_path / "c.pth")
    spec = load_checkpoint(tmp_path / "c.pth").spec
    assert (spec.variant, spec.num_feat, spec.num_block) == (variant, 12, 3)


def test_model_file_round_trip_of_a_pruned_network(tmp_path):
    model = tiny_model("basicvsr", 8, 2)
    spec = model.spec.with_(forward_blocks=(BlockSpec(3, (0, 4, 6), (2,)), BlockSpec(8)), upconv1=5, conv_hr=7)
    pruned = BasicVSR(spec).eval()
    save_model(pruned, tmp_path / "p.pth", {"ratio": 0.3})
    loaded = load_checkpoint(tmp_path / "p.pth")
    assert loaded.is_pruned and loaded.meta == {"ratio": 0.3} and loaded.spec == spec
    x = random_clip()
    assert torch.equal(outputs(loaded.model, x), outputs(pruned, x))
    raw = torch.load(tmp_path / "p.pth", weights_only=True)   # no pickled classes inside
    assert isinstance(raw["spec"], str)


# -- refusals -----------------------------------------------------------------------------------------
class Evil:
    def __reduce__(self):
        return (print, ("this must never run",))


def expect(path, message):
    with pytest.raises(CheckpointError, match=message) as info:
        load_checkpoint(path)
    assert "\n" not in str(info.value)


def test_missing_file(tmp_path):
    expect(tmp_path / "nope.pth", "no such file")


def test_directory(tmp_path):
    expect(tmp_path, "not a file")


def test_not_a_torch_file(tmp_path):
    (tmp_path / "x.pth").write_text("hello")
    expect(tmp_path / "x.pth", "not a PyTorch checkpoint")


def test_pickled_code_is_refused(tmp_path, capsys):
    torch.save({"params": Evil()}, tmp_path / "evil.pth")
    expect(tmp_path / "evil.pth", "refused, it holds pickled Python objects")
    assert "must never run" not in capsys.readouterr().out


def test_not_a_basicvsr(tmp_path):
    torch.save({"params": {"conv.weight": torch.zeros(3, 3, 3, 3)}}, tmp_path / "x.pth")
    expect(tmp_path / "x.pth", "not a BasicVSR checkpoint")
    torch.save([1, 2, 3], tmp_path / "y.pth")
    expect(tmp_path / "y.pth", "not a BasicVSR checkpoint")


def test_missing_keys_are_named(tmp_path):
    state = tiny_model().state_dict()
    del state["conv_hr.weight"], state["fusion.bias"]
    torch.save({"params": state}, tmp_path / "x.pth")
    expect(tmp_path / "x.pth", "missing keys .*conv_hr.weight")


def test_wrong_shape_is_named(tmp_path):
    state = tiny_model().state_dict()
    state["conv_last.weight"] = torch.zeros(3, 16, 5, 5)
    torch.save({"params": state}, tmp_path / "x.pth")
    expect(tmp_path / "x.pth", r"tensor 'conv_last.weight' has shape \(3, 16, 5, 5\), expected \(3, 64, 3, 3\)")


def test_unexpected_keys_are_named(tmp_path):
    state = tiny_model().state_dict()
    state["edvr.extra"] = torch.zeros(1)
    torch.save(state, tmp_path / "x.pth")
    expect(tmp_path / "x.pth", "unexpected keys edvr.extra")


def test_inconsistent_pruned_file(tmp_path):
    model = tiny_model("basicvsr-uni", 8, 1)
    save_model(model, tmp_path / "m.pth")
    raw = torch.load(tmp_path / "m.pth", weights_only=True)
    raw["spec"] = raw["spec"].replace('"reads": null', '"reads": [0, 12]', 1)
    torch.save(raw, tmp_path / "bad.pth")
    expect(tmp_path / "bad.pth", "inconsistent pruned spec: forward_blocks\\[0\\].reads index 12 is outside 0..7")
    spec = model.spec.with_(forward_blocks=(BlockSpec(8, (0, 1, 2)),))
    raw = torch.load(tmp_path / "m.pth", weights_only=True)
    import json
    raw["spec"] = json.dumps(spec.to_json())     # indices fine, tensors of the wrong width
    torch.save(raw, tmp_path / "bad2.pth")
    expect(tmp_path / "bad2.pth", "tensor 'forward_trunk.main.2.0.conv1.weight' has shape")
