"""``python -m benchmarks.lanes``: autoft's search with 1, 2, 4 ... trials at once on each GPU, or on the CPU.

The autoft side of a search preset (``--preset imdb-gpu`` by default; every flag of ``python -m benchmarks``
applies) run once per ``--lanes`` value with ``[search] trials_per_gpu`` set to it (on a CPU preset, such as
``finpb-cpu``, or with ``--device cpu``: ``cpu_trials``), on the same files and seed. Per value: the
search's wall time (the whole process), its best validation score, and the aggregate training throughput:
the rows all trials trained on (each trial's samples/s × its training seconds) over the seconds from the
first trial's start to the last trial's end.
"""

from __future__ import annotations

import dataclasses
import json
import sys
import tempfile
from pathlib import Path

from . import compare, search


def aggregate_samples_per_s(trials: list[dict]) -> float | None:
    """Rows trained by all trials together per second of the search (first start to last end)."""
    done = [t for t in trials if t.get("samples_per_s") and t.get("train_s") and t.get("duration_s")]
    if not done:
        return None
    rows = sum(t["samples_per_s"] * t["train_s"] for t in done)
    ends = [t["ended_s"] for t in trials if t.get("ended_s") is not None]
    starts = [t["ended_s"] - t["duration_s"] for t in trials if t.get("ended_s") is not None and t.get("duration_s")]
    span = max(ends) - min(starts) if ends and starts else None
    return rows / span if span else None


def main(argv: list[str] | None = None) -> int:
    parser = compare.build_parser()
    parser.prog = "python -m benchmarks.lanes"
    parser.add_argument(
        "--lanes", default="1,2,4", help="trials_per_gpu (CPU: cpu_trials) values, comma-separated (default 1,2,4)"
    )
    args = parser.parse_args(argv)
    args.preset = args.preset or "imdb-gpu"
    lanes = [int(v) for v in args.lanes.split(",")]
    cfg = compare.settings(args)
    results = compare.start_results("python -m benchmarks.lanes", argv, cfg, args.workdir)
    if results is None:
        return 2
    results["lanes"] = []
    with tempfile.TemporaryDirectory(prefix="autoft-lanes-") as tmp:
        workdir = args.workdir or Path(tmp)
        files, data = compare.search_data(cfg, workdir / "data")
        results["data"] = data
        base = compare.search_settings(cfg)
        key = "cpu_trials" if cfg["device"] == "cpu" else "trials_per_gpu"
        for value in lanes:
            folder = workdir / f"lanes-{value}"
            folder.mkdir(parents=True, exist_ok=True)
            print(f"lanes: {key} {value} ...", file=sys.stderr, flush=True)
            side = search.autoft_search(folder, files, dataclasses.replace(base, **{key: value}))
            row = {
                key: value,
                "wall_s": side["wall_s"],
                "best_validation": side["best_validation"],
                "aggregate_samples_per_s": aggregate_samples_per_s(side["trials"]),
                "states": {s: sum(t["state"] == s for t in side["trials"]) for s in ("complete", "pruned", "fail")},
                "startup_s": side["startup_s"],
                "after_last_trial_s": side["after_last_trial_s"],
                "trials": side["trials"],
            }
            results["lanes"].append(row)
            print(
                f"lanes: {key} {value}: {row['wall_s']:.1f} s wall, best validation "
                f"{row['best_validation']:.4f}, {row['aggregate_samples_per_s'] or 0:.0f} samples/s aggregate",
                file=sys.stderr,
                flush=True,
            )
            args.out.parent.mkdir(parents=True, exist_ok=True)
            args.out.write_text(json.dumps(results, indent=1, default=str) + "\n")  # after each value
    return 0


if __name__ == "__main__":
    sys.exit(main())
