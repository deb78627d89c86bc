"""``python -m benchmarks``: the Hugging Face Trainer and autoft side by side, in one run.

Modes: ``throughput`` (one training run each on the same tokens), ``search`` (a hyperparameter search
each, same space and budget), ``all`` (both), ``quickstart`` (the README's quickstart, timed). Prints a
table of both sides with the ratios autoft / Trainer and writes everything to a JSON file.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from . import report
from .common import environment, held_out_rows, load_average, load_subsets

DEFAULT_DATA = str(Path(__file__).resolve().parents[2] / "shared" / "data" / "imdb")  # ../shared beside the repo

#: defaults per machine: (gpu, cpu, smoke); throughput and search rows differ on a GPU
PRESETS = {
    "gpu": {
        "max_length": 256,
        "batch_size": 32,
        "epochs": 1,
        "throughput_rows": 25_000,
        "search_rows": 5_000,
        "val_rows": 2_000,
        "trials": 8,
        "dataloader_workers": 2,
    },
    "cpu": {
        "max_length": 64,
        "batch_size": 32,
        "epochs": 1,
        "throughput_rows": 200,
        "search_rows": 200,
        "val_rows": 100,
        "trials": 2,
        "dataloader_workers": 0,
    },
    "smoke": {
        "max_length": 32,
        "batch_size": 16,
        "epochs": 1,
        "throughput_rows": 32,
        "search_rows": 32,
        "val_rows": 16,
        "trials": 1,
        "dataloader_workers": 0,
    },
}


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__.splitlines()[0])
    p.add_argument("--mode", choices=["throughput", "search", "all", "quickstart"], default="all")
    p.add_argument("--model", default="minilm", help="packaged short name, local folder or hub id (default minilm)")
    p.add_argument("--data", type=Path, default=Path(DEFAULT_DATA), help="folder with train.parquet, test.parquet")
    p.add_argument("--max-length", type=int, help="tokens per text (GPU 256, CPU 64)")
    p.add_argument("--batch-size", type=int, help="throughput batch size (GPU and CPU 32)")
    p.add_argument("--epochs", type=int, help="throughput epochs (1)")
    p.add_argument("--train-rows", type=int, help="training rows (GPU: 25,000 throughput, 5,000 search; CPU 400)")
    p.add_argument("--val-rows", type=int, help="validation rows (GPU 2,000, CPU 200)")
    p.add_argument("--trials", type=int, help="search trials per side (GPU 8, CPU 2)")
    p.add_argument("--precision", choices=["fp32", "bf16", "fp16"], help="bf16 on CUDA, fp32 on CPU")
    p.add_argument("--device", choices=["auto", "cpu", "cuda"], default="auto")
    p.add_argument("--dataloader-workers", type=int, help="Trainer DataLoader workers (GPU 2 as the reference, CPU 0)")
    p.add_argument("--repeats", type=int, default=1, help="throughput runs per side; the median is reported")
    p.add_argument("--search-first", choices=["trainer", "autoft"], default="trainer", help="which search runs first")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--smoke", action="store_true", help="tiny settings for CI (about a minute on 2 CPU cores)")
    p.add_argument("--workdir", type=Path, help="keep subsets, study files, run folders and logs here")
    p.add_argument("--out", type=Path, default=Path("results.json"), help="where to write the JSON")
    return p


def settings(args: argparse.Namespace) -> dict:
    """The resolved settings: flags, else the preset for this machine."""
    import torch

    device = args.device if args.device != "auto" else ("cuda" if torch.cuda.is_available() else "cpu")
    preset = PRESETS["smoke" if args.smoke else "gpu" if device == "cuda" else "cpu"]

    def pick(flag, key):
        return flag if flag is not None else preset[key]

    return {
        "preset": "smoke" if args.smoke else "gpu" if device == "cuda" else "cpu",
        "mode": args.mode,
        "model": args.model,
        "data": str(args.data),
        "device": device,
        "precision": args.precision or ("bf16" if device == "cuda" else "fp32"),
        "max_length": pick(args.max_length, "max_length"),
        "batch_size": pick(args.batch_size, "batch_size"),
        "epochs": pick(args.epochs, "epochs"),
        "throughput_train_rows": pick(args.train_rows, "throughput_rows"),
        "search_train_rows": pick(args.train_rows, "search_rows"),
        "val_rows": pick(args.val_rows, "val_rows"),
        "trials": pick(args.trials, "trials"),
        "dataloader_workers": pick(args.dataloader_workers, "dataloader_workers"),
        "repeats": args.repeats,
        "search_first": args.search_first,
        "seed": args.seed,
    }


def run_throughput(cfg: dict) -> dict:
    from autoft.features import encode
    from autoft.models import BaseModel, load_tokenizer, resolve

    from .throughput import LoopSettings, measure

    data = load_subsets(Path(cfg["data"]), cfg["throughput_train_rows"], cfg["val_rows"], cfg["seed"])
    ref = resolve(cfg["model"], Path.cwd())
    tokenizer = load_tokenizer(ref)
    started = time.perf_counter()
    train = encode(tokenizer, data.train.text.tolist(), data.train.label.to_numpy(), cfg["max_length"])
    val = encode(tokenizer, data.validation.text.tolist(), data.validation.label.to_numpy(), cfg["max_length"])
    tokenize_s = time.perf_counter() - started
    labels = int(max(train.labels.max(), val.labels.max())) + 1
    base = BaseModel(ref, tuple(str(i) for i in range(labels)))
    s = LoopSettings(
        batch_size=cfg["batch_size"],
        epochs=cfg["epochs"],
        precision=cfg["precision"],
        dataloader_workers=cfg["dataloader_workers"],
        seed=cfg["seed"],
    )
    sides = measure(base, tokenizer, train, val, s, cfg["device"], cfg["repeats"])
    return {
        **sides,
        "train_rows": len(train),
        "validation_rows": len(val),
        "validation_source": data.validation_source,
        "mean_tokens_per_text": float(train.lengths.mean()),
        "tokenize_s": tokenize_s,
        "settings": s.__dict__,
    }


def run_search(cfg: dict, workdir: Path) -> dict:
    from autoft.models import resolve

    from . import search

    data = load_subsets(Path(cfg["data"]), cfg["search_train_rows"], cfg["val_rows"], cfg["seed"])
    folder = workdir / "data"
    folder.mkdir(parents=True, exist_ok=True)
    files = {split: folder / f"{split}.parquet" for split in ("train", "validation", "test")}
    data.train.to_parquet(files["train"])
    data.validation.to_parquet(files["validation"])
    held_out_rows(Path(cfg["data"]), cfg["val_rows"], cfg["seed"]).to_parquet(files["test"])
    local = Path(cfg["model"]).expanduser()
    s = search.SearchSettings(
        model=str(local.resolve()) if local.is_dir() else cfg["model"],  # the study file lives elsewhere
        model_path=resolve(cfg["model"], Path.cwd()).path,
        max_length=cfg["max_length"],
        trials=cfg["trials"],
        precision=cfg["precision"],
        device=cfg["device"],
        dataloader_workers=cfg["dataloader_workers"],
        seed=cfg["seed"],
    )
    order = ("trainer", "autoft") if cfg["search_first"] == "trainer" else ("autoft", "trainer")
    sides = search.run(workdir, files, s, order)
    return {
        **sides,
        "train_rows": len(data.train),
        "validation_rows": len(data.validation),
        "validation_source": data.validation_source,
        "test_rows": cfg["val_rows"],
        "space": search.SPACE,
        "order": list(order),
    }


def run_quickstart(workdir: Path) -> dict:
    from . import quickstart

    return quickstart.run(workdir)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    cfg = settings(args)
    if args.mode != "quickstart" and not (args.data / "train.parquet").is_file():
        print(f"error: --data {args.data} has no train.parquet", file=sys.stderr)
        return 2
    results: dict = {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "command": "python -m benchmarks " + " ".join(argv if argv is not None else sys.argv[1:]),
        "settings": cfg,
        "environment": environment(),
    }
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="autoft-bench-") as tmp:
        workdir = args.workdir or Path(tmp)
        workdir.mkdir(parents=True, exist_ok=True)
        stages = {
            "throughput": lambda: run_throughput(cfg),
            "search": lambda: run_search(cfg, workdir),
            "quickstart": lambda: run_quickstart(workdir),
        }
        chosen = {"all": ["throughput", "search"]}.get(args.mode, [args.mode])
        results["stage_wall_s"] = {}
        for name in chosen:
            print(f"{name} ...", file=sys.stderr, flush=True)
            stage_started = time.perf_counter()
            results[name] = stages[name]()
            results["stage_wall_s"][name] = time.perf_counter() - stage_started
            print(f"{name} done in {results['stage_wall_s'][name]:.1f} s", file=sys.stderr, flush=True)
    results["total_wall_s"] = time.perf_counter() - started
    results["load_average_1m_at_end"] = load_average()
    report.add_ratios(results)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=1, default=str) + "\n")
    env = results["environment"]
    print(
        f"{env['device_name']} · torch {env['torch']} · transformers {env['transformers']} · {cfg['precision']}"
        f" · load average {env['load_average_1m_at_start']} at start, {results['load_average_1m_at_end']} at end"
    )
    print(report.table(results))
    print(f"total {results['total_wall_s']:.1f} s · written to {args.out}")
    return 0
