"""User-facing errors: one class per kind of bad input, each carrying a one-line message.

The CLI prints ``str(err)`` and exits non-zero; the GUI shows it in a dialog. Anything that is not a
``UserError`` is a bug and keeps its traceback.
"""


MAX_MESSAGE = 400


def one_line(text: object, limit: int = MAX_MESSAGE) -> str:
    """``text`` as one readable line: whitespace runs (newlines too) become one space, cut at ``limit``.

    Why: messages quote untrusted content (a YAML value, a tensor name); a message must never span lines
    or grow with the input.
    """
    flat = " ".join(str(text).split())
    return flat if len(flat) <= limit else flat[: limit - 3] + "..."


class UserError(Exception):
    """A problem with what the user gave us (file, folder, config, ratio), explained in one line."""

    def __str__(self) -> str:
        return one_line(super().__str__())


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
