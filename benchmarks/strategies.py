"""Test scores per strategy: retrain each strategy's best configuration from a finished study, evaluate on test.

A study keeps (and tests) only its overall best model. To compare strategies on the
test split, this takes the best trial of each strategy, writes a one-trial study with
that configuration fixed (seeded, so the trial is the same), runs it, and collects the
test scores into a Markdown table.

    python -m benchmarks.strategies studies/financial_phrasebank.toml --run-dir runs/financial_phrasebank
    python -m benchmarks.strategies studies/financial_phrasebank.toml --run-dir runs/financial_phrasebank \\
        --set dataset.agreement='"50"' --name-suffix 50agree
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from datetime import date
from pathlib import Path

import optuna
from tomli_w import dumps

from autoft.config import apply_overrides, read_toml


def best_per_strategy(study: optuna.Study) -> dict[str, optuna.trial.FrozenTrial]:
    best: dict[str, optuna.trial.FrozenTrial] = {}
    sign = 1 if study.direction == optuna.study.StudyDirection.MAXIMIZE else -1
    for t in study.get_trials(states=(optuna.trial.TrialState.COMPLETE,)):
        name = t.user_attrs.get("strategy")
        if name and (name not in best or sign * t.value > sign * best[name].value):
            best[name] = t
    return best


def fixed_study(raw: dict, trial: optuna.trial.FrozenTrial, name: str, output_dir: str) -> dict:
    """The study file with one strategy and every searched value fixed to the trial's."""
    config = trial.user_attrs["config"]
    out = json.loads(json.dumps(raw))
    out.setdefault("study", {}).update(name=name, output_dir=output_dir)
    out.setdefault("search", {}).update(n_trials=1, pruner="none")
    out["space"] = {k: v for k, v in config["hyperparams"].items() if v is not None}
    out["strategies"] = {config["strategy"]: {k: v for k, v in config["options"].items() if v is not None}}
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("study_file", type=Path)
    parser.add_argument("--run-dir", type=Path, required=True, help="the finished study's run folder")
    parser.add_argument("--set", dest="overrides", action="append", default=[], help="override, as autoft --set")
    parser.add_argument("--name-suffix", default="", help="added to each one-trial study's name")
    parser.add_argument("--output-dir", default="runs/strategies")
    args = parser.parse_args(argv)

    raw = apply_overrides(read_toml(args.study_file), args.overrides, args.study_file)
    name = raw.get("study", {}).get("name") or args.study_file.stem
    study = optuna.load_study(study_name=name, storage=f"sqlite:///{args.run_dir / 'study.db'}")
    rows = []
    for strategy, trial in sorted(best_per_strategy(study).items()):
        run_name = "-".join(filter(None, [name, strategy, args.name_suffix]))
        path = args.study_file.parent / f".{run_name}.toml"  # beside the study: its relative paths still hold
        path.write_text(dumps(fixed_study(raw, trial, run_name, str(Path(args.output_dir).resolve()))))
        try:
            subprocess.run([sys.executable, "-m", "autoft", "study", "run", str(path), "--no-progress"], check=True)
        finally:
            path.unlink()
        metrics = json.loads((Path(args.output_dir) / run_name / "best" / "metrics.json").read_text())
        rows.append((strategy, trial, metrics))

    print(f"\n{name}{' ' + args.name_suffix if args.name_suffix else ''} · {date.today()} · test split\n")
    print("| strategy | class weights | validation macro-F1 | test accuracy | test macro-F1 | trainable |")
    print("|---|---|---|---|---|---|")
    for strategy, trial, m in rows:
        share = trial.user_attrs.get("trainable_share", 0)
        print(
            f"| {strategy} | {trial.user_attrs['config']['hyperparams']['class_weights']} "
            f"| {m['validation'].get('f1_macro', float('nan')):.4f} | {m['test']['accuracy']:.4f} "
            f"| {m['test']['f1_macro']:.4f} | {share:.1%} |"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
