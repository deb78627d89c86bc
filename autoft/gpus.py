"""How many GPUs this machine's torch would use, found without importing torch where that can be done.

The study process counts GPUs to decide how many trial workers to start, and each worker spends its
first seconds importing torch and transformers: importing torch first just to count (4.5 s on an H100
machine, docs/performance.md) would hold every worker back that long. NVML answers in milliseconds,
and it is what ``torch.cuda.device_count()`` asks too. Light on purpose (the standard library only).
"""

from __future__ import annotations

import ctypes
import importlib.util
import os
import re
from collections.abc import Callable
from pathlib import Path


def gpu_ids(setting: str | tuple[int, ...] | list[int]) -> list[int]:
    """GPU indices to use: "auto" is every GPU torch sees, "none" is none, or a list of indices."""
    if setting == "none":
        return []
    if setting == "auto":
        return list(range(gpu_count()))
    return list(setting)


def gpu_count() -> int:
    """``torch.cuda.device_count()``, without importing torch where NVML can answer for it."""
    if not device_files():
        return 0  # no GPU driver: torch would see none
    count = nvml_count()
    if count is None:
        import torch

        count = torch.cuda.device_count()  # asks NVML itself; CUDA stays uninitialised here
    return count


def device_files() -> bool:
    """Whether this machine has the device files a GPU torch could use needs: NVIDIA's, ROCm's /dev/kfd,
    or WSL2's /dev/dxg (elsewhere, such as macOS, torch is asked)."""
    if not Path("/dev").is_dir() or not Path("/proc").is_dir():
        return True  # not Linux: no cheap answer, ask torch
    files = ("/dev/kfd", "/dev/nvidiactl", "/dev/dxg")
    return any(Path(f).exists() for f in files) or any(Path("/dev").glob("nvidia[0-9]*"))


def nvml_count() -> int | None:
    """The GPUs torch would see, counted as torch counts them (NVML, then ``CUDA_VISIBLE_DEVICES``).

    None where only torch can say: a torch built without CUDA (it sees none) or for ROCm, no NVML,
    or ``CUDA_VISIBLE_DEVICES`` naming devices by UUID or otherwise than by plain indices.
    """
    if not Path("/dev/nvidiactl").exists() or torch_cuda_build() is not True:
        return None
    return count_visible(os.environ.get("CUDA_VISIBLE_DEVICES"), _nvml_raw_count)


def count_visible(value: str | None, raw_count: Callable[[], int | None]) -> int | None:
    """The GPUs of ``raw_count()`` that ``CUDA_VISIBLE_DEVICES`` (``value``) leaves, as torch counts them;
    None where its value is not plain indices or ``raw_count`` cannot say."""
    if value is None:
        return raw_count()
    visible = visible_indices(value)
    if not visible:
        return None if visible is None else 0
    raw = raw_count()
    if raw is None:
        return None
    return next((i for i, index in enumerate(visible) if index >= raw), len(visible))  # as torch trims the list


def visible_indices(value: str) -> list[int] | None:
    """``CUDA_VISIBLE_DEVICES`` as a list of indices; None where it is not plain indices (UUIDs, say).

    As CUDA reads it: "" is no device, an index seen twice is no device at all, and the list ends at
    the first negative index.
    """
    if not value.strip():
        return []
    indices: list[int] = []
    for part in value.split(","):
        part = part.strip()
        if not re.fullmatch(r"[+-]?\d+", part):
            return None
        index = int(part)
        if index < 0:
            break
        if index in indices:
            return []
        indices.append(index)
    return indices


def torch_cuda_build() -> bool | None:
    """Whether the installed torch was built for CUDA (not CPU-only, not ROCm), read from its
    ``version.py`` without importing it; None where that file does not say."""
    try:
        spec = importlib.util.find_spec("torch")
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    try:
        text = (Path(next(iter(spec.submodule_search_locations))) / "version.py").read_text()
    except OSError:
        return None
    return cuda_build_of(text)


def cuda_build_of(version_py: str) -> bool | None:
    """Whether a torch ``version.py`` is a CUDA build's; None where it does not say."""
    found = {
        m.group(1): m.group(2)
        for m in re.finditer(r"^(cuda|hip)\s*(?::[^=\n]*)?=\s*(.+?)\s*$", version_py, flags=re.MULTILINE)
    }
    if "cuda" not in found or "hip" not in found:
        return None
    return found["cuda"] != "None" and found["hip"] == "None"


def _nvml_raw_count() -> int | None:
    """Every NVIDIA GPU the driver has, from NVML; None where NVML does not answer."""
    try:
        nvml = ctypes.CDLL("libnvidia-ml.so.1")
        init, get_count, shutdown = nvml.nvmlInit_v2, nvml.nvmlDeviceGetCount_v2, nvml.nvmlShutdown
    except (OSError, AttributeError):  # no NVML, or one too old to have these calls
        return None
    if init() != 0:
        return None
    try:
        count = ctypes.c_uint(0)
        if get_count(ctypes.byref(count)) != 0:
            return None
        return int(count.value)
    finally:
        shutdown()
