"""The ``autoft`` command. The only place that turns autoft errors into messages and exit codes."""

from __future__ import annotations

import argparse
import json
import os
import sys
import warnings
from pathlib import Path

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from . import __version__
from .errors import AutoftError

EXIT_INTERRUPTED = 130


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="autoft", description="Find the best fine-tuned transformer classifier.")
    parser.add_argument("--version", action="version", version=f"autoft {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    study = commands.add_parser("study", help="run a study, show its leaderboard").add_subparsers(
        dest="study_command", required=True, metavar="ACTION"
    )
    run = study.add_parser("run", help="run (or resume) the study in a study file")
    run.add_argument("study_file", type=Path)
    run.add_argument("--n-trials", type=int, help="finish this many trials (overrides [search] n_trials)")
    run.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help='override a study-file value, such as --set search.pruner="none" (repeatable)',
    )
    run.add_argument("--no-progress", action="store_true", help="no progress bars")
    run.set_defaults(func=cmd_study_run)

    worker = study.add_parser("worker", help="join a running study: run its trials from another process or machine")
    worker.add_argument("study_file", type=Path)
    worker.add_argument("--storage", help="the study's storage URL (a server database to join from elsewhere)")
    worker.add_argument("--n-trials", type=int, help="stop when the study has this many finished trials")
    worker.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    worker.add_argument("--no-progress", action="store_true", help="no progress bars")
    worker.set_defaults(func=cmd_study_worker)

    board = study.add_parser("leaderboard", help="print the leaderboard of a run folder")
    board.add_argument("run_dir", type=Path)
    board.add_argument("--limit", type=int, default=None, help="show only the first N rows")
    board.set_defaults(func=cmd_leaderboard)

    plugins = commands.add_parser("plugins", help="list plugins").add_subparsers(
        dest="plugins_command", required=True, metavar="ACTION"
    )
    listing = plugins.add_parser("list", help="every plugin, what it registers and where it came from")
    listing.add_argument("--study", type=Path, help="also load the local plugin files this study names")
    listing.set_defaults(func=cmd_plugins_list)

    dash = commands.add_parser("dashboard", help="open a study in optuna-dashboard (on this machine only)")
    dash.add_argument("run_dir", type=Path, help="a run folder, runs/<study>")
    dash.add_argument("--host", default="127.0.0.1", help="address to listen on (default: loopback only)")
    dash.add_argument("--port", type=int, default=8080)
    dash.set_defaults(func=cmd_dashboard)

    predict = commands.add_parser("predict", help="label texts with a saved model")
    predict.add_argument("model_dir", type=Path)
    predict.add_argument("texts", nargs="*", help="texts to label")
    predict.add_argument("--file", type=Path, help="a file of texts, one per line")
    predict.add_argument("--device", default="auto")
    predict.set_defaults(func=cmd_predict)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    console = make_console()
    try:
        return args.func(args, console) or 0
    except AutoftError as exc:
        Console(stderr=True, highlight=False).print(f"[red]error:[/] {escape(str(exc))}", soft_wrap=True)
        return exc.exit_code
    except KeyboardInterrupt:
        Console(stderr=True, highlight=False).print("interrupted")
        return EXIT_INTERRUPTED


def make_console() -> Console:
    """Text is never wrapped (logs stay greppable); tables get 160 columns when output is not a terminal."""
    plain = not sys.stdout.isatty()
    return Console(highlight=False, soft_wrap=True, width=160 if plain else None)


def cmd_study_run(args: argparse.Namespace, console: Console) -> int:
    from .config import load_study
    from .display import StudyDisplay, leaderboard_table
    from .errors import ConfigError
    from .leaderboard import fmt

    if args.n_trials is not None and args.n_trials < 1:
        raise ConfigError(f"--n-trials must be at least 1, got {args.n_trials}")
    config, registry = load_study(args.study_file, args.overrides)
    display = StudyDisplay(console, config.search.objective, enabled=not args.no_progress)
    from .study import run_study

    result = run_study(config, registry, display, n_trials=args.n_trials)
    console.print(leaderboard_table(result.rows, config.search.objective, limit=15))
    best = result.best
    if best:
        test, base, name = best["test"], best["majority_baseline"], best["objective"]
        console.print(
            f"best trial {best['trial']}: validation {name}={fmt(best['validation'].get(name))}"
            f" · test {name}={fmt(test[name])}, accuracy={fmt(test['accuracy'])}"
            f" (majority class '{base['label']}': {fmt(base['accuracy'])})"
        )
        console.print(f"saved to {result.run_dir / 'best'} · leaderboard in {result.run_dir}")
    return 0


