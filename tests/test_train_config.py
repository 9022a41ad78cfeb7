"""Config: the paper's defaults, shipped configs load, and every bad key or value is refused by name."""
from __future__ import annotations

from pathlib import Path

import pytest

from core.errors import ConfigError
from core.train.config import default_config
from core.train.config_load import dump_config, load_config

CONFIGS = Path(__file__).resolve().parents[1] / "resources" / "configs"


def test_defaults_are_the_papers():
    c = default_config()
    assert (c.sir.lr, c.sir.delta, c.sir.t1, c.sir.tau, c.sir.ratio) == (2e-4, 1e-4, 5, 0.1, 0.5)
    assert c.sir.gamma_lr is None                      # = network lr, as in the paper
    assert (c.finetune.lr, c.finetune.spynet_lr, c.finetune.charbonnier_eps) == (2e-4, 2.5e-5, 1e-6)
    assert (c.data.patch_size, c.data.clip_length, c.data.batch_size) == (64, 15, 8)
    assert c.stages == ["sir", "finetune"]


@pytest.mark.parametrize("name", ["paper_reds.yaml", "paper_vimeo.yaml", "tiny.yaml"])
def test_shipped_configs_load(name):
    c = load_config(CONFIGS / name)
    assert load_config(None, []).sir.ratio == 0.5
    assert "stages" in dump_config(c)


def test_tiny_paths_are_relative_to_the_file():
    c = load_config(CONFIGS / "tiny.yaml")
    assert Path(c.data.root).is_dir() and Path(c.data.root).name == "GT"


def test_overrides(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    c = load_config(CONFIGS / "tiny.yaml", ["sir.ratio=0.7", "stages=[sir]", "data.cache=c.h5",
                                             "sir.gamma_lr=1e-2"])
    assert c.sir.ratio == 0.7 and c.stages == ["sir"] and c.sir.gamma_lr == 0.01
    assert c.data.cache == str(tmp_path / "c.h5")


@pytest.mark.parametrize("overrides, key", [
    (["sir.ratoi=0.5"], "sir.ratoi"),
    (["optimizer.lr=1"], "optimizer"),
    (["sir.ratio=1.5"], "sir.ratio"),
    (["sir.ratio=0"], "sir.ratio"),
    (["data.clip_length=1"], "data.clip_length"),
    (["finetune.lr=-1"], "finetune.lr"),
    (["sir.t1=2.5"], "sir.t1"),
    (["data.flip=maybe"], "data.flip"),
    (["data.kind=kinetics"], "data.kind"),
    (["stages=[finetune, sir]"], "stages"),
    (["runtime.amp=fp8"], "runtime.amp"),
])
def test_bad_values_name_the_key(overrides, key):
    with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
        load_config(CONFIGS / "tiny.yaml", overrides)


def test_unknown_key_in_file(tmp_path):
    p = tmp_path / "c.yaml"
    p.write_text("sir:\n  ratio: 0.5\n  lamda: 3\n")
    with pytest.raises(ConfigError, match=r"unknown config key sir\.lamda"):
        load_config(p)


def test_malformed_override():
    with pytest.raises(ConfigError, match="key.sub=value"):
        load_config(None, ["sir.ratio"])
