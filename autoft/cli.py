"""The ``autoft`` command. The only place that turns autoft errors into messages and exit codes."""

from __future__ import annotations

import argparse
import gc
import json
import re
import signal
import sys
import warnings
from pathlib import Path
from typing import Any, NoReturn

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from . import __version__
from .errors import AutoftError, Terminated, forget_stop_signals, on_stop_signal, one_line, storage_refusal
from .threads import set_process_defaults

EXIT_INTERRUPTED = 130
EXIT_TERMINATED = 143


class Parser(argparse.ArgumentParser):
    """argparse with autoft's error shape: one line naming the flag and what is valid, exit code 2.

    Flags are never abbreviated: ``--text`` is not taken for ``--text-column``, and a flag added later
    cannot change what an abbreviation in someone's script means."""

    def __init__(self, *args: Any, **kwargs: Any):
        kwargs.setdefault("allow_abbrev", False)
        super().__init__(*args, **kwargs)

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"error: {self.prog}: {message} (see {self.prog} --help)\n")


def count(minimum: int = 1, maximum: int | None = None):
    """An argparse type: an integer in [minimum, maximum]."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
        if value < minimum or (maximum is not None and value > maximum):
            upper = f" and at most {maximum}" if maximum is not None else ""
            raise argparse.ArgumentTypeError(f"must be at least {minimum}{upper}, got {value}")
        return value

    return parse


def device(text: str) -> str:
    """An argparse type: auto, cpu, cuda, cuda:N or mps (whether it exists is checked when it is used)."""
    if re.fullmatch(r"auto|cpu|mps|cuda(:\d+)?", text):
        return text
    raise argparse.ArgumentTypeError(f"{text!r} is not a device; use auto, cpu, cuda, cuda:N or mps")


def duration(text: str) -> str:
    """An argparse type: a duration such as 20m, 1h30m or 90s (kept as written: it becomes [search] budget)."""
    from .budget import parse_duration

    try:
        parse_duration(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return text


class BudgetAction(argparse.Action):
    """``--budget 20m`` is ``--set search.budget="20m"``: one place reads and checks the budget."""

    def __call__(self, parser: Any, namespace: argparse.Namespace, value: Any, option: Any = None) -> None:
        namespace.overrides = [*namespace.overrides, f'search.budget="{value}"']


def _study_commands(commands: Any) -> None:
    study = commands.add_parser("study", help="run a study, show its leaderboard").add_subparsers(
        dest="study_command", required=True, metavar="ACTION"
    )
    run = study.add_parser("run", help="run (or resume) the study in a study file")
    check = study.add_parser("check", help="check a study file, its data and model as a run would, writing nothing")
    check.add_argument("study_file", type=Path)
    check.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    check.set_defaults(func=cmd_study_check)
    worker = study.add_parser("worker", help="join a running study: run its trials from another process or machine")
    worker.add_argument("--storage", help="the study's storage URL (a server database to join from elsewhere)")
    for command, func, n_help in (
        (run, cmd_study_run, "finish this many trials (overrides [search] n_trials)"),
        (worker, cmd_study_worker, "stop when the study has this many finished trials"),
    ):
        command.add_argument("study_file", type=Path)
        command.add_argument("--n-trials", type=count(), help=n_help)
        command.add_argument(
            "--set",
            dest="overrides",
            action="append",
            default=[],
            metavar="KEY=VALUE",
            help='override a study-file value, such as --set search.pruner="none" (repeatable)',
        )
        command.add_argument("--no-progress", action="store_true", help="no progress bars")
        command.add_argument(
            "--budget",
            type=duration,
            action=BudgetAction,
            help="the search's time, such as 20m or 1h30m (overrides [search] budget)",
        )
        command.set_defaults(func=func)
    board = study.add_parser("leaderboard", help="print the leaderboard of a run folder")
    board.add_argument("run_dir", type=Path)
    board.add_argument("--limit", type=count(), default=None, help="show only the first N rows")
    board.set_defaults(func=cmd_leaderboard)


def _model_commands(commands: Any) -> None:
    predict = commands.add_parser("predict", help="label texts with a saved model")
    predict.add_argument("model_dir", type=Path)
    predict.add_argument("texts", nargs="*", help="texts to label")
    predict.add_argument(
        "--file",
        type=Path,
        help="a file of texts, one per line (a pair model: first<TAB>second); - reads standard input",
    )
    predict.add_argument("--input", type=Path, help="a CSV, TSV, JSON Lines, JSON or Parquet file of texts")
    predict.add_argument("--text-column", help="the text column of --input (default: the model's, or text)")
    predict.add_argument("--pair-column", help="a sentence-pair model's second text column of --input")
    predict.add_argument("--output", type=Path, help="write the predictions here (.csv, .jsonl, .json, .parquet)")
    predict.add_argument("--batch-size", type=count(), default=128)
    predict.add_argument("--max-length", type=count(8), help="tokens per text (default: the model's study.toml)")
    predict.add_argument("--onnx", action="store_true", help="run the folder's model.onnx (autoft export --onnx)")
    predict.add_argument("--quantized", action="store_true", help="with --onnx: run model.int8.onnx instead")
    predict.set_defaults(func=cmd_predict)

    evaluate = commands.add_parser("evaluate", help="evaluate a saved model on a dataset split")
    evaluate.add_argument("model_dir", type=Path)
    source = evaluate.add_mutually_exclusive_group(required=True)
    source.add_argument("--study", type=Path, help="use this study file's [dataset] table (and its plugins)")
    source.add_argument(
        "--data",
        action="append",
        metavar="KEY=VALUE",
        help="a [dataset] key, as in a study file: --data type=files --data path=reviews.csv",
    )
    evaluate.add_argument(
        "--split",
        choices=["train", "validation", "test"],
        help="the split to score (default: test); a --data table without splits is scored whole",
    )
    evaluate.add_argument(
        "--out", type=Path, help="the evaluation folder (default: MODEL_DIR/evaluation-SPLIT, or evaluation-all)"
    )
    evaluate.add_argument("--explain", type=count(0), default=5, help="token attributions for the N surest mistakes")
    evaluate.set_defaults(func=cmd_evaluate)
    for command in (predict, evaluate):
        command.add_argument("--device", type=device, default="auto", help="auto, cpu, cuda, cuda:N or mps")
    _export_command(commands)
    _serve_command(commands)


def _export_command(commands: Any) -> None:
    from .onnx_export import DEFAULT_OPSET, OPSETS

    export = commands.add_parser("export", help="export a saved model to ONNX for CPU serving, checked against PyTorch")
    export.add_argument("model_dir", type=Path, help="a saved model folder, runs/<study>/best")
    export.add_argument("--onnx", action="store_true", required=True, help="write model.onnx (the only format)")
    export.add_argument("--quantize", action="store_true", help="also write model.int8.onnx (int8 weights)")
    export.add_argument(
        "--opset", type=count(*OPSETS), default=DEFAULT_OPSET, help=f"ONNX opset (default: {DEFAULT_OPSET})"
    )
    export.add_argument(
        "--texts",
        type=Path,
        help="check on these texts, one per line; a sentence-pair model: first<TAB>second (default: the test split)",
    )
    export.add_argument("--batch-size", type=count(), default=32, help="texts per batch in the check (default: 32)")
    export.set_defaults(func=cmd_export)


def _serve_command(commands: Any) -> None:
    serve = commands.add_parser("serve", help="serve a saved model over HTTP (POST /predict, GET /health, GET /)")
    serve.add_argument("model_dir", type=Path, help="a saved model folder, runs/<study>/best")
    serve.add_argument("--host", default="127.0.0.1", help="address to listen on (default: loopback only)")
    serve.add_argument("--port", type=count(1, 65535), default=8000, help="(default: 8000)")
    serve.add_argument("--device", type=device, default="auto", help="auto, cpu, cuda, cuda:N or mps")
    serve.add_argument("--batch-size", type=count(), default=64, help="texts per forward pass (default: 64)")
    serve.add_argument(
        "--max-wait-ms",
        type=count(0, 10_000),
        default=5,
        help="how long a batch waits for more requests after its first (default: 5)",
    )
    serve.add_argument("--max-texts", type=count(), default=1024, help="texts per request at most (default: 1024)")
    serve.add_argument("--onnx", action="store_true", help="serve the folder's model.onnx (autoft export --onnx)")
    serve.set_defaults(func=cmd_serve)


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(prog="autoft", description="Find the best fine-tuned transformer classifier.")
    parser.add_argument("--version", action="version", version=f"autoft {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    _study_commands(commands)

    plugins = commands.add_parser("plugins", help="list plugins").add_subparsers(
        dest="plugins_command", required=True, metavar="ACTION"
    )
    listing = plugins.add_parser("list", help="every plugin, what it registers and where it came from")
    listing.add_argument("--study", type=Path, help="also load the local plugin files this study names")
    listing.set_defaults(func=cmd_plugins_list)

    dash = commands.add_parser("dashboard", help="open a study in optuna-dashboard (on this machine only)")
    dash.add_argument("run_dir", type=Path, help="a run folder, runs/<study>")
    dash.add_argument("--host", default="127.0.0.1", help="address to listen on (default: loopback only)")
    dash.add_argument("--port", type=count(1, 65535), default=8080)
    dash.set_defaults(func=cmd_dashboard)

    _model_commands(commands)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    try:
        args = parse(parser, argv)
    except SystemExit as exc:  # --help, --version, or a bad flag (one line, exit 2)
        return exc.code if isinstance(exc.code, int) else 2
    console = make_console()
    forget_stop_signals()
    previous = {sig: signal.signal(sig, on_stop_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        return args.func(args, console) or 0
    except AutoftError as exc:
        Console(stderr=True, highlight=False).print(f"[red]error:[/] {escape(one_line(str(exc)))}", soft_wrap=True)
        return exc.exit_code
    except Terminated:
        Console(stderr=True, highlight=False).print("terminated; run the same command again to resume")
        return EXIT_TERMINATED
    except KeyboardInterrupt:
        Console(stderr=True, highlight=False).print("interrupted; run the same command again to resume")
        return EXIT_INTERRUPTED
    except Exception as exc:
        refusal = storage_refusal(exc)  # a full disk, a quota, a read-only mount: the machine's, said in one line
        if refusal is None:
            raise
        Console(stderr=True, highlight=False).print(
            f"[red]error:[/] {escape(one_line(refusal))}; make room there (or write elsewhere) and run the same "
            "command again: what was written before is kept",
            soft_wrap=True,
        )
        return 2
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def parse(parser: argparse.ArgumentParser, argv: list[str] | None) -> argparse.Namespace:
    """``parser.parse_args``, with texts to label anywhere among the flags: ``predict best --device cpu "a text"``.

    argparse fills a ``nargs="*"`` positional only from the words right after the one before it, and calls
    later ones unrecognized (its ``parse_intermixed_args`` does not take subcommands): they are added here.
    """
    args, extra = parser.parse_known_args(argv)
    if extra:
        texts = getattr(args, "texts", None)
        cut = extra.index("--") if "--" in extra else len(extra)  # after "--" a text may start with "-"
        if texts is None or any(word.startswith("-") for word in extra[:cut]):
            parser.error(f"unrecognized arguments: {' '.join(extra)}")
        args.texts = [*texts, *extra[:cut], *extra[cut + 1 :]]
    return args


def make_console() -> Console:
    """Text is never wrapped (logs stay greppable); tables get 160 columns when output is not a terminal."""
    plain = not sys.stdout.isatty()
    return Console(highlight=False, soft_wrap=True, width=160 if plain else None)


def cmd_study_run(args: argparse.Namespace, console: Console) -> int:
    from .config import load_study
    from .display import StudyDisplay, leaderboard_table
    from .leaderboard import fmt

    config, registry = load_study(args.study_file, args.overrides)
    display = StudyDisplay(console, config.search.objective, enabled=not args.no_progress)
    from .study import run_study

    result = run_study(config, registry, display, n_trials=args.n_trials)
    console.print(leaderboard_table(result.rows, result.objective, limit=15))
    best = result.best
    if best:
        test, name = best["test"], best["objective"]
        if "mean_baseline" in best:  # regression
            base = best["mean_baseline"]
            also = "" if name == "rmse" else f", rmse={fmt(test['rmse'])}"
            baseline = f"always predicting the training mean {fmt(base['prediction'])}: rmse {fmt(base['rmse'])}"
        else:
            base = best["majority_baseline"]
            also = "" if name == "accuracy" else f", accuracy={fmt(test['accuracy'])}"
            baseline = f"always predicting the training majority '{base['label']}': accuracy {fmt(base['accuracy'])}"
        console.print(
            f"best trial {best['trial']}: validation {name}={fmt(best['validation'].get(name))}"
            f" · test {name}={fmt(test[name])}{also} ({baseline})"
        )
        console.print(f"saved to {result.run_dir / 'best'} · leaderboard in {result.run_dir}")
        return 0
    from .errors import StudyError

    failed = sorted((r for r in result.rows if r["state"] == "failed"), key=lambda r: r["trial"])
    why = f"; {len(failed)} of {len(result.rows)} failed, the last with: {failed[-1]['reason']}" if failed else ""
    raise StudyError(
        f"no trial completed, so no model was evaluated or saved{why} (leaderboard in {result.run_dir}); "
        "fix what the trials failed on, or give the study more trials or time, and run it again"
    )


def cmd_study_check(args: argparse.Namespace, console: Console) -> int:
    from .config import load_study
    from .study import check_study

    config, registry = load_study(args.study_file, args.overrides)
    bench = check_study(config, registry)
    data = bench.data
    models = f"models {', '.join(config.models)}" if config.searches_models else f"model {config.model.name}"
    console.print(
        f"{args.study_file}: ok · study {config.name} · {config.search.n_trials} trials of "
        f"{', '.join(config.strategies)} · {models} · {data.source}: "
        f"{len(data.train)}/{len(data.validation)}/{len(data.test)} rows"
        + (" of sentence pairs" if data.paired else "")
        + (f", target {data.label_names[0]} (regression)" if data.regression else f", {len(data.label_names)} labels")
        + (" (multi-label)" if data.multi_label else "")
    )
    for note in data.notes:  # what a run would warn of, such as texts shared by train and test
        if note.startswith("warning"):
            console.print(f"[yellow]{escape(note)}[/]")
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


def cmd_dashboard(args: argparse.Namespace, console: Console) -> int:
    import optuna_dashboard

    from .errors import StudyError
    from .ledger import storage_of_run

    storage = storage_of_run(args.run_dir)
    check_listen(args.host, args.port)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)  # a read-only server: nothing to clean up on SIGTERM
    console.print(f"optuna-dashboard for {storage} at http://{args.host}:{args.port}/ (Ctrl-C stops it)")
    try:
        optuna_dashboard.run_server(storage, host=args.host, port=args.port)
    except OSError as exc:  # taken between the check and the start
        raise StudyError(f"--host {args.host} --port {args.port}: cannot listen ({exc.strerror or exc})") from exc
    return 0


def check_listen(host: str, port: int) -> None:
    """Fail in one line if nothing can listen on host:port (a taken port, an unknown host)."""
    listen(host, port).close()


def listen(host: str, port: int):
    """A socket listening on host:port, or one line saying why there cannot be one."""
    import errno
    import socket

    from .errors import StudyError

    try:
        return socket.create_server((host, port), family=socket.AF_INET6 if ":" in host else socket.AF_INET)
    except OSError as exc:
        reason = (exc.strerror or str(exc)).split(" (while attempting to bind")[0]
        taken = exc.errno == errno.EADDRINUSE
        hint = "choose another --port" if taken else "use an address of this machine, such as 127.0.0.1"
        raise StudyError(f"--host {host} --port {port}: cannot listen ({reason}); {hint}") from exc


def cmd_serve(args: argparse.Namespace, console: Console) -> int:
    from .saved import check_model_folder
    from .serve import check_onnx, create_app, load_model, require_server_packages, run_server

    require_server_packages()  # the cheap checks first: nothing loads before every input is right
    check_model_folder(args.model_dir)
    if args.onnx:
        check_onnx(args.model_dir)
    check_listen(args.host, args.port)
    model = load_model(args.model_dir, device=args.device, batch_size=args.batch_size, onnx=args.onnx)
    app = create_app(
        model,
        args.model_dir,
        batch_size=args.batch_size,
        max_wait_ms=args.max_wait_ms,
        max_texts=args.max_texts,
        backend="onnx" if args.onnx else "torch",
    )
    sock = listen(args.host, args.port)  # taken while the model loaded: the same one line
    host = f"[{args.host}]" if ":" in args.host else args.host
    takes = ' · sentence pairs: {"texts": [...], "pairs": [...]}' if getattr(model, "paired", False) else ""
    console.print(
        f"serving {args.model_dir} ({', '.join(model.label_names)}) at http://{host}:{args.port}/{takes} "
        "· POST /predict, GET /health, GET / · Ctrl-C stops it"
    )
    run_server(app, sock)
    console.print("stopped")
    return 0


def cmd_leaderboard(args: argparse.Namespace, console: Console) -> int:
    from .display import leaderboard_table
    from .errors import StudyError
    from .leaderboard import read
    from .saved import run_folder_hint

    run_dir = args.run_dir
    if not run_dir.exists():
        raise StudyError(f"'{run_dir}' has no leaderboard.json: it does not exist; give a run folder (runs/<study>)")
    if not run_dir.is_dir():
        raise StudyError(f"'{run_dir}' has no leaderboard.json: it is a file; give a run folder (runs/<study>)")
    if not (run_dir / "leaderboard.json").exists():
        raise StudyError(f"'{run_dir}' has no leaderboard.json; {run_folder_hint(run_dir, 'leaderboard.json')}")
    objective, rows = read(args.run_dir)
    console.print(leaderboard_table(rows, objective, limit=args.limit))
    return 0


def cmd_plugins_list(args: argparse.Namespace, console: Console) -> int:
    if args.study:  # the study file's checks need its settings' types (torch): only then
        from .config import load_study

        registry = load_study(args.study)[1]
    else:
        from .plugins import load_plugins

        registry = load_plugins()
    table = Table(header_style="bold")
    for col in ("plugin", "registers", "from"):
        table.add_column(col)
    for info in registry.plugins:
        table.add_row(info.name, ", ".join(info.registers) or "-", info.origin)
    console.print(table)
    return 0


def cmd_predict(args: argparse.Namespace, console: Console) -> int:
    from .errors import ConfigError
    from .predict import (
        Predictor,
        check_output,
        check_texts,
        read_table,
        read_texts,
        split_pairs,
        table_texts,
        write_table,
    )
    from .saved import check_model_folder, trained_inputs

    check_model_folder(args.model_dir)  # the cheap checks first: nothing loads before every input is right
    inputs = trained_inputs(args.model_dir)
    texts = list(args.texts)
    check_texts(texts)
    table, pairs = None, None
    for flag, value in (("--text-column", args.text_column), ("--pair-column", args.pair_column)):
        if value is not None and not args.input:
            raise ConfigError(f"{flag} names a column of --input; give --input too, or drop {flag}")
    if args.pair_column is not None and len(inputs) == 1:
        raise ConfigError(f"--pair-column: the model in '{args.model_dir}' reads single texts, not pairs; drop it")
    if len(inputs) == 2 and texts:
        raise ConfigError(
            f"the model in '{args.model_dir}' reads sentence pairs ({inputs[0]}, {inputs[1]}): give them with "
            "--input (a table with both columns) or --file (a line per pair, first<TAB>second)"
        )
    if args.file:
        lines = read_texts(args.file)
        if len(inputs) == 2:
            lines, pairs = split_pairs(lines, f"--file {args.file}")
        texts += lines
    if args.input:
        if texts:
            raise ConfigError("give texts either as arguments/--file or with --input, not both")
        column = args.text_column or inputs[0]
        pair_column = (args.pair_column or inputs[1]) if len(inputs) == 2 else None
        if pair_column is not None and pair_column == column:
            raise ConfigError(f"--text-column and --pair-column both name '{column}'; a pair needs two columns")
        table = read_table(args.input, column, pair_column)
        texts = table_texts(table, column, args.input)
        if pair_column is not None:
            pairs = table_texts(table, pair_column, args.input, "--pair-column")
    if not texts:
        raise ConfigError("no texts: give them as arguments, with --file, or with --input")
    if args.output:
        check_output(args.output, args.model_dir, [p for p in (args.file, args.input) if p])
    if args.quantized and not args.onnx:
        raise ConfigError("--quantized runs model.int8.onnx: give it with --onnx")
    if args.onnx:
        from .onnx_predict import OnnxPredictor, graph_path, require_runtime

        graph_path(args.model_dir, args.quantized)
        require_runtime()
        predictor = OnnxPredictor(
            args.model_dir,
            device=args.device,
            batch_size=args.batch_size,
            max_length=args.max_length,
            quantized=args.quantized,
        )
    else:
        predictor = Predictor(
            args.model_dir, device=args.device, batch_size=args.batch_size, max_length=args.max_length
        )
    if table is not None and args.output:
        ours = ["label", "probability", *[f"p({name})" for name in predictor.label_names]]
        if len(predictor.label_names) == 1:  # regression
            ours = ["prediction"]
        elif getattr(predictor, "thresholds", None) is not None:  # multi-label
            ours = ["labels", *ours[2:]]
        clash = [c for c in ours if c in table.columns]
        if clash:
            raise ConfigError(
                f"--input '{args.input}' already has column(s) {', '.join(map(repr, clash))}, which the predictions "
                f"are written to ({', '.join(ours)}); rename or drop them"
            )
    result = predictor(texts, pairs)
    frame = result.frame()
    if args.output:
        out = frame if table is None else table.reset_index(drop=True).join(frame)
        if table is None:
            out.insert(0, "text" if pairs is None else inputs[0], texts)
            if pairs is not None:
                out.insert(1, inputs[1], pairs)
        write_table(out, args.output)
        if result.regression:
            values = result.values
            counts = f"{result.label_names[0]} from {values.min():.4g} to {values.max():.4g}, mean {values.mean():.4g}"
        else:
            column = frame["labels"] if "labels" in frame else frame["label"]
            counts = ", ".join(f"{k or '(none)'} {v}" for k, v in column.value_counts().items())
        console.print(f"wrote {len(frame)} predictions to {args.output} ({counts})")
        return 0
    view = Table(header_style="bold")
    view.add_column(inputs[0] if pairs is not None else "text", overflow="fold", max_width=60)
    if pairs is not None:
        view.add_column(inputs[1], overflow="fold", max_width=60)
    if result.regression:
        view.add_column(f"predicted {result.label_names[0]}", justify="right")
    else:
        view.add_column("labels" if result.thresholds is not None else "label")
        for name in result.label_names:
            view.add_column(f"p({name})", justify="right")
    for i, (text, label, row) in enumerate(zip(result.texts, result.labels, result.proba)):
        shown = [escape(text)] if pairs is None else [escape(text), escape(pairs[i])]
        scores = [f"{row[0]:.4g}"] if result.regression else [label, *[f"{p:.3f}" for p in row]]
        view.add_row(*shown, *scores)
    console.print(view)
    return 0


def cmd_export(args: argparse.Namespace, console: Console) -> int:
    from .onnx_export import export, require_exporter, summary
    from .saved import check_model_folder

    check_model_folder(args.model_dir)  # the cheap checks first: nothing loads before every input is right
    require_exporter()
    if args.texts is not None:
        from .onnx_texts import texts_file
        from .saved import trained_inputs

        texts_file(args.texts, paired=len(trained_inputs(args.model_dir)) == 2)
    report = export(
        args.model_dir,
        quantize=args.quantize,
        opset=args.opset,
        texts=args.texts,
        batch_size=args.batch_size,
        say=lambda line: console.print(escape(line)),
    )
    for line in summary(report, args.model_dir):
        console.print(escape(line))
    return 0


def cmd_evaluate(args: argparse.Namespace, console: Console) -> int:
    import numpy as np

    from .config import apply_overrides, parse_dataset, read_toml
    from .errors import ConfigError, DataError
    from .export import write_evaluation
    from .plugins import load_plugins
    from .predict import Predictor, check_evaluation_out
    from .saved import check_model_folder
    from .workbench import load_dataset

    check_model_folder(args.model_dir)  # the cheap checks first: nothing loads before every input is right
    if args.out:
        check_evaluation_out(args.out, args.model_dir)
    if args.study:
        if args.study.is_dir():
            raise ConfigError(f"--study '{args.study}' is a folder; give the study file (.toml) the model came from")
        raw = read_toml(args.study)
        study = raw.get("study", {})
        if not isinstance(study, dict):
            raise ConfigError(f"{args.study}: [study] must be a table")
        plugins, seed = study.get("plugins", []), study.get("seed", 0)
        if not isinstance(plugins, list) or not all(isinstance(p, str) for p in plugins):
            raise ConfigError(f"{args.study}: [study] plugins must be a list of plugin file paths")
        if isinstance(seed, bool) or not isinstance(seed, int):
            raise ConfigError(f"{args.study}: [study] seed must be a whole number, got {seed!r}")
        files = [args.study.parent / p for p in plugins]
        table, base_dir, where = raw.get("dataset", {}), args.study.parent, str(args.study)
    else:
        table = apply_overrides({}, args.data, Path("--data"), flag="--data", example="path=reviews.csv")
        files, base_dir, where, seed = [], Path.cwd(), "--data", 0
    registry = load_plugins(files)
    section, options = parse_dataset(table, where, registry)
    # --data: a table without splits of its own is evaluated whole (carving 10% of it, as a study with seed 0
    # would, scored a slice the user never chose); --study: the study's own splits, carved as the run carved them
    data = load_dataset(section, options, registry, base_dir, seed, where, whole=not args.study)
    if data.whole and args.split:
        raise ConfigError(
            f"--split {args.split}: the --data table has no splits, and every row of it is evaluated; drop --split "
            "(or give the splits: --data train=..., --data test=...)"
        )
    split_name = "all" if data.whole else args.split or "test"
    out = args.out or args.model_dir / f"evaluation-{split_name}"
    if not args.out:
        check_evaluation_out(out, args.model_dir)
    predictor = Predictor(args.model_dir, device=args.device)
    model_task = "regression" if predictor.regression else "multi_label" if predictor.thresholds else "classification"
    if data.task != model_task:
        words = {"regression": "a number", "multi_label": "sets of labels", "classification": "one class"}
        raise DataError(
            f"{where}: the data's labels are {words[data.task]} per row ({data.task}), but the model in "
            f"'{args.model_dir}' predicts {words[model_task]} ({model_task}); set [dataset] task to match"
        )
    unknown = [] if data.regression else [n for n in data.label_names if n not in predictor.label_names]
    if unknown:
        raise DataError(
            f"{where}: labels {', '.join(map(repr, unknown))} are not labels of the model "
            f"({', '.join(predictor.label_names)})"
        )
    split = data.split("test" if data.whole else split_name)
    if data.paired != predictor.paired:
        reads = "sentence pairs" if predictor.paired else "single texts"
        has = "pairs (text_pair_column)" if data.paired else "single texts"
        raise DataError(f"{where}: the data holds {has}, but the model in '{args.model_dir}' reads {reads}")
    if data.regression:
        labels = split.labels
    elif data.multi_label:  # the data's label columns in the model's order
        labels = np.zeros((len(split), len(predictor.label_names)), dtype=np.float32)
        for j, name in enumerate(data.label_names):
            labels[:, predictor.label_names.index(name)] = split.labels[:, j]
    else:
        to_model = np.array([predictor.label_names.index(n) for n in data.label_names])
        labels = to_model[split.labels]
    rows = f"all {len(split)} rows" if data.whole else f"{len(split)} {split_name} rows"
    console.print(f"evaluating {args.model_dir} on {rows} of {data.source}")
    proba = predictor.proba(split.texts, split.pairs)
    summary = write_evaluation(
        out,
        predictor.model,
        predictor.tokenizer,
        split.texts,
        labels,
        proba,
        predictor.label_names,
        max_length=predictor.max_length,
        device=predictor.device,
        explain=args.explain,
        pairs=split.pairs,
        thresholds=np.asarray(predictor.thresholds) if predictor.thresholds else None,
    )
    if data.regression:
        console.print(
            f"rmse {summary['rmse']:.4f} · mae {summary['mae']:.4f} · r2 {summary['r2']:.4f} · "
            f"pearson {summary['pearson']:.4f} · spearman {summary['spearman']:.4f} · files in {out}"
        )
        return 0
    console.print(escape((out / "classification_report.txt").read_text()))
    if data.multi_label:
        console.print(
            f"subset accuracy {summary['subset_accuracy']:.4f} · Hamming loss {summary['hamming_loss']:.4f} · "
            f"{summary['n_mistakes']} wrong decisions · files in {out}"
        )
        return 0
    console.print(
        f"accuracy {summary['accuracy']:.4f} · ECE {summary['ece']:.4f} · "
        f"{summary['n_misclassified']} misclassified · files in {out}"
    )
    return 0


def quiet_warnings() -> None:
    """Library deprecation chatter is for autoft's developers, not its users."""
    warnings.filterwarnings("ignore", category=FutureWarning)
    warnings.filterwarnings("ignore", category=DeprecationWarning)
    warnings.filterwarnings("ignore", message=".*experimental feature.*")


def entry() -> None:
    set_process_defaults()  # before torch or the tokenizer loads
    quiet_warnings()
    code = main()
    # Exiting: a Ctrl-C now (a second press, or one still on its way to this process) would turn the
    # exit code already decided (130 after an interruption) into a KeyboardInterrupt at shutdown.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    # Under `python -m autoft`, CPython kills itself with SIGINT at exit (code -2, not 130) when a
    # KeyboardInterrupt ever ended a string exec or eval, even one caught later: dataclasses build their
    # methods with exec, so a Ctrl-C landing in one while transformers imports does. Each string
    # exec first clears that flag (`unhandled_keyboard_interrupt`), so one more, harmless, keeps our code.
    exec("pass", {})  # noqa: S102
    # Done: the interpreter's exit need not garbage-collect torch's and the model's objects one by one
    # (a second or more); the operating system takes the memory back. Files are closed and hooks have run.
    gc.freeze()
    sys.exit(code)


if __name__ == "__main__":  # pragma: no cover
    entry()
