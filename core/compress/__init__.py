"""``compress``: the recipe from a checkpoint and the user's footage to a fast, verified file (see ``run``)."""
from .footage import Footage, JudgedClip, read_footage
from .run import CompressRequest, CompressResult, compress

__all__ = ["CompressRequest", "CompressResult", "Footage", "JudgedClip", "compress", "read_footage"]
