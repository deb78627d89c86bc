"""Generated bad input (Hypothesis): study files and data files nobody wrote by hand.

The promise of tests/test_bad_input.py, for inputs drawn at random: ``autoft study check`` exits 0,
or exits 2 with exactly one line on stderr starting ``error: `` and no traceback; a data file that
loads keeps every row, and a label or text spelled "None", "NA" or "null" stays that string; a bad
study run against an existing run folder leaves the folder byte for byte as it was.
"""

from __future__ import annotations

import bz2
import datetime
import gzip
import io
import json
import lzma
import zipfile
from pathlib import Path

import pandas as pd
import pytest
import tomli_w
from hypothesis import HealthCheck, assume, event, given, settings
from hypothesis import strategies as st

from autoft.errors import DataError
from autoft.testing import sentiment_rows, write_csv, write_study

SETTINGS = {
    "deadline": None,
    "derandomize": True,
    "database": None,
    "suppress_health_check": [HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.filter_too_much],
}
#: words pandas would read as missing; autoft keeps them as the strings they are
NA_WORDS = ["None", "NA", "null", "NaN", "n/a", "nan", "NULL", "N/A", "#N/A", "-nan", "<NA>"]


def run_cli(capsys, *args) -> tuple[int, str, str]:
    from autoft.cli import main

    code = main([str(a) for a in args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def assert_promise(code: int, out: str, err: str) -> None:
    """Exit 0, or exit 2 with one line on stderr that starts with 'error: '; never a traceback."""
    assert "Traceback" not in out + err, out + err
    assert code in (0, 2), (code, out, err)
    if code == 2:
        assert err.startswith("error: ") and err.count("\n") == 1, err
        assert err.strip().isprintable(), err


# ---------------------------------------------------------------- study files

#: keys worth mutating, by table (valid ones, so the values are what gets checked), and a few unknown ones
KEYS = {
    "study": ["name", "seed", "output_dir", "storage", "plugins"],
    "model": ["name", "max_length", "revision", "trust_remote_code"],
    "dataset": [
        "type",
        "path",
        "train",
        "validation_size",
        "test_size",
        "max_train_rows",
        "text_column",
        "text_template",
        "label_column",
        "label_names",
        "encoding",
        "format",
        "split_column",
        "task",
        "text_pair_column",
        "label_separator",
        "label_columns",
    ],
    "train": [
        "eval_every",
        "early_stopping_patience",
        "max_grad_norm",
        "precision",
        "eval_batch_size",
        "device",
        "rungs",
        "rung_validation_rows",
        "feature_cache",
        "regression_loss",
        "scale_targets",
        "calibrate",
    ],
    "search": [
        "n_trials",
        "timeout",
        "objective",
        "direction",
        "sampler",
        "pruner",
        "reduction_factor",
        "budget",
        "gpus",
        "isolation",
        "trials_per_gpu",
        "cpu_trials",
    ],
    "space": ["learning_rate", "epochs", "batch_size", "weight_decay", "class_weights", "head", "layer_decay"],
    "strategies.full": ["freeze_layers", "freeze_embeddings", "learning_rate"],
    "strategies.lora": ["r", "alpha", "dropout", "target_modules", "bias"],
    "search.optuna": ["n_jobs", "x"],
    "models.a": ["name", "max_length", "learning_rate", "epochs", "revision"],
    "models.full": ["name", "batch_size"],
}
#: values that would reach out of this machine (hub ids, servers) or run for long are never drawn for these
FIXED = {
    ("model", "name"): [
        *["", "./no-model", "a/b/c", "{file}", "{folder}", "{model}"],
        *[["{model}", "{folder}"], ["{model}", "{model}"], [], ["{model}", 3], ["{model}", "./no-model"]],
    ],
    ("models.a", "name"): ["", "{model}", "{file}", "{folder}", "./no-model"],
    ("models.full", "name"): ["{model}", "a/b/c"],
    ("dataset", "type"): ["files", "tabular", "nope", "", "FILES"],
    ("study", "storage"): ["", "redis://x", "sqlite://", "sqlite:///:memory:", "not a url"],
    ("search", "backend"): ["optuna", "nope", ""],
    ("search", "isolation"): ["auto", "worker", "process", "none", "Worker", "fork", ""],
    ("search", "pruner"): ["auto", "sha", "asha", "median", "none", "SHA", ""],
    ("dataset", "task"): ["auto", "classification", "regression", "multi_label", "", "Regression", "pairs"],
    ("dataset", "text_pair_column"): ["", "text", "label", "nope", "TEXT"],
    ("dataset", "label_columns"): [[], ["label"], ["text"], ["nope"], ["label", "label"], "label"],
}

odd_text = st.one_of(
    st.sampled_from(["", " ", "x", "a\nb", "\t", "..", ".", "/", "é", "{", "}", "{text", "{0}", "{a.b}", "none"]),
    st.sampled_from(NA_WORDS),
    st.text(max_size=12),
    st.text(alphabet=st.characters(codec="utf-8"), min_size=200, max_size=300),
)
scalars = st.one_of(
    st.integers(min_value=-3, max_value=70),
    st.integers(),
    st.sampled_from([0, -1, 2**31, 2**63 - 1, 2**63, 10**30, -(10**30)]),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([0.0, -0.0, 1e-300, 1e300, 0.5, 1.0, 1.5]),
    st.booleans(),
    odd_text,
    st.datetimes(min_value=datetime.datetime(1, 1, 1), max_value=datetime.datetime(9999, 1, 1)),
    st.dates(),
    st.times(),
)
ranges = st.fixed_dictionaries(
    {"low": scalars, "high": scalars},
    optional={"log": st.one_of(st.booleans(), scalars), "step": scalars, "x": scalars},
)
values = st.one_of(
    scalars,
    st.lists(scalars, max_size=4),
    st.lists(st.sampled_from([1, 2, 2, 16, 0.5, "a", "none", "balanced"]), max_size=4),
    ranges,
    st.fixed_dictionaries({"choices": st.lists(scalars, max_size=3)}),
    st.dictionaries(st.text(max_size=6), scalars, max_size=3),
    st.dictionaries(st.text(max_size=4), st.dictionaries(st.text(max_size=4), scalars, max_size=2), max_size=2),
)


@st.composite
def mutations(draw):
    """(table, key, value) changes; a value of None drops the key (or, with no key, the table)."""
    changes = []
    for _ in range(draw(st.integers(1, 3))):
        table = draw(st.sampled_from(sorted(KEYS)))
        key = draw(st.one_of(st.sampled_from(KEYS[table]), st.text(min_size=1, max_size=8)))
        kind = draw(st.sampled_from(["value", "value", "value", "value", "drop key", "drop table"]))
        if kind == "drop table":
            changes.append((table, None, None))
        elif kind == "drop key":
            changes.append((table, key, None))
        elif (table, key) in FIXED:
            changes.append((table, key, draw(st.sampled_from(FIXED[table, key]))))
        else:
            changes.append((table, key, draw(values)))
    if draw(st.integers(0, 19)) == 19:  # a whole table that is not a table
        changes.append((draw(st.sampled_from(["study", "model", "search", "space", "train", "strategies"])), "", 3))
    return changes


def apply(study: dict, changes, files: dict) -> dict:
    out = json.loads(json.dumps(study))
    for table, key, value in changes:
        *parents, name = table.split(".")
        node = out
        for parent in parents:
            node = node.setdefault(parent, {})
            if not isinstance(node, dict):
                break
        if not isinstance(node, dict):
            continue
        if key == "":
            node[name] = value
            continue
        if key is None:
            node.pop(name, None)
            continue
        target = node.setdefault(name, {})
        if not isinstance(target, dict):
            continue
        if value is None:
            target.pop(key, None)
        else:
            target[key] = _with_files(value, files)
    return out


def _with_files(value, files: dict):
    """``value`` with the placeholders of ``files`` ({model}, {file}, ...) replaced, in lists too."""
    if isinstance(value, list):
        return [_with_files(v, files) for v in value]
    return files.get(value, value) if isinstance(value, str) else value


@pytest.fixture(scope="module")
def study_base(tmp_path_factory, tiny_bert):
    root = tmp_path_factory.mktemp("generated-studies")
    data = write_csv(root / "reviews.csv", 120)
    (root / "a-file.txt").write_text("not a folder\n")
    (root / "a-folder").mkdir()
    study = {
        "study": {"name": "gen", "seed": 0, "output_dir": str(root / "runs")},
        "model": {"name": str(tiny_bert), "max_length": 32},
        "dataset": {"type": "files", "path": str(data)},
        "search": {"n_trials": 1, "isolation": "none", "pruner": "none"},
        "space": {"learning_rate": 5e-3, "epochs": 1, "batch_size": 16},
    }
    files = {"{file}": str(root / "a-file.txt"), "{folder}": str(root / "a-folder"), "{model}": str(tiny_bert)}
    return root, study, files


@settings(max_examples=40, **SETTINGS)
@given(changes=mutations())
def test_generated_study_files_pass_the_check_or_fail_in_one_line(study_base, capsys, monkeypatch, changes):
    root, study, files = study_base
    monkeypatch.chdir(root)  # relative output_dir, plugins and paths land in the test's own folder
    try:
        text = tomli_w.dumps(apply(study, changes, files))
    except (TypeError, ValueError):  # a value TOML cannot hold (tomli_w refuses it): not a study file
        assume(False)
    path = root / "study.toml"
    path.write_text(text)
    before = sorted(p.name for p in root.iterdir())
    code, out, err = run_cli(capsys, "study", "check", path)
    assert_promise(code, out, err)
    event(f"exit {code}")
    assert sorted(p.name for p in root.iterdir()) == before  # the check writes nothing


def test_a_few_study_values_by_hand(study_base, capsys, monkeypatch):
    """Odd values the generator may not reach: the message names the key and what is valid."""
    root, study, files = study_base
    monkeypatch.chdir(root)
    cases = [
        (("search", "n_trials", True), "[search] n_trials: expected an integer, got true"),
        (("search", "n_trials", 2**64), "[search] n_trials: 18446744073709551616 is too large"),
        (("search", "timeout", float("nan")), "[search] timeout: expected a finite number, got nan"),
        (("study", "seed", 2**40), "[study] seed: 1099511627776 is out of range"),
        (("study", "name", datetime.datetime(2020, 1, 1)), "[study] name: expected a string"),
        (("model", "name", {"a": 1}), "[model] name: expected a string, got a table"),
        (("model", "name", files["{file}"]), "is a file, not a model folder"),
        (("study", "output_dir", files["{file}"]), "is a file, not a folder"),
        (("study", "output_dir", ""), "[study] output_dir is empty"),
        (("study", "plugins", [files["{folder}"]]), "is a folder; list Python files (.py)"),
        (("study", "plugins", [""]), "[study] plugins: an empty entry"),
        (("study", "storage", "sqlite://"), "is an in-memory database"),
        (("study", "name", "a\nb"), "[study] name 'a\\nb' must be a plain folder name"),
        (("space", "epochs", [2, 2]), "[space] epochs: choice 2 is listed twice"),
        (("space", "epochs", []), "[space] epochs: a list of choices must not be empty"),
        (("space", "learning_rate", {"low": 0.1, "high": 0.01}), "low (0.1) must be below high (0.01)"),
        (("space", "weight_decay", {"low": 0.0, "high": 0.1, "log": True}), "a log range needs low > 0"),
        (("space", "learning_rate", {"low": 0.1, "high": 0.2, "step": 0.5}), "step: 0.5 is more than high - low"),
        (("search", "gpus", [0, 0]), "[search] gpus lists GPU 0 twice"),
        (("search", "gpus", [-1]), "[search] gpus: -1 is not a GPU index"),
        (("search", "optuna", 3), "[search] optuna: expected a table of the optuna backend's settings"),
        (("search", "objective", "a\nb"), "unknown metric 'a\\nb'"),
        (("dataset", "text_column", []), "[dataset] text_column: an empty list names no column"),
        (("dataset", "text_template", "{text"), "[dataset] text_template '{text': expected '}'"),
        (("dataset", "text_template", "{text} {}"), "an empty '{}' names no columns"),
        (("dataset", "text_template", "{0}"), "no column '0' (text_template); columns present: text, label"),
        (("dataset", "text_template", "{a.b}"), "no column 'a.b' (text_template)"),
        (("dataset", "text_column", "label"), "label_column 'label' is also in text_column"),
        (("dataset", "path", files["{folder}"]), "has no train.csv"),
        (("dataset", "validation_size", 0.99), "autoft carves the test and validation splits from train"),
    ]
    for (table, key, value), expected in cases:
        path = write_study(root / "by-hand.toml", apply(study, [(table, key, value)], {}))
        code, out, err = run_cli(capsys, "study", "check", path)
        assert_promise(code, out, err)
        assert code == 2 and expected in err, (table, key, value, err)


# ---------------------------------------------------------------- data files

FORMATS = ["csv", "tsv", "jsonl", "json", "parquet"]
ENCODINGS = ["utf-8", "utf-8-sig", "utf-16", "latin-1", "cp1252"]
COMPRESSIONS = ["", "", "", ".gz", ".bz2", ".xz", ".zip", ".gz!"]  # '!': the suffix, without the compression

words = st.sampled_from([t for t in sentiment_rows(40)[0]])
cells = st.one_of(
    words,
    words,
    st.sampled_from(NA_WORDS),
    st.sampled_from(["", " ", "  \t", "0", "17", "1.50", "007", "-3", "1e5", "True", "false", '"', "a,b", "a\tb"]),
    st.text(max_size=8),
    st.text(alphabet=st.characters(codec="utf-8"), min_size=300, max_size=500),
    st.sampled_from(["é à ü", "日本語のテキスト", "emoji 😀 text", "line\nbreak", "carriage\rreturn"]),
    st.integers(-(10**6), 10**6),
    st.floats(allow_nan=True, allow_infinity=False, width=32),
    st.lists(st.sampled_from(["a", "b"]), max_size=2),
    st.dictionaries(st.sampled_from(["a", "b"]), st.integers(0, 3), max_size=2),
)
labels = st.one_of(st.sampled_from(["pos", "neg", "None", "NA", "null", "n/a", " pos", "", "1", "0"]), cells)
column_names = st.one_of(
    st.sampled_from(["text", "label", "Text", " text", "label ", "", "0", "a.b", "None", "NA", "text.1"]),
    st.text(max_size=6),
)


@st.composite
def data_files(draw):
    """A table and how it is written; 'clean' ones are nearly right, so that many of them load."""
    clean = draw(st.sampled_from([True, True, False]))
    n = draw(st.integers(2 if clean else 0, 14))
    text_cells = st.one_of(words, words, words, st.sampled_from(NA_WORDS)) if clean else cells
    label_cells = st.sampled_from(["pos", "neg", "None", "NA", "null", "n/a"]) if clean else labels
    rows = [{"text": draw(text_cells), "label": draw(label_cells)} for _ in range(n)]
    extra = draw(st.lists(column_names, max_size=2))
    for name in extra:
        for row in rows:
            row[name] = draw(cells)
    return {
        "rows": rows,
        "columns": ["text", "label", *extra],
        "format": draw(st.sampled_from(FORMATS)),
        "encoding": draw(st.sampled_from(["utf-8", "utf-8"] if clean else ENCODINGS)),
        "declared": draw(
            st.sampled_from(["", "same"] if clean else ["", "same", "utf-8", "latin-1", "utf-16", "nope"])
        ),
        "compression": draw(st.sampled_from(["", ".gz", ".zip"] if clean else COMPRESSIONS)),
        "layout": draw(st.sampled_from(["same file for every split", "same file for every split", "carved"])),
        "text_column": draw(st.sampled_from(["text"] if clean else ["text", "text", "label", "missing", ["text"], []])),
        "truncate": None if clean else draw(st.sampled_from([None, None, None, 0, 1, 7])),
    }


def write_data(folder: Path, spec: dict) -> Path:
    """The rows in the spec's format, encoding and compression (or a file that only claims them)."""
    frame = pd.DataFrame(spec["rows"], columns=list(dict.fromkeys(spec["columns"])))
    kind, encoding = spec["format"], spec["encoding"]
    if kind == "parquet":
        buf = io.BytesIO()
        frame.to_parquet(buf, index=False)
        content = buf.getvalue()
    else:
        if kind in ("csv", "tsv"):
            text = frame.to_csv(index=False, sep="," if kind == "csv" else "\t")
        else:
            text = frame.to_json(orient="records", lines=kind == "jsonl", force_ascii=False)
        content = text.encode(encoding, errors="replace")
    if spec["truncate"] is not None:
        content = content[: spec["truncate"]]
    compression = spec["compression"]
    fake = compression.endswith("!")
    compression = compression.rstrip("!")
    path = folder / f"data.{kind}{compression}"
    if compression and not fake:
        if compression == ".gz":
            content = gzip.compress(content)
        elif compression == ".bz2":
            content = bz2.compress(content)
        elif compression == ".xz":
            content = lzma.compress(content)
        else:
            buf = io.BytesIO()
            with zipfile.ZipFile(buf, "w") as z:
                z.writestr(f"data.{kind}", content)
            content = buf.getvalue()
    path.write_bytes(content)
    return path


@pytest.fixture(scope="module")
def data_base(tmp_path_factory, tiny_bert):
    root = tmp_path_factory.mktemp("generated-data")
    study = {
        "study": {"name": "gen-data", "output_dir": str(root / "runs")},
        "model": {"name": str(tiny_bert), "max_length": 32},
        "search": {"n_trials": 1, "isolation": "none", "pruner": "none"},
    }
    return root, study


@settings(max_examples=40, **SETTINGS)
@given(spec=data_files())
def test_generated_data_files_load_faithfully_or_fail_in_one_line(data_base, capsys, spec):
    from autoft.config import load_study
    from autoft.workbench import load_data

    root, study = data_base
    folder = root / "data"
    folder.mkdir(exist_ok=True)
    for old in folder.iterdir():
        old.unlink()
    try:
        path = write_data(folder, spec)
    except (ValueError, TypeError, ArithmeticError, ImportError):  # pyarrow refuses columns of mixed types
        assume(False)
    dataset = {"type": "files", "text_column": spec["text_column"]}
    if spec["layout"] == "carved":
        dataset |= {"path": str(path), "validation_size": 0.34, "test_size": 0.34}
    else:
        dataset |= {"train": str(path), "validation": str(path), "test": str(path)}
    declared = spec["encoding"] if spec["declared"] == "same" else spec["declared"]
    if declared:
        dataset["encoding"] = declared
    study_path = write_study(root / "data-study.toml", {**study, "dataset": dataset})
    code, out, err = run_cli(capsys, "study", "check", study_path)
    assert_promise(code, out, err)
    event(f"exit {code}")
    if code != 0:
        return
    # it loaded: every row is there, and the words pandas takes for missing values are kept as written
    data = load_data(*load_study(study_path))
    rows = spec["rows"]
    if spec["layout"] != "carved":
        assert len(data.train) == len(rows)
    texts = set(data.train.texts + data.validation.texts + data.test.texts)
    for row in rows:
        if row["label"] in NA_WORDS:
            assert row["label"] in data.label_names, (row, data.label_names)
        if spec["text_column"] in ("text", ["text"]) and row["text"] in NA_WORDS:
            assert row["text"] in texts, (row, texts)


@pytest.mark.parametrize("kind", ["csv", "tsv", "jsonl", "json", "parquet"])
def test_na_words_stay_strings_in_every_format(tmp_path, kind):
    """A label "None" and a text "NA" are what they say, in every format; a truly empty cell is still missing."""
    from autoft import LoadContext
    from autoft.data import prepare
    from autoft.options import build
    from autoft_plugins.datasets.files import Files, FilesOptions

    texts, y = sentiment_rows(30)
    rows = [{"text": t, "label": "None" if label == "neg" else label} for t, label in zip(texts, y)]
    rows += [{"text": "NA", "label": "null"}, {"text": "null", "label": "null"}, {"text": "n/a", "label": "NA"}]
    rows += [{"text": "None", "label": "NA"}]
    spec = {"rows": rows, "columns": ["text", "label"], "format": kind, "encoding": "utf-8", "compression": ""}
    path = write_data(tmp_path, {**spec, "truncate": None})
    raw = Files().load(build(FilesOptions, {"train": path.name, "test": path.name}, "[dataset]"), LoadContext(tmp_path))
    assert raw.splits["train"].labels[-4:] == ["null", "null", "NA", "NA"]
    assert raw.splits["train"].texts[-4:] == ["NA", "null", "n/a", "None"]
    data = prepare(raw, seed=0, validation_size=0.2, test_size=0.2, where="w")
    assert set(data.label_names) == {"NA", "None", "null", "pos"}
    # a truly empty cell (an empty CSV field, a JSON or Parquet null) is still missing, and reported by row
    empty = "" if kind in ("csv", "tsv") else None
    write_data(tmp_path, {**spec, "rows": [*rows, {"text": empty, "label": "pos"}], "truncate": None})
    raw = Files().load(build(FilesOptions, {"train": path.name, "test": path.name}, "[dataset]"), LoadContext(tmp_path))
    with pytest.raises(DataError, match=rf"train has 1 empty or missing texts \(rows {len(rows)}\)"):
        prepare(raw, seed=0, validation_size=0.2, test_size=0.2, where="w")


# ---------------------------------------------------------------- an existing run folder


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory, tiny_bert):
    """A finished one-trial study, which no bad study below may change."""
    from autoft.cli import main

    root = tmp_path_factory.mktemp("generated-existing")
    data = write_csv(root / "reviews.csv", 120)
    study = {
        "study": {"name": "tiny", "output_dir": str(root / "runs")},
        "model": {"name": str(tiny_bert), "max_length": 32},
        "dataset": {"type": "files", "path": str(data)},
        "search": {"n_trials": 1, "isolation": "none", "pruner": "none"},
        "space": {"learning_rate": 5e-3, "epochs": 1, "batch_size": 16},
    }
    assert main(["study", "run", str(write_study(root / "study.toml", study)), "--no-progress"]) == 0
    return root, study


def snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


#: integer keys (where a list or a {low, high} table would be a search): every value drawn for them is wrong
INT_KEYS = [("search", "n_trials"), ("model", "max_length"), ("train", "eval_batch_size"), ("study", "seed")]
wrong_for_int = st.one_of(
    st.text(max_size=6),
    st.booleans(),
    st.floats().filter(lambda f: not f.is_integer()),
    st.just(-5),
    st.just(2**64),
    st.lists(st.text(max_size=3), min_size=1, max_size=2),
    st.fixed_dictionaries({"x": st.integers()}),
    st.dates(),
)


FILES = {"fake-gz": "fake.csv.gz", "utf16": "utf16.csv", "empty": "empty.csv", "tiny": "tiny.csv"}


@st.composite
def bad_changes(draw):
    which = draw(st.integers(0, 3))
    if which == 0:
        table, key = draw(st.sampled_from(INT_KEYS))
        return [(table, key, draw(wrong_for_int))]
    if which == 1:  # an unknown key
        table = draw(st.sampled_from(["study", "model", "dataset", "search", "space", "train"]))
        return [(table, "x_" + draw(st.text(max_size=5)), draw(scalars))]
    if which == 2:  # a data file that is not what it says
        return [("dataset", "path", draw(st.sampled_from(["{fake-gz}", "{utf16}", "{empty}", "{tiny}"])))]
    return [("space", "epochs", draw(st.sampled_from([[2, 2], [], {"low": 3, "high": 1}, 0, "two"])))]


@settings(max_examples=12, **SETTINGS)
@given(changes=bad_changes())
def test_generated_bad_studies_leave_an_existing_run_folder_as_it_was(finished_run, capsys, changes):
    root, study = finished_run
    before = snapshot(root / "runs")
    (root / "fake.csv.gz").write_text("text,label\na,b\n")
    (root / "utf16.csv").write_bytes("text,label\na b,x\nc d,y\n".encode("utf-16"))
    (root / "empty.csv").write_bytes(b"")
    (root / "tiny.csv").write_text("text,label\ngreat,pos\nawful,neg\nsuperb,pos\n")
    files = {f"{{{name}}}": str(root / f) for name, f in FILES.items()}
    path = write_study(root / "bad.toml", apply(study, changes, files))
    code, out, err = run_cli(capsys, "study", "run", path, "--no-progress")
    assert_promise(code, out, err)
    assert code == 2, (changes, out, err)
    assert snapshot(root / "runs") == before
