"""Counting GPUs without importing torch: the same count torch gives, or no answer (torch is then asked)."""

from __future__ import annotations

import subprocess
import sys

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from autoft import gpus

# CUDA_VISIBLE_DEVICES values as users write them (and mistype them): indices, negatives, repeats, spaces, UUIDs
_part = st.one_of(
    st.integers(-2, 5).map(str),
    st.integers(0, 5).map(lambda i: f" {i} "),
    st.sampled_from(["", "GPU-1a2b", "MIG-3c", "1gpu", "+1"]),
)
_values = st.one_of(st.none(), st.just(""), st.lists(_part, min_size=1, max_size=5).map(",".join))


@settings(max_examples=300, deadline=None)
@given(value=_values, raw=st.integers(0, 4))
def test_count_is_torchs_or_no_answer(value, raw, monkeypatch_module):
    """Where it answers, it answers what torch.cuda.device_count() would on a machine with ``raw`` GPUs."""
    if value is None:
        monkeypatch_module.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    else:
        monkeypatch_module.setenv("CUDA_VISIBLE_DEVICES", value)
    monkeypatch_module.setattr(torch.cuda, "_raw_device_count_nvml", lambda: raw)
    ours = gpus.count_visible(value, lambda: raw)
    if ours is not None:
        assert ours == torch.cuda._device_count_nvml()
    if value is None or all(p.strip().lstrip("+-").isdigit() for p in value.split(",")):
        assert ours is not None  # plain indices are answered, not left to torch


@pytest.fixture(scope="module")
def monkeypatch_module():
    with pytest.MonkeyPatch.context() as mp:
        yield mp


def test_no_nvml_answer_leaves_it_to_torch():
    assert gpus.count_visible(None, lambda: None) is None
    assert gpus.count_visible("0,1", lambda: None) is None
    assert gpus.count_visible("", lambda: None) == 0  # no device, whatever the driver has


@pytest.mark.parametrize(
    ("version_py", "cuda"),
    [
        ("cuda: Optional[str] = None\nhip: Optional[str] = None\n", False),  # CPU wheel (torch 2.x)
        ("cuda: Optional[str] = '13.0'\nhip: Optional[str] = None\n", True),  # CUDA wheel
        ("cuda: Optional[str] = None\nhip: Optional[str] = '6.4.43482'\n", False),  # ROCm wheel
        ("cuda = '11.8'\nhip = None\n", True),  # older torch, no annotations
        ("__version__ = '2.0.0'\n", None),  # says nothing: ask torch
    ],
)
def test_cuda_build_read_from_version_py(version_py, cuda):
    assert gpus.cuda_build_of(version_py) is cuda


def test_installed_torch_read_as_it_reports():
    assert gpus.torch_cuda_build() is (torch.version.cuda is not None and torch.version.hip is None)


def test_counting_gpus_does_not_import_torch():
    """The study process counts GPUs before its workers start; importing torch there would hold them back."""
    code = "import sys; from autoft import gpus; gpus.gpu_ids('auto'); gpus.nvml_count(); print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    if gpus.device_files() and gpus.nvml_count() is None:
        pytest.skip("a GPU machine whose count only torch can give")
    assert out.strip() == "False"


def test_settings_other_than_auto():
    assert gpus.gpu_ids("none") == []
    assert gpus.gpu_ids([1, 3]) == [1, 3]


class _FakeNvml:
    """libnvidia-ml as ctypes sees it: C calls returning NVML's status codes (0: success)."""

    def __init__(self, count: int, init_status: int = 0):
        self.count, self.init_status, self.shut = count, init_status, False

    def nvmlInit_v2(self):
        return self.init_status

    def nvmlDeviceGetCount_v2(self, ref):
        ref._obj.value = self.count
        return 0

    def nvmlShutdown(self):
        self.shut = True
        return 0


def test_nvml_count_and_its_absence(monkeypatch):
    import ctypes

    lib = _FakeNvml(3)
    monkeypatch.setattr(ctypes, "CDLL", lambda name: lib)
    assert gpus._nvml_raw_count() == 3 and lib.shut  # NVML shut down again after counting
    monkeypatch.setattr(ctypes, "CDLL", lambda name: _FakeNvml(3, init_status=9))  # the driver is not loaded
    assert gpus._nvml_raw_count() is None
    monkeypatch.setattr(ctypes, "CDLL", lambda name: object())  # an NVML without the _v2 calls
    assert gpus._nvml_raw_count() is None

    def missing(name):
        raise OSError(f"{name}: cannot open shared object file")

    monkeypatch.setattr(ctypes, "CDLL", missing)
    assert gpus._nvml_raw_count() is None
