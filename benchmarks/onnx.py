"""``python -m benchmarks.onnx runs/quickstart/best``: PyTorch, ONNX and ONNX int8 on the CPU, side by side.

One process, the same texts, the same number of threads for all three (torch's intra-op threads and
onnxruntime's), each called as ``autoft predict`` and ``autoft serve`` call it: ``proba(texts)``, which
tokenizes, batches and runs the model, so the times are what a caller waits for.

- latency: batch 1, one call per text for ``--single`` texts (at least 100 by default); the median and
  the 90th percentile. The three take turns text by text (in a rotating order), so a busy moment of a
  shared machine falls on all of them alike.
- throughput: ``--batches`` batches of ``--batch-size`` texts a round, ``--rounds`` rounds, the three
  taking turns batch by batch; texts per second over all of it.

The texts are the study's test split (rebuilt from the folder's study.toml, as ``autoft export`` checks
on), repeated if it is short, else texts drawn from the tokenizer's vocabulary. A model folder without
``model.onnx`` or ``model.int8.onnx`` is exported first (``autoft export --onnx --quantize``). Prints a
table and writes everything (versions, machine, settings, figures) to ``--out``. Agreement with PyTorch
is the share of texts given the same label (a multi-label model's: the same set of labels; a regression
model has none, its closeness is the max |Δ| of its predictions).
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # as autoft.cli.entry sets it, before torch loads
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import argparse  # noqa: E402
import json  # noqa: E402
import statistics  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from datetime import UTC, datetime  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

import numpy as np  # noqa: E402

BACKENDS = ("pytorch", "onnx", "onnx-int8")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m benchmarks.onnx", description=__doc__.splitlines()[0])
    p.add_argument("model_dir", type=Path, help="a saved model folder, runs/<study>/best")
    p.add_argument("--threads", type=int, default=None, help="threads for every backend (default: the CPU count)")
    p.add_argument("--single", type=int, default=128, help="texts timed one at a time (default: 128)")
    p.add_argument("--batch-size", type=int, default=32, help="texts per batch for throughput (default: 32)")
    p.add_argument("--batches", type=int, default=8, help="batches per round for throughput (default: 8)")
    p.add_argument("--rounds", type=int, default=3, help="rounds of throughput batches (default: 3)")
    p.add_argument("--warmup", type=int, default=5, help="untimed calls per backend first (default: 5)")
    p.add_argument("--out", type=Path, default=Path("onnx-benchmark.json"), help="the JSON results file")
    return p


def benchmark_texts(
    folder: Path, tokenizer: Any, label_names: list[str], max_length: int, n: int, paired: bool = False
) -> tuple:
    """``n`` inputs (the test split, repeated as needed; else vocabulary texts) and where they came from.

    An input is a text, or for a sentence-pair model a (text, second text) tuple.
    """
    from autoft.onnx_texts import paired_with_next, study_test_split, vocabulary_texts

    check, why = study_test_split(folder, label_names, paired)
    if check is not None:
        texts, source = check.texts, check.source
        seconds = check.pairs
    else:
        texts = vocabulary_texts(tokenizer, n, (4, max(5, max_length // 2)))
        source = f"texts drawn from the vocabulary (no test split: {why})"
        seconds = paired_with_next(texts) if paired else None
    items = texts if not paired else list(zip(texts, seconds))
    return [items[i % len(items)] for i in range(n)], source


def _proba(backend: Any, items: list) -> Any:
    """The backend's probabilities of texts, or of pairs given as tuples."""
    if items and isinstance(items[0], tuple):
        return backend.proba([a for a, _ in items], [b for _, b in items])
    return backend.proba(items)


def load_backends(folder: Path, threads: int, batch_size: int) -> dict[str, Any]:
    import torch

    from autoft.onnx_export import export, summary
    from autoft.onnx_predict import INT8_FILE, ONNX_FILE, OnnxPredictor
    from autoft.predict import Predictor

    if not (folder / ONNX_FILE).is_file() or not (folder / INT8_FILE).is_file():
        print(f"exporting {folder} first (autoft export --onnx --quantize)", flush=True)
        for line in summary(export(folder, quantize=True), folder):
            print(line, flush=True)
    torch.set_num_threads(threads)
    return {
        "pytorch": Predictor(folder, device="cpu", batch_size=batch_size),
        "onnx": OnnxPredictor(folder, batch_size=batch_size, threads=threads),
        "onnx-int8": OnnxPredictor(folder, batch_size=batch_size, threads=threads, quantized=True),
    }


def _turns(i: int) -> tuple[str, ...]:
    """The order of the backends for the i-th text or batch: rotating, so none always goes first."""
    k = i % len(BACKENDS)
    return BACKENDS[k:] + BACKENDS[:k]


def latency(backends: dict[str, Any], texts: list[str]) -> dict[str, list[float]]:
    """Seconds per call of one text, per backend."""
    seconds: dict[str, list[float]] = {name: [] for name in BACKENDS}
    for i, text in enumerate(texts):
        for name in _turns(i):
            started = time.perf_counter()
            _proba(backends[name], [text])
            seconds[name].append(time.perf_counter() - started)
    return seconds


def throughput(backends: dict[str, Any], batches: list[list[str]], rounds: int) -> tuple[dict, dict]:
    """Seconds per batch per backend, and each backend's probabilities of the first round."""
    seconds: dict[str, list[float]] = {name: [] for name in BACKENDS}
    proba: dict[str, list] = {name: [] for name in BACKENDS}
    for r in range(rounds):
        for i, batch in enumerate(batches):
            for name in _turns(r * len(batches) + i):
                started = time.perf_counter()
                out = _proba(backends[name], batch)
                seconds[name].append(time.perf_counter() - started)
                if r == 0:
                    proba[name].append(out)
    return seconds, {name: np.concatenate(p) for name, p in proba.items()}


