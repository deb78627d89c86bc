"""``python -m benchmarks.carry DIR``: pack what the GPU benchmarks need for a machine without network.

The machines the benchmarks run on have torch, transformers, peft, scikit-learn, pandas, matplotlib, rich
and pluggy, but no network, no optuna and no captum, and take at most 64 MiB. The folder holds:

- ``wheels/``: the packages autoft needs beyond those (``--package``), for the target's Python, no
  dependencies resolved (pip cannot see the target's site-packages from here, so the list is explicit);
- ``minilm.tar.xz``: the packaged MiniLM in fp16 (45 MB instead of 91 MB), widened back to fp32 by setup.sh;
- ``imdb/``: train.parquet and test.parquet with every row, but texts outside the rows the benchmarks'
  data seeds draw (``--seeds``, default 0; ``load_subsets`` and ``held_out_rows`` draw from a permutation of the row
  count) left empty: the same subsets, a fraction of the bytes. The harness refuses rows with an empty text, so
  ``--mode throughput`` (an epoch over all 25,000 reviews) needs the full dataset, not the kit;
- ``setup.sh``: run on the target from the repository root. It installs the wheels into the interpreter
  there (not a venv: the preinstalled packages may live where ``--system-site-packages`` does not see), this
  checkout with ``-e``, and writes the fp32 model to ``/tmp/autoft-carry/minilm``, the folder to pass as
  ``--model``.

Each benchmark run needs its own ``--workdir`` (the harness refuses one that holds an earlier study).
"""

from __future__ import annotations

import argparse
import lzma
import subprocess
import sys
import tarfile
from pathlib import Path

import numpy as np
import pandas as pd

from .common import held_out_order, train_order
from .compare import DEFAULT_DATA, SEARCH_PRESETS

#: what the lent GPU machines lack, with the dependencies they lack too (optuna's; captum's are there)
PACKAGES = [
    "optuna",
    "alembic",
    "sqlalchemy",
    "mako",
    "markupsafe",
    "colorlog",
    "pyyaml",
    "tqdm",
    "tomli-w",
    "captum",
    "setuptools",  # for pip install -e . without build isolation
]

