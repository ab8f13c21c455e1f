"""Provenance of benchmark figures: the machine (cores, CPU model, GPU) and the git commit.

Every benchmark script and ``pmse-graph bench`` put :func:`provenance` beside the figures they
append to ``benchmarks/RESULTS.md``. This module imports torch only to name a GPU, so the light
scripts stay light.
"""

from __future__ import annotations

import os
import platform
import subprocess
from pathlib import Path


def machine_description() -> dict[str, str | int]:
    """Return the core count, CPU model and GPU name of this machine."""
    model = platform.processor() or "unknown CPU"
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.is_file():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    import torch

    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "none"
    return {"cores": os.cpu_count() or 0, "cpu": model, "gpu": gpu}


# files the benchmarks write themselves, which do not make a tree differ from its commit
RECORD_FILE = "benchmarks/RESULTS.md"
RECORD_FOLDER = "benchmarks/plots/"


def git_commit() -> str:
    """Return ``git rev-parse HEAD`` with ``+changes`` when the tree differs from it, or ``"no commit"``.

    Changes to the benchmark records (``RECORD_FILE`` and files under ``RECORD_FOLDER``) do not
    count, so that a second benchmark run after a first one's append names the same commit.
    """
    root = Path(__file__).resolve().parents[2]
    try:
        head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, check=True).stdout.strip()
        # -z gives the paths unquoted, separated by NUL bytes
        status = subprocess.run(["git", "status", "--porcelain", "-z"], cwd=root, capture_output=True, text=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        return "no commit"
    changed = [entry[3:] for entry in status.split("\0") if len(entry) > 3]
    dirty = any(path != RECORD_FILE and not path.startswith(RECORD_FOLDER) for path in changed)
    return head + ("+changes" if dirty else "")


def provenance() -> str:
    """Return one line naming the cores, CPU model, GPU and commit, for a RESULTS.md section."""
    machine = machine_description()
    return f"{machine['cores']} cores, {machine['cpu']}, GPU {machine['gpu']}, commit {git_commit()}"