def agreement(got: np.ndarray, reference: np.ndarray, multi_label: bool, thresholds: np.ndarray | None) -> float:
    """The share of texts given the same label as the reference; for a multi-label model, the same set of labels
    (each label's probability against its threshold, 0.5 where the model has none)."""
    if not multi_label:
        return float((got.argmax(1) == reference.argmax(1)).mean())
    cuts = np.full(got.shape[1], 0.5) if thresholds is None else np.asarray(thresholds)
    return float(((got >= cuts) == (reference >= cuts)).all(axis=1).mean())


def environment(threads: int) -> dict:
    import onnxruntime

    from .common import environment as common

    env = common()
    env["onnxruntime"] = onnxruntime.__version__
    env["threads"] = threads
    return env


def main(argv: list[str] | None = None) -> int:
    from autoft.onnx_export import is_multi_label

    args = build_parser().parse_args(argv)
    folder = args.model_dir
    threads = args.threads or os.cpu_count() or 1
    backends = load_backends(folder, threads, args.batch_size)
    torch_model = backends["pytorch"]
    n = max(args.single, args.batch_size * args.batches)
    texts, source = benchmark_texts(
        folder, torch_model.tokenizer, torch_model.label_names, torch_model.max_length, n, torch_model.paired
    )
    env = environment(threads)
    started = datetime.now(UTC)
    for name in BACKENDS:
        for text in texts[: args.warmup]:
            _proba(backends[name], [text])
        _proba(backends[name], texts[: args.batch_size])
    single = latency(backends, texts[: args.single])
    batches = [texts[i * args.batch_size : (i + 1) * args.batch_size] for i in range(args.batches)]
    batch_seconds, proba = throughput(backends, batches, args.rounds)
    rows = args.batch_size * args.batches * args.rounds
    regression = bool(getattr(torch_model, "regression", False))
    multi_label = not regression and is_multi_label(torch_model.model)
    given = getattr(torch_model, "thresholds", None)
    cuts = np.asarray(given) if multi_label and given is not None else None
    results: dict[str, dict] = {}
    for name in BACKENDS:
        ms = [s * 1000 for s in single[name]]
        agree = None if regression else agreement(proba[name], proba["pytorch"], multi_label, cuts)
        results[name] = {
            "latency_ms_median": statistics.median(ms),
            "latency_ms_p90": float(np.percentile(ms, 90)),
            "throughput_texts_per_s": rows / sum(batch_seconds[name]),
            # a regression model has no labels to agree on: its predictions' max |Δ| says how close they are
            "agreement_with_pytorch": agree,
            "max_abs_diff_from_pytorch": float(np.abs(proba[name] - proba["pytorch"]).max()),
        }
    base = results["pytorch"]
    for r in results.values():
        r["latency_speedup"] = base["latency_ms_median"] / r["latency_ms_median"]
        r["throughput_speedup"] = r["throughput_texts_per_s"] / base["throughput_texts_per_s"]
    sizes = {"pytorch": "model.safetensors", "onnx": "model.onnx", "onnx-int8": "model.int8.onnx"}
    for name, file in sizes.items():
        path = folder / file
        results[name]["file"] = file
        results[name]["mb"] = round(path.stat().st_size / 1e6, 1) if path.is_file() else None
    report = {
        "model_dir": str(folder),
        "started": started.isoformat(timespec="seconds"),
        "texts": source,
        "task": "regression" if regression else "multi_label" if multi_label else "classification",
        "settings": {
            "threads": threads,
            "single_texts": len(single["pytorch"]),
            "batch_size": args.batch_size,
            "batches": args.batches,
            "rounds": args.rounds,
            "max_length": torch_model.max_length,
        },
        "environment": env,
        "load_average_1m_at_end": os.getloadavg()[0] if hasattr(os, "getloadavg") else None,
        "results": results,
    }
    print(table(report))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {args.out}")
    return 0


def table(report: dict) -> str:
    """The results as a Markdown table (what docs/performance.md shows)."""
    s = report["settings"]
    regression = report.get("task") == "regression"
    close = "max abs diff from PyTorch" if regression else "same label as PyTorch"
    if report.get("task") == "multi_label":
        close = "same labels as PyTorch"
    lines = [
        f"| | latency, batch 1 (median ms) | p90 ms | throughput, batch {s['batch_size']} (texts/s) "
        f"| vs PyTorch (latency / throughput) | {close} | file (MB) |",
        "|---|---:|---:|---:|---:|---:|---|",
    ]
    names = {"pytorch": "PyTorch fp32", "onnx": "ONNX fp32", "onnx-int8": "ONNX int8"}
    for name in BACKENDS:
        r = report["results"][name]
        same = f"{r['max_abs_diff_from_pytorch']:.2g}" if regression else f"{r['agreement_with_pytorch']:.1%}"
        lines.append(
            f"| {names[name]} | {r['latency_ms_median']:.2f} | {r['latency_ms_p90']:.2f} "
            f"| {r['throughput_texts_per_s']:.1f} | {r['latency_speedup']:.2f}× / {r['throughput_speedup']:.2f}× "
            f"| {same} | {r['file']} ({r['mb']}) |"
        )
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