#: the model folder's files the benchmarks read (the weights are written separately, in fp16)
MODEL_FILES = ["config.json", "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "vocab.txt"]

SETUP = """#!/usr/bin/env bash
# Run from the repository root on the machine without network: python -m benchmarks.carry wrote this.
set -euo pipefail
KIT=$(cd "$(dirname "$0")" && pwd)
export PIP_BREAK_SYSTEM_PACKAGES=1 PIP_DISABLE_PIP_VERSION_CHECK=1
python3 -c "import torch, transformers, peft, sklearn, pandas, matplotlib" ||
  { echo "setup.sh: the target lacks a package this kit expects to find there"; exit 3; }
python3 -m pip install -q --no-index --no-deps "$KIT"/wheels/*.whl
python3 -m pip install -q --no-index --no-deps --no-build-isolation -e .
mkdir -p /tmp/autoft-carry && tar xJf "$KIT/minilm.tar.xz" -C /tmp/autoft-carry
python3 - <<'PY'
from pathlib import Path

from safetensors.torch import load_file, save_file

folder = Path("/tmp/autoft-carry/minilm")
weights = load_file(folder / "model16.safetensors")
widened = {k: v.float() if v.is_floating_point() else v for k, v in weights.items()}
save_file(widened, folder / "model.safetensors", metadata={"format": "pt"})
(folder / "model16.safetensors").unlink()
PY
python3 -c "from autoft import gpus; print('setup.sh: GPUs', gpus.gpu_count(), '· model /tmp/autoft-carry/minilm')"
"""


def download_wheels(folder: Path, packages: list[str], python: str, platform: str) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    cmd = [sys.executable, "-m", "pip", "download", "-q", "--no-deps", "--only-binary=:all:", "-d", str(folder)]
    cmd += ["--python-version", python, "--implementation", "cp"]
    for tag in (platform, "manylinux2014_x86_64", "manylinux_2_17_x86_64"):
        cmd += ["--platform", tag]
    subprocess.run([*cmd, *packages], check=True)


def pack_model(source: Path, out: Path) -> None:
    """The model folder's tokenizer and config, and its weights in fp16, as one .tar.xz."""
    import torch
    from safetensors.torch import load_file, save_file

    staging = out.parent / "minilm"
    staging.mkdir(exist_ok=True)
    for name in MODEL_FILES:
        if (source / name).is_file():
            (staging / name).write_bytes((source / name).read_bytes())
    weights = load_file(source / "model.safetensors")
    halved = {k: v.to(torch.float16) if v.is_floating_point() else v for k, v in weights.items()}
    save_file(halved, staging / "model16.safetensors")
    with lzma.open(out, "wb", preset=6) as xz, tarfile.open(fileobj=xz, mode="w") as tar:
        tar.add(staging, arcname="minilm")
    for path in staging.iterdir():
        path.unlink()
    staging.rmdir()


#: rows the GPU preset draws: training and validation from train.parquet, held-out rows from test.parquet
GPU_ROWS = {
    "train": SEARCH_PRESETS["imdb-gpu"]["search_rows"] + SEARCH_PRESETS["imdb-gpu"]["val_rows"],
    "test": SEARCH_PRESETS["imdb-gpu"]["test_rows"],
}


def pack_data(source: Path, out: Path, seeds: list[int], rows: dict[str, int] = GPU_ROWS) -> None:
    """train.parquet and test.parquet, every row kept, texts the seeds never draw emptied.

    The draws are common.train_order's and common.held_out_order's (the first rows of a seeded permutation of
    the row count), so the packed files give the same subsets as the originals.
    """
    out.mkdir(parents=True, exist_ok=True)
    frames = {split: pd.read_parquet(source / f"{split}.parquet", columns=["text", "label"]) for split in rows}
    for split, frame in frames.items():
        keep = np.zeros(len(frame), bool)
        order = train_order if split == "train" else held_out_order
        for seed in seeds:
            keep[order(len(frame), seed)[: rows[split]]] = True
        frame.loc[~keep, "text"] = ""
        frame.to_parquet(out / f"{split}.parquet", compression="zstd", compression_level=19)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.carry", description=__doc__.splitlines()[0])
    p.add_argument("folder", type=Path, help="where to write the kit (carry it with the working tree)")
    p.add_argument(
        "--seeds",
        default="0",
        help="the data seeds (the benchmarks' --seed) whose IMDb rows to keep (default 0: --search-seed and --seeds "
        "vary the searches on --seed's rows, so one data seed serves any number of search seeds)",
    )
    p.add_argument("--data", type=Path, default=DEFAULT_DATA, help=f"IMDb folder (default {DEFAULT_DATA})")
    p.add_argument("--python", default="3.12", help="the target's Python version (default 3.12)")
    p.add_argument("--platform", default="manylinux_2_28_x86_64", help="the target's wheel platform")
    p.add_argument("--package", action="append", help=f"a wheel to carry (repeatable; default {' '.join(PACKAGES)})")
    args = p.parse_args(argv)
    from autoft.models import resolve

    try:
        seeds = [int(s) for s in args.seeds.split(",")]
    except ValueError:
        print(f"error: --seeds {args.seeds}: give integers separated by commas, such as 0,1,2", file=sys.stderr)
        return 2
    for split in ("train", "test"):
        if not (args.data / f"{split}.parquet").is_file():
            print(f"error: --data {args.data}: no {split}.parquet there", file=sys.stderr)
            return 2
    args.folder.mkdir(parents=True, exist_ok=True)
    download_wheels(args.folder / "wheels", args.package or PACKAGES, args.python, args.platform)
    pack_model(Path(resolve("minilm", Path.cwd()).path), args.folder / "minilm.tar.xz")
    pack_data(args.data, args.folder / "imdb", seeds)
    setup = args.folder / "setup.sh"
    setup.write_text(SETUP)
    setup.chmod(0o755)
    size = sum(f.stat().st_size for f in args.folder.rglob("*") if f.is_file())
    print(
        f"{args.folder}: {size / 2**20:.1f} MiB; on the target: bash {args.folder}/setup.sh, then --model "
        f"/tmp/autoft-carry/minilm --data {args.folder}/imdb"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
