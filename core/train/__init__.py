"""The training engine: config → datasets → pretrain / SIR / prune / finetune, observable through events."""
from .config import TrainConfig, default_config
from .config_load import load_config
from .pipeline import TrainResult, run_training

__all__ = ["TrainConfig", "TrainResult", "default_config", "load_config", "run_training"]
