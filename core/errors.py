"""User-facing errors: one class per kind of bad input, each carrying a one-line message.

The CLI prints ``str(err)`` and exits non-zero; the GUI shows it in a dialog. Anything that is not a
``UserError`` is a bug and keeps its traceback.
"""


class UserError(Exception):
    """A problem with what the user gave us (file, folder, config, ratio), explained in one line."""


class CheckpointError(UserError):
    """A checkpoint file that cannot be loaded as a BasicVSR model."""


class ClipError(UserError):
    """A frame folder or video that cannot be read as one clip."""


class ConfigError(UserError):
    """A training config with unknown keys or out-of-range values."""


class PlanError(UserError):
    """A pruning request that cannot be planned (ratio out of range, bad override)."""


class DatasetError(UserError):
    """A dataset folder that holds no usable clips."""
