"""The BasicVSR family: exact to BasicSR on the golden fixture, both variants, any frame size."""
import numpy as np
import pytest
import torch

from core.io.checkpoint import load_checkpoint
from core.models.basicvsr import BasicVSR
from core.models.spec import ArchSpec, BlockSpec, dense_spec
from tests.helpers import official, random_clip, tiny_model


@pytest.mark.parametrize("layout", [torch.contiguous_format, torch.channels_last])  # CPU inference is channels-last
def test_reproduces_basicsr_golden_output(golden, layout):
    model = load_checkpoint(official("REDS4")).model.to(memory_format=layout)
    with torch.no_grad():
        out = model(torch.from_numpy(golden["basicvsr_in"]))
    diff = np.abs(out.numpy() - golden["basicvsr_out"]).max()
    assert diff <= 1e-4, diff


@pytest.mark.parametrize("variant, expected", [("basicvsr", 4_851_011), ("basicvsr-uni", 2_588_419)])
def test_parameter_counts_match_the_paper(variant, expected):
    model = BasicVSR(dense_spec(variant, 64, 30))
    assert model.count_parameters(include_spynet=False) == expected   # 4.9 M and 2.6 M in the paper
    assert model.count_parameters(include_spynet=True) == expected + 1_440_300


def test_uni_has_no_backward_trunk_or_fusion():
    keys = BasicVSR(dense_spec("basicvsr-uni", 16, 2)).state_dict().keys()
    assert not any(k.startswith(("backward_trunk.", "fusion.")) for k in keys)
    assert "upconv1.weight" in keys


@pytest.mark.parametrize("variant", ["basicvsr", "basicvsr-uni"])
@pytest.mark.parametrize("size", [(17, 23), (64, 96), (33, 70)])
def test_any_frame_size(variant, size):
    model = tiny_model(variant)
    x = random_clip(3, *size)
    with torch.no_grad():
        out, hidden = model(x, return_hidden=True)
    assert out.shape == (1, 3, 3, 4 * size[0], 4 * size[1])
    assert hidden["forward"].shape == (1, 16, *size)
    assert ("backward" in hidden) == (variant == "basicvsr")


def test_progress_reports_every_recurrent_step():
    seen = []
    with torch.no_grad():
        tiny_model()(random_clip(4), progress=lambda done, total: seen.append((done, total)))
    assert seen == [(i, 8) for i in range(1, 9)]


def test_a_single_frame_is_refused():
    with pytest.raises(ValueError, match="at least 2 frames"):
        tiny_model()(random_clip(1))


def test_pruned_block_reads_and_writes_subsets():
    spec = dense_spec("basicvsr-uni", 8, 1)
    spec = spec.with_(forward_blocks=(BlockSpec(mid=3, reads=(0, 2, 5), writes=(1, 7)),))
    model = BasicVSR(spec)
    block = model.forward_trunk.blocks[0]
    assert block.conv1.weight.shape == (3, 3, 3, 3) and block.conv2.weight.shape == (2, 3, 3, 3)
    x = torch.randn(1, 8, 5, 5)
    with torch.no_grad():
        y = block(x)
    untouched = [0, 2, 3, 4, 5, 6]
    assert torch.equal(y[:, untouched], x[:, untouched])


def test_spec_json_round_trip_and_validation():
    spec = dense_spec("basicvsr", 8, 2).with_(
        forward_blocks=(BlockSpec(4, (0, 1), (3,)), BlockSpec(8)), fusion=5, upconv1=3)
    assert ArchSpec.from_json(spec.to_json()) == spec
    bad = spec.to_json()
    bad["forward_blocks"][0]["reads"] = [0, 9]
    with pytest.raises(ValueError, match="index 9 is outside 0..7"):
        ArchSpec.from_json(bad)
    bad["forward_blocks"][0]["reads"] = [1, 1]
    with pytest.raises(ValueError, match="strictly increasing"):
        ArchSpec.from_json(bad)
    bad = spec.to_json()
    bad["variant"] = "edvr"
    with pytest.raises(ValueError, match="unknown variant 'edvr'"):
        ArchSpec.from_json(bad)
