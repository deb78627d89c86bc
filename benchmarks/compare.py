"""``python -m benchmarks``: the Hugging Face Trainer and autoft side by side, in one run.

Modes: ``throughput`` (one training run each on the same tokens), ``search`` (a hyperparameter search
each, same space and budget), ``all`` (both), ``quickstart`` (the README's quickstart, timed). Prints a
table of both sides with the ratios autoft / Trainer and writes everything to a JSON file. ``--preset``
names a search benchmark (``finpb-cpu``, ``imdb-cpu``); ``--seeds N`` repeats the search with N seeds and
summarises the medians; the search's best-so-far score over time goes to a PNG (``--plot``).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from . import report
from .common import environment, held_out_rows, load_average, load_subsets, stratified_split

if TYPE_CHECKING:
    from .search import SearchSettings

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"  # ../shared beside the repo
DEFAULT_DATA = str(SHARED / "imdb")
FINPB_DATA = str(SHARED / "financial_phrasebank" / "allagree.parquet")
#: train and validation shares of a table without an official split (test gets the rest)
SPLIT_FRACTIONS = (0.70, 0.15)

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

#: the search benchmarks (``--preset``): 8 trials a side on the CPU, fp32, the presets' space
#: (search.PRESET_SPACE), autoft with its own search defaults. Rows None: the whole split.
SEARCH_PRESETS = {
    "finpb-cpu": {
        "data": FINPB_DATA,
        "split": "stratified",  # one table, split 70/15/15 per label (SPLIT_FRACTIONS)
        "max_length": 64,
        "search_rows": None,
        "val_rows": None,
        "test_rows": None,
        "trials": 8,
        "device": "cpu",
    },
    "imdb-cpu": {
        "data": DEFAULT_DATA,
        "split": "imdb",  # train and validation rows from train.parquet, test rows from test.parquet
        "max_length": 128,
        "search_rows": 2_000,
        "val_rows": 500,
        "test_rows": 500,
        "trials": 8,
        "device": "cpu",
    },
    # the GPU search of the default mode (the H100 reference: 5,000 / 2,000 rows, max_length 256,
    # bf16, epochs 1-3, batch 16/32/64), autoft with its own search defaults
    "imdb-gpu": {
        "data": DEFAULT_DATA,
        "split": "imdb",
        "max_length": 256,
        "search_rows": 5_000,
        "val_rows": 2_000,
        "test_rows": 2_000,
        "trials": 8,
        "device": "cuda",
        "space": "default",
        "dataloader_workers": 2,
    },
}

#: --smoke with a search preset: the preset's data handling and space, tiny sizes
SMOKE_SEARCH = {"max_length": 32, "search_rows": 32, "val_rows": 16, "test_rows": 16, "trials": 1}


def _isolations() -> tuple[str, ...]:
    """The values of autoft's ``[search] isolation``, read from its config (one list to keep)."""
    import typing

    from autoft.config import SearchSection

    return typing.get_args(typing.get_type_hints(SearchSection)["isolation"])


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__.splitlines()[0])
    p.add_argument(
        "--mode", choices=["throughput", "search", "all", "quickstart"], help="default all; search with --preset"
    )
    p.add_argument("--preset", choices=sorted(SEARCH_PRESETS), help="a search benchmark (see benchmarks/README.md)")
    p.add_argument("--model", default="minilm", help="packaged short name, local folder or hub id (default minilm)")
    p.add_argument(
        "--data",
        type=Path,
        help=f"folder with train.parquet, test.parquet (default {DEFAULT_DATA}); for finpb-cpu one parquet file "
        f"with text, label (default {FINPB_DATA})",
    )
    p.add_argument("--max-length", type=int, help="tokens per text (GPU 256, CPU 64)")
    p.add_argument("--batch-size", type=int, help="throughput batch size (GPU and CPU 32)")
    p.add_argument("--epochs", type=int, help="throughput epochs (1)")
    p.add_argument("--train-rows", type=int, help="training rows (GPU: 25,000 throughput, 5,000 search; CPU 200)")
    p.add_argument("--val-rows", type=int, help="validation rows (GPU 2,000, CPU 100)")
    p.add_argument("--test-rows", type=int, help="held-out rows autoft scores its best trial on (default --val-rows)")
    p.add_argument("--trials", type=int, help="search trials per side (GPU 8, CPU 2)")
    p.add_argument("--precision", choices=["fp32", "bf16", "fp16"], help="bf16 on CUDA, fp32 on CPU")
    p.add_argument("--device", choices=["auto", "cpu", "cuda"], default="auto")
    p.add_argument("--dataloader-workers", type=int, help="Trainer DataLoader workers (GPU 2 as the reference, CPU 0)")
    p.add_argument(
        "--trials-per-gpu", type=int, default=1, help="autoft's [search] trials_per_gpu (search; GPU only, 1)"
    )
    p.add_argument(
        "--isolation",
        choices=_isolations(),
        help="autoft's [search] isolation (search; default autoft's: auto, trials one after another in a worker "
        "process on a GPU, a process of its own each on the CPU)",
    )
    p.add_argument("--repeats", type=int, default=1, help="throughput runs per side; the median is reported")
    p.add_argument(
        "--search-first",
        choices=["trainer", "autoft"],
        default="trainer",
        help="which search runs first (first seed; then alternating)",
    )
    p.add_argument("--seed", type=int, default=0, help="data seed, and the first search seed")
    p.add_argument(
        "--search-seed", type=int, help="the first search seed, where it differs from --seed (the data stays --seed's)"
    )
    p.add_argument("--seeds", type=int, default=1, help="search each side with N seeds (--seed, --seed+1, ...)")
    p.add_argument("--plot", type=Path, help="the search's best-so-far PNG (default: --out with .png)")
    p.add_argument("--smoke", action="store_true", help="tiny settings for CI (about a minute on 2 CPU cores)")
    p.add_argument("--workdir", type=Path, help="keep subsets, study files, run folders and logs here")
    p.add_argument("--out", type=Path, default=Path("results.json"), help="where to write the JSON")
    return p


