"""Where int8 quantization writes its working files (graph copies, calibration tables), swept after a kill.

Why: onnxruntime's quantizer works on files, and they lived in a ``tempfile.TemporaryDirectory`` of the system temp
folder; a ``kill -9`` during an int8 export left that folder there for ever. It is now a scratch folder of the
streaming engine's kind (``core.stream.scratch``): it holds an ``flock`` on its owner file while its process lives,
and the next int8 quantization removes every such folder whose lock is free (as the next writer of an output removes
the partials a killed writer left).
"""
from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Iterator

from ..stream.scratch import scratch_dir

INT8_PREFIX = ".ssl-vsr-int8-"


@contextlib.contextmanager
def int8_work_dir() -> Iterator[Path]:
    """A private working folder for one quantization, removed on any exit and swept by the next after a kill."""
    with scratch_dir(prefix=INT8_PREFIX) as scratch:
        yield scratch.path