def cmd_study_worker(args: argparse.Namespace, console: Console) -> int:
    from .config import load_study
    from .display import StudyDisplay
    from .study import run_study

    overrides = list(args.overrides) + ([f"study.storage={json.dumps(args.storage)}"] if args.storage else [])
    config, registry = load_study(args.study_file, overrides)
    display = StudyDisplay(console, config.search.objective, enabled=not args.no_progress)
    result = run_study(config, registry, display, n_trials=args.n_trials, finalize_best=False)
    console.print(f"worker done: ran {result.ran} trial(s) of study '{config.name}' in {config.storage_url}")
    return 0


def run_storage(run_dir: Path) -> str:
    """The storage URL of a run folder: its study.toml's [study] storage, else its study.db."""
    import tomllib

    from .errors import StudyError

    try:
        with open(run_dir / "study.toml", "rb") as f:
            storage = tomllib.load(f).get("study", {}).get("storage", "")
    except (OSError, tomllib.TOMLDecodeError):
        storage = ""
    if storage:
        return storage
    if not (run_dir / "study.db").is_file():
        raise StudyError(f"'{run_dir}' has no study.db; is it a run folder (runs/<study>)?")
    return f"sqlite:///{run_dir / 'study.db'}"


def cmd_dashboard(args: argparse.Namespace, console: Console) -> int:
    import optuna_dashboard

    storage = run_storage(args.run_dir)
    console.print(f"optuna-dashboard for {storage} at http://{args.host}:{args.port}/ (Ctrl-C stops it)")
    optuna_dashboard.run_server(storage, host=args.host, port=args.port)
    return 0


def cmd_leaderboard(args: argparse.Namespace, console: Console) -> int:
    from .display import leaderboard_table
    from .errors import StudyError
    from .leaderboard import read

    path = args.run_dir / "leaderboard.json"
    if not path.is_file():
        raise StudyError(f"'{args.run_dir}' has no leaderboard.json; is it a run folder (runs/<study>)?")
    objective, rows = read(args.run_dir)
    console.print(leaderboard_table(rows, objective, limit=args.limit))
    return 0


def cmd_plugins_list(args: argparse.Namespace, console: Console) -> int:
    from .config import load_study
    from .plugins import load_plugins

    registry = load_study(args.study)[1] if args.study else load_plugins()
    table = Table(header_style="bold")
    for col in ("plugin", "registers", "from"):
        table.add_column(col)
    for info in registry.plugins:
        table.add_row(info.name, ", ".join(info.registers) or "-", info.origin)
    console.print(table)
    return 0


def cmd_predict(args: argparse.Namespace, console: Console) -> int:
    from .errors import ConfigError
    from .predict import Predictor, read_texts

    texts = list(args.texts)
    if args.file:
        if not args.file.is_file():
            raise ConfigError(f"--file '{args.file}' does not exist")
        texts += read_texts(args.file)
    if not texts:
        raise ConfigError("no texts: give them as arguments or with --file")
    predictor = Predictor(args.model_dir, device=args.device)
    result = predictor(texts)
    table = Table(header_style="bold")
    table.add_column("text", overflow="fold", max_width=60)
    table.add_column("label")
    for name in result.label_names:
        table.add_column(f"p({name})", justify="right")
    for text, label, row in zip(result.texts, result.labels, result.proba):
        table.add_row(text, label, *[f"{p:.3f}" for p in row])
    console.print(table)
    return 0


def quiet_warnings() -> None:
    """Library deprecation chatter is for autoft's developers, not its users."""
    warnings.filterwarnings("ignore", category=FutureWarning)
    warnings.filterwarnings("ignore", category=DeprecationWarning)
    warnings.filterwarnings("ignore", message=".*experimental feature.*")


def entry() -> None:
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    # OpenMP threads that spin while waiting collapse (100x slower) when the cores are shared with
    # anything else; sleeping costs little when they are not. Set before torch loads.
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    quiet_warnings()
    sys.exit(main())


if __name__ == "__main__":  # pragma: no cover
    entry()