def settings(args: argparse.Namespace) -> dict:
    """The resolved settings: flags, else the preset (--preset, or the one for this machine)."""
    from .search import PRESET_SPACE, SPACE

    if args.preset:
        preset = {**SEARCH_PRESETS[args.preset], **(SMOKE_SEARCH if args.smoke else {})}
        device = args.device if args.device != "auto" else preset["device"]
        pick = _picker(preset)
        return {
            **_shared(args, device, pick),
            "preset": args.preset,
            "mode": args.mode or "search",
            "data": str(args.data or preset["data"]),
            "split": preset["split"],
            "test_rows": pick(args.test_rows, "test_rows"),
            "dataloader_workers": pick(args.dataloader_workers, "dataloader_workers")
            if "dataloader_workers" in preset
            else args.dataloader_workers or 0,
            "space": SPACE if preset.get("space") == "default" else PRESET_SPACE,
            "autoft_defaults": True,
        }
    import torch

    device = args.device if args.device != "auto" else ("cuda" if torch.cuda.is_available() else "cpu")
    name = "smoke" if args.smoke else "gpu" if device == "cuda" else "cpu"
    pick = _picker(PRESETS[name])
    return {
        **_shared(args, device, pick),
        "preset": name,
        "mode": args.mode or "all",
        "data": str(args.data or DEFAULT_DATA),
        "split": "imdb",
        "batch_size": pick(args.batch_size, "batch_size"),
        "epochs": pick(args.epochs, "epochs"),
        "throughput_train_rows": pick(args.train_rows, "throughput_rows"),
        "test_rows": args.test_rows or pick(args.val_rows, "val_rows"),
        "dataloader_workers": pick(args.dataloader_workers, "dataloader_workers"),
        "repeats": args.repeats,
        "space": SPACE,
        "autoft_defaults": False,
    }


