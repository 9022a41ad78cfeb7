"""Scale factors, masking and physical pruning: pruned == masked, ratio 0 == original."""
import copy

import pytest
import torch

from core.io.checkpoint import load_checkpoint
from core.io.frames import frames_to_tensor, read_clip
from core.ssl import attach_scale_factors, compute_scores, fold_scale_factors, make_plan, mask_units, prune_to_plan
from tests.helpers import official, random_clip, tiny_model

RATIOS = [0.0, 0.3, 0.5, 0.9]


def run(model, x):
    with torch.no_grad():
        return model(x)


def masked_and_pruned(model, plan):
    masked = copy.deepcopy(model)
    attach_scale_factors(masked)
    mask_units(masked, {l.name: l.pruned for l in plan.layers})
    return masked, prune_to_plan(masked, plan)


@pytest.mark.parametrize("variant", ["basicvsr", "basicvsr-uni"])
def test_unit_scale_factors_leave_the_output_unchanged(variant):
    model = tiny_model(variant)
    x = random_clip()
    scaled = copy.deepcopy(model)
    attach_scale_factors(scaled)
    assert (run(scaled, x) - run(model, x)).abs().max() <= 1e-6
    assert torch.equal(run(fold_scale_factors(scaled), x), run(model, x))


@pytest.mark.parametrize("variant", ["basicvsr", "basicvsr-uni"])
@pytest.mark.parametrize("ratio", RATIOS)
def test_pruned_equals_masked_on_random_frames(variant, ratio):
    model = tiny_model(variant, num_feat=16, num_block=3)
    plan = make_plan(compute_scores(model), ratio)
    masked, pruned = masked_and_pruned(model, plan)
    x = random_clip(3, 24, 28)
    assert (run(pruned, x) - run(masked, x)).abs().max() <= 1e-5
    assert pruned.count_parameters(False) == plan.after.params
    if ratio == 0.0:
        assert torch.equal(run(pruned, x), run(model, x))


def test_pruned_equals_masked_with_trained_scale_factors():
    model = tiny_model("basicvsr", 16, 2)
    gammas = attach_scale_factors(model)
    with torch.no_grad():
        for g in gammas.values():
            g.uniform_(0.2, 1.5)
    plan = make_plan(compute_scores(model, "scale"), 0.5)
    masked = copy.deepcopy(model)
    mask_units(masked, {l.name: l.pruned for l in plan.layers})
    x = random_clip()
    assert (run(prune_to_plan(masked, plan), x) - run(masked, x)).abs().max() <= 1e-5


@pytest.fixture(scope="module")
def real_frames(calendar_dir):
    clip = read_clip(calendar_dir / "BIx4", max_frames=3)
    return frames_to_tensor(clip.frames[:, 40:72, 60:100])


@pytest.mark.parametrize("variant", ["basicvsr", "basicvsr-uni"])
@pytest.mark.parametrize("ratio", RATIOS)
def test_pruned_equals_masked_on_real_frames_with_official_weights(real_frames, variant, ratio):
    model = load_checkpoint(official("REDS4")).model
    if variant == "basicvsr-uni":  # no official uni weights exist: the forward half of the official network
        from tests.test_ssl_plan import uni_from
        model = uni_from(model)
    plan = make_plan(compute_scores(model), ratio)
    masked, pruned = masked_and_pruned(model, plan)
    # float32 differs only by summation order (30 blocks x 3 recurrent steps); float64 shows the algebra is exact
    if variant == "basicvsr-uni":
        x64 = real_frames.double()
        assert (run(pruned.double(), x64) - run(masked.double(), x64)).abs().max() <= 1e-10
    diff32 = (run(pruned.float(), real_frames) - run(masked.float(), real_frames)).abs().max()
    assert diff32 <= (1e-5 if variant == "basicvsr" else 3e-5), diff32
    if ratio == 0.0:
        assert torch.equal(run(pruned, real_frames), run(model, real_frames))


def test_plan_for_another_shape_is_refused():
    plan = make_plan(compute_scores(tiny_model(num_feat=16)), 0.3)
    with pytest.raises(ValueError, match="different shape"):
        prune_to_plan(tiny_model(num_feat=8), plan)


def test_pruned_network_can_be_pruned_again():
    model = tiny_model("basicvsr", 16, 2)
    first = prune_to_plan(model, make_plan(compute_scores(model), 0.3))
    plan = make_plan(compute_scores(first), 0.3)
    masked, pruned = masked_and_pruned(first, plan)
    x = random_clip()
    assert (run(pruned, x) - run(masked, x)).abs().max() <= 1e-5


@pytest.mark.parametrize("variant", ["basicvsr", "basicvsr-uni"])
def test_channels_last_inference_equals_the_plain_layout(variant):
    # Channels-last inference takes the row-gather / in-place row-add path for the RSC index ops.
    model = tiny_model(variant, num_feat=16, num_block=3)
    pruned = prune_to_plan(model, make_plan(compute_scores(model), 0.5))
    x = random_clip(3, 24, 28)
    plain = run(pruned, x)
    fast = run(copy.deepcopy(pruned).to(memory_format=torch.channels_last), x)
    assert (fast - plain).abs().max() <= 1e-5


def test_a_pruned_block_leaves_its_input_alone():
    model = tiny_model("basicvsr", num_feat=16, num_block=3)
    pruned = prune_to_plan(model, make_plan(compute_scores(model), 0.5))
    block = next(b for b in pruned.forward_trunk.blocks if b.writes is not None)
    x = torch.rand(1, 16, 12, 10).to(memory_format=torch.channels_last)
    before = x.clone()
    with torch.no_grad():
        out = block(x)
        assert torch.equal(x, before)
        assert torch.equal(block.update_(x), out)  # the trunk's in-place path gives the same stream
