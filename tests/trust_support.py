"""What every trust test of issue 29 asserts about a refusal: one ``error:`` line on stderr, exit 2, every file the
user had byte for byte as it was, and (run in a fresh process) the refusal's peak memory."""
from __future__ import annotations

import hashlib
import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Sequence

from core.cli import main
from tests.conftest import ROOT

PEAK_LIMIT_MIB = 500

# The peak is this process image's own (VmHWM: since exec). ru_maxrss is not: Linux carries the larger of the
# parent's size at fork over exec, so a refusal measured from a grown test process read 560-630 MiB.
_MEASURED_MAIN = """
import json, resource, sys
from core.cli import main
code = main(json.loads(sys.argv[1]))
try:
    with open("/proc/self/status") as fh:
        peak = next(int(l.split()[1]) for l in fh if l.startswith("VmHWM:")) / 1024
except (OSError, StopIteration):
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps({"code": code, "peak_mib": peak}))
"""


def checksums(*roots: Path) -> dict[str, str]:
    """SHA-256 of every regular file under ``roots`` (links listed by their target text, never followed)."""
    sums = {}
    for root in roots:
        for p in sorted([root, *root.rglob("*")] if root.is_dir() else [root]):
            if p.is_symlink():
                sums[str(p)] = "link:" + str(p.readlink())
            elif p.is_file():
                sums[str(p)] = hashlib.sha256(p.read_bytes()).hexdigest()
    return sums


def assert_one_line(err: str, pattern: str) -> str:
    assert err.startswith("error: ") and err.count("\n") == 1 and "Traceback" not in err, err
    assert re.search(pattern, err), err
    return err


def refused(capsys, argv: Sequence[object], pattern: str) -> str:
    """``main(argv)`` in this process exits 2 with exactly one ``error:`` line matching ``pattern``."""
    assert main([str(a) for a in argv]) == 2
    return assert_one_line(capsys.readouterr().err, pattern)


def refused_measured(argv: Sequence[object], pattern: str, cwd: Path | None = None, timeout: float = 60) -> float:
    """As ``refused`` in a fresh process (a hang fails by ``timeout``); returns the process's peak memory in MiB,
    asserted under ``PEAK_LIMIT_MIB``."""
    proc = subprocess.run([sys.executable, "-c", _MEASURED_MAIN, json.dumps([str(a) for a in argv])],
                          capture_output=True, text=True, timeout=timeout, cwd=cwd or ROOT,
                          env={**os.environ, "PYTHONPATH": str(ROOT)})
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert result["code"] == 2, proc.stderr
    assert_one_line(proc.stderr, pattern)
    assert result["peak_mib"] < PEAK_LIMIT_MIB, result
    return result["peak_mib"]