def _picker(preset: dict):
    """A flag's value where given, else the preset's."""
    return lambda flag, key: flag if flag is not None else preset[key]


def _shared(args: argparse.Namespace, device: str, pick) -> dict:
    """The settings every mode resolves the same way."""
    return {
        "smoke": args.smoke,
        "model": args.model,
        "device": device,
        "precision": args.precision or ("bf16" if device == "cuda" else "fp32"),
        "max_length": pick(args.max_length, "max_length"),
        "search_train_rows": pick(args.train_rows, "search_rows"),
        "val_rows": pick(args.val_rows, "val_rows"),
        "trials": pick(args.trials, "trials"),
        "trials_per_gpu": args.trials_per_gpu,
        "isolation": args.isolation,
        "search_first": args.search_first,
        "seed": args.seed,
        "search_seed": args.seed if args.search_seed is None else args.search_seed,
        "seeds": args.seeds,
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


def search_data(cfg: dict, folder: Path) -> tuple[dict[str, Path], dict]:
    """The train, validation and test parquet files both sides read (the same for every seed), and their rows."""
    data = Path(cfg["data"])
    if cfg["split"] == "stratified":
        import pandas as pd

        table = pd.read_parquet(data, columns=["text", "label"])
        splits, repeated = stratified_split(table, SPLIT_FRACTIONS, cfg["seed"])
        for split, key, flag in (
            ("train", "search_train_rows", "--train-rows"),
            ("validation", "val_rows", "--val-rows"),
            ("test", "test_rows", "--test-rows"),
        ):
            rows = cfg[key]
            if rows is not None and rows > len(splits[split]):
                raise SystemExit(f"{flag} {rows}: the {split} split of {data} has only {len(splits[split])} rows")
            splits[split] = splits[split].iloc[:rows] if rows is not None else splits[split]
        train, test = SPLIT_FRACTIONS
        source = (
            f"{data.name}: {len(table)} rows, {repeated} repeated texts dropped, split per label "
            f"{train:.0%}/{test:.0%}/{1 - train - test:.0%} (seed {cfg['seed']})"
        )
        info = {"data_source": source, "validation_source": f"the validation split of {data.name}"}
    else:
        subsets = load_subsets(data, cfg["search_train_rows"], cfg["val_rows"], cfg["seed"])
        splits = {
            "train": subsets.train,
            "validation": subsets.validation,
            "test": held_out_rows(data, cfg["test_rows"], cfg["seed"]),
        }
        info = {"data_source": str(data), "validation_source": subsets.validation_source}
    folder.mkdir(parents=True, exist_ok=True)
    files = {split: folder / f"{split}.parquet" for split in ("train", "validation", "test")}
    for split, path in files.items():
        splits[split].to_parquet(path)
    rows = {f"{split}_rows": len(frame) for split, frame in splits.items()}
    return files, {**rows, **info, "files": {split: str(path) for split, path in files.items()}}


def search_settings(cfg: dict) -> SearchSettings:
    """What both searches share, from the resolved settings."""
    from autoft.models import resolve

    from . import search

    local = Path(cfg["model"]).expanduser()
    return search.SearchSettings(
        model=str(local.resolve()) if local.is_dir() else cfg["model"],  # the study file lives elsewhere
        model_path=resolve(cfg["model"], Path.cwd()).path,
        max_length=cfg["max_length"],
        trials=cfg["trials"],
        precision=cfg["precision"],
        device=cfg["device"],
        dataloader_workers=cfg["dataloader_workers"],
        seed=cfg["search_seed"],  # --search-seed; the data split stays --seed's
        space=cfg["space"],
        trials_per_gpu=cfg["trials_per_gpu"],
        isolation=cfg.get("isolation"),
        autoft_defaults=cfg["autoft_defaults"],
    )


def run_search(cfg: dict, workdir: Path) -> dict:
    """Both searches once per seed (the order alternating between seeds), on the same files."""
    from . import search

    files, data = search_data(cfg, workdir / "data")
    base = search_settings(cfg)
    first = ("trainer", "autoft") if cfg["search_first"] == "trainer" else ("autoft", "trainer")
    runs = []
    for i in range(cfg["seeds"]):
        seed = cfg["search_seed"] + i
        order = first if i % 2 == 0 else first[::-1]
        folder = workdir / f"seed-{seed}"
        folder.mkdir(parents=True, exist_ok=True)
        print(f"search: seed {seed} ({i + 1} of {cfg['seeds']}), {order[0]} first", file=sys.stderr, flush=True)
        sides = search.run(folder, files, dataclasses.replace(base, seed=seed), order)
        runs.append({"seed": seed, "order": list(order), **sides})
    return {
        "trainer": side_medians(runs, "trainer"),
        "autoft": side_medians(runs, "autoft"),
        "runs": runs,
        **data,
        "space": cfg["space"],
        "data_seed": cfg["seed"],
        "seeds": [run["seed"] for run in runs],
    }


#: each side's figures given as medians over seeds in ``search.trainer`` and ``search.autoft``
MEDIAN_KEYS = {
    "trainer": ("wall_s", "best_validation", "best_validation_any_epoch", "setup_s_per_trial", "import_s", "search_s"),
    "autoft": ("wall_s", "best_validation", "test_accuracy", "setup_s_per_trial", "startup_s", "after_last_trial_s"),
}


def side_medians(runs: list[dict], side: str) -> dict:
    """One side's figures, the median over seeds of each (None where no seed has it)."""

    def value(run: dict, key: str) -> float | None:
        result = run[side]
        return (result.get("test") or {}).get("accuracy") if key == "test_accuracy" else result.get(key)

    return {key: median(value(run, key) for run in runs) for key in MEDIAN_KEYS[side]}


def median(values) -> float | None:
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def summarize(results: dict, plot: Path | None) -> dict:
    """The search over seeds: per-seed rows, the medians that compare the sides, and where it ran."""
    search = results["search"]
    env = results["environment"]
    rows = []
    for run in search["runs"]:
        t, a = run["trainer"], run["autoft"]
        delta = (
            a["best_validation"] - t["best_validation"]
            if None not in (a["best_validation"], t["best_validation"])
            else None
        )
        rows.append(
            {
                "seed": run["seed"],
                "first": run["order"][0],
                "trainer_wall_s": t["wall_s"],
                "autoft_wall_s": a["wall_s"],
                "wall_ratio": report.ratio(a["wall_s"], t["wall_s"]),
                "trainer_best_validation": t["best_validation"],
                "trainer_best_validation_any_epoch": t.get("best_validation_any_epoch"),
                "autoft_best_validation": a["best_validation"],
                "best_validation_delta": delta,
                "autoft_test_accuracy": (a.get("test") or {}).get("accuracy"),
            }
        )
    return {
        "preset": results["settings"]["preset"],
        "seeds": [row["seed"] for row in rows],
        "wall_ratio": median(row["wall_ratio"] for row in rows),
        "best_validation_delta": median(row["best_validation_delta"] for row in rows),
        "median": {
            side: {key: median(row[f"{side}_{key}"] for row in rows) for key in ("wall_s", "best_validation")}
            for side in ("trainer", "autoft")
        },
        "per_seed": rows,
        "machine": {
            "device": env["device"],
            "name": env["device_name"],
            "cores": env["cpu_count"],
            "torch_threads": env["torch_threads"],
            "omp_wait_policy": env.get("omp_wait_policy"),
            "load_average_1m": [env["load_average_1m_at_start"], results.get("load_average_1m_at_end")],
        },
        "date": results["date"],
        "versions": {key: env[key] for key in ("python", "torch", "transformers", "optuna", "autoft", "autoft_commit")},
        "plot": str(plot) if plot else None,
    }


def write_plot(results: dict, path: Path) -> Path:
    from .plot import search_over_time

    cfg, search = results["settings"], results["search"]
    trials = f"{cfg['trials']} trial{'s' if cfg['trials'] != 1 else ''}"
    title = (
        f"{cfg['preset']}: {trials} a side, {search['train_rows']} training rows, {len(search['runs'])} seed(s)\n"
        f"{results['environment']['device_name']} · {results['date'][:10]}"
    )
    return search_over_time(search["runs"], title, path)


def check_data(cfg: dict) -> str | None:
    """What is wrong with ``--data`` for this run, or None."""
    if cfg["mode"] == "quickstart":
        return None
    data = Path(cfg["data"])
    if cfg["split"] == "stratified":
        return None if data.is_file() else f"--data {data} is not a file (a parquet table with text, label)"
    if not (data / "train.parquet").is_file():
        return f"--data {data} has no train.parquet"
    if cfg["mode"] in ("search", "all") and not (data / "test.parquet").is_file():
        return f"--data {data} has no test.parquet (the held-out rows autoft scores its best trial on)"
    return None


def run_quickstart(workdir: Path) -> dict:
    from . import quickstart

    return quickstart.run(workdir)


def check_workdir(workdir: Path | None) -> str | None:
    """What is wrong with --workdir: a study storage left by an earlier run, which autoft would resume (and
    the benchmark would time a search that does not run), or None."""
    if workdir is None or not workdir.is_dir():
        return None
    earlier = min(workdir.rglob("study.db"), default=None)
    if earlier is None:
        return None
    return (
        f"--workdir {workdir}: holds {earlier.relative_to(workdir)} from an earlier run, which autoft would "
        "resume instead of searching; give an empty or new folder"
    )


def start_results(program: str, argv: list[str] | None, cfg: dict, workdir: Path | None) -> dict | None:
    """The JSON's opening (date, command, settings, machine), or None after saying what is wrong with --data
    or --workdir."""
    problem = check_data(cfg) or check_workdir(workdir)
    if problem:
        print(f"error: {problem}", file=sys.stderr)
        return None
    return {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "command": f"{program} " + " ".join(argv if argv is not None else sys.argv[1:]),
        "settings": cfg,
        "environment": environment(),
    }


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    if args.preset and args.mode not in (None, "search"):
        print(f"error: --preset {args.preset} is a search benchmark; use --mode search (the default)", file=sys.stderr)
        return 2
    if args.seeds < 1:
        print(f"error: --seeds {args.seeds}: give 1 or more", file=sys.stderr)
        return 2
    cfg = settings(args)
    results = start_results("python -m benchmarks", argv, cfg, args.workdir)
    if results is None:
        return 2
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="autoft-bench-") as tmp:
        workdir = args.workdir or Path(tmp)
        workdir.mkdir(parents=True, exist_ok=True)
        stages = {
            "throughput": lambda: run_throughput(cfg),
            "search": lambda: run_search(cfg, workdir),
            "quickstart": lambda: run_quickstart(workdir),
        }
        chosen = {"all": ["throughput", "search"]}.get(cfg["mode"], [cfg["mode"]])
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
    if "search" in results:
        plot = write_plot(results, args.plot or args.out.with_suffix(".png"))
        results["summary"] = summarize(results, plot)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=1, default=str) + "\n")
    env = results["environment"]
    print(
        f"{env['device_name']} · torch {env['torch']} · transformers {env['transformers']} · {cfg['precision']}"
        f" · load average {env['load_average_1m_at_start']} at start, {results['load_average_1m_at_end']} at end"
    )
    print(report.table(results))
    if "summary" in results:
        print(f"plot: {results['summary']['plot']}")
    print(f"total {results['total_wall_s']:.1f} s · written to {args.out}")
    return 0
