"""Bad input: one line naming the file, key or column and what would be valid; exit 2; no traceback;
and nothing in an existing run folder changes."""

import hashlib
import shutil

import pytest

from autoft.testing import write_csv, write_study


@pytest.fixture
def existing_run(finished_run):
    """A finished one-trial study (conftest's shared ``finished_run``), whose run folder every bad input below
    must leave untouched: (root, data, study tables)."""
    return finished_run.root, finished_run.data, finished_run.tables


def snapshot(folder):
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def with_(study, table, **values):
    out = {k: dict(v) for k, v in study.items()}
    out.setdefault(table, {}).update(values)
    return out


def without(study, table):
    return {k: v for k, v in study.items() if k != table}


def csv(tmp_path, name, text):
    path = tmp_path / name
    path.write_text(text)
    return str(path)


def no_safetensors(tmp_path, model):
    folder = tmp_path / "bin-model"
    shutil.copytree(model, folder)
    for f in folder.glob("*.safetensors"):
        f.rename(f.with_suffix(".bin"))
    return str(folder)


# (id, how to make the study from (base study, tmp_path, tiny model, data path), extra CLI args, expected text)
CASES = [
    ("unknown table", lambda s, t, m, d: {**s, "bogus": {"x": 1}}, [], "unknown table [bogus]; valid tables:"),
    ("no dataset table", lambda s, t, m, d: without(s, "dataset"), [], "missing table [dataset]"),
    ("unknown dataset", lambda s, t, m, d: with_(s, "dataset", type="nope"), [], "unknown dataset 'nope'; available:"),
    (
        "unknown dataset key",
        lambda s, t, m, d: with_(s, "dataset", colour="red"),
        [],
        "[dataset]: unknown key 'colour'; valid keys:",
    ),
    (
        "wrong type",
        lambda s, t, m, d: with_(s, "search", n_trials="ten"),
        [],
        "[search] n_trials: expected an integer, got 'ten'",
    ),
    ("float epochs", lambda s, t, m, d: with_(s, "space", epochs=1.5), [], "[space] epochs: expected an integer"),
    (
        "inverted range",
        lambda s, t, m, d: with_(s, "space", learning_rate={"low": 1e-2, "high": 1e-4}),
        [],
        "[space] learning_rate: low (0.01) must be below high (0.0001)",
    ),
    (
        "log range at zero",
        lambda s, t, m, d: with_(s, "space", weight_decay={"low": 0.0, "high": 0.1, "log": True}),
        [],
        "a log range needs low > 0",
    ),
    ("zero batch", lambda s, t, m, d: with_(s, "space", batch_size=0), [], "batch_size: 0 is out of range"),
    ("tiny max_length", lambda s, t, m, d: with_(s, "model", max_length=2), [], "max_length: 2 is out of range"),
    ("unknown strategy", lambda s, t, m, d: {**s, "strategies": {"qlora": {}}}, [], "unknown strategy 'qlora'"),
    (
        "unknown strategy option",
        lambda s, t, m, d: {**s, "strategies": {"lora": {"rank": 8}}},
        [],
        "[strategies.lora]: unknown key 'rank'; valid keys:",
    ),
    ("unknown metric", lambda s, t, m, d: with_(s, "search", objective="auc"), [], "unknown metric 'auc'; available:"),
    (
        "unknown pruner",
        lambda s, t, m, d: with_(s, "search", pruner="hyperopt"),
        [],
        "[search] pruner: 'hyperopt' is not one of 'auto', 'sha', 'asha', 'median', 'hyperband', 'none'",
    ),
    ("bad storage url", lambda s, t, m, d: with_(s, "study", storage="redis://x"), [], "is not a storage URL"),
    (
        "unreachable storage",
        lambda s, t, m, d: with_(with_(s, "study", storage="mysql://nobody@127.0.0.1:1/none"), "study", name="other"),
        [],
        "[study] storage 'mysql://nobody@127.0.0.1:1/none': cannot open",
    ),
    ("study name with a slash", lambda s, t, m, d: with_(s, "study", name="a/b"), [], "must be a plain folder name"),
    ("missing plugin file", lambda s, t, m, d: with_(s, "study", plugins=["nowhere.py"]), [], "plugin file '"),
    ("missing data file", lambda s, t, m, d: with_(s, "dataset", path=str(t / "nope.csv")), [], "does not exist"),
    (
        "missing text column",
        lambda s, t, m, d: with_(s, "dataset", text_column="review"),
        [],
        "no column 'review' (text_column); columns present: text, label",
    ),
    (
        "missing label column",
        lambda s, t, m, d: with_(s, "dataset", label_column="stars"),
        [],
        "no column 'stars' (label_column); columns present: text, label",
    ),
    ("empty file", lambda s, t, m, d: with_(s, "dataset", path=csv(t, "empty.csv", "")), [], "the file is empty"),
    (
        "header only",
        lambda s, t, m, d: with_(s, "dataset", path=csv(t, "head.csv", "text,label\n")),
        [],
        "the train split is empty",
    ),
    (
        "one class",
        lambda s, t, m, d: with_(s, "dataset", path=csv(t, "one.csv", "text,label\n" + "a b,x\n" * 30)),
        [],
        "train has a single class ('x')",
    ),
    (
        "unseen test label",
        lambda s, t, m, d: with_(
            s, "dataset", path="", train=str(d), test=csv(t, "test.csv", "text,label\ngood,pos\nodd,weird\n")
        ),
        [],
        "test has labels that train lacks: 'weird'",
    ),
    (
        "empty texts",
        lambda s, t, m, d: with_(s, "dataset", path=csv(t, "blank.csv", "text,label\n" + "a,x\n b,y\n" * 10 + " ,x\n")),
        [],
        "train has 1 empty or missing texts (rows 20)",
    ),
    ("undecodable", lambda s, t, m, d: with_(s, "dataset", path=latin1(t)), [], "cannot decode as utf-8 at byte"),
    ("missing model", lambda s, t, m, d: with_(s, "model", name=str(t / "no-model")), [], "does not exist"),
    (
        "hub data as a URL",
        lambda s, t, m, d: {**s, "dataset": {"type": "hub", "id": "https://huggingface.co/datasets/stanfordnlp/imdb"}},
        [],
        "[dataset] id 'https://huggingface.co/datasets/stanfordnlp/imdb' is a URL; give the Hub id, 'stanfordnlp/imdb'",
    ),
    (
        "data as a URL",
        lambda s, t, m, d: with_(s, "dataset", path="https://example.com/reviews.csv"),
        [],
        "[dataset] 'https://example.com/reviews.csv' is a URL; the dataset reads local files",
    ),
    ("data as a wildcard", lambda s, t, m, d: with_(s, "dataset", path="*.csv"), [], "wildcards are not expanded"),
    (
        "model as a hub URL",
        lambda s, t, m, d: with_(s, "model", name="https://huggingface.co/google-bert/bert-base-uncased/tree/main"),
        [],
        "is a URL; give the Hub id, 'google-bert/bert-base-uncased'",
    ),
    (
        "pickled weights only",
        lambda s, t, m, d: with_(s, "model", name=no_safetensors(t, m)),
        [],
        "has no .safetensors weights; autoft loads safetensors only",
    ),
    ("zero trials", lambda s, t, m, d: s, ["--n-trials", "0"], "argument --n-trials: must be at least 1, got 0"),
    ("malformed --set", lambda s, t, m, d: s, ["--set", "search"], "expected key=value"),
    (
        "other data, same study",
        lambda s, t, m, d: with_(s, "dataset", path=write_other(t)),
        [],
        "was created with dataset",
    ),
    # pandas' missing-value words are labels and texts like any other: a label "None" is a class
    (
        "a label 'None' is a class, not missing",
        lambda s, t, m, d: with_(s, "dataset", path=csv(t, "none.csv", "text,label\ngreat,None\nawful,pos\n" * 3)),
        [],
        "autoft carves the test and validation splits from train",
    ),
    # a folder where a file is expected, and the reverse
    (
        "train is a folder",
        lambda s, t, m, d: with_(s, "dataset", path="", train=str(t)),
        [],
        "train names one file (use path for a folder of split files)",
    ),
    ("model name is a file", lambda s, t, m, d: with_(s, "model", name=str(d)), [], "is a file, not a model folder"),
    (
        "plugin entry is a folder",
        lambda s, t, m, d: with_(s, "study", plugins=[str(t)]),
        [],
        "is a folder; list Python files (.py)",
    ),
    (
        "output_dir below a file",
        lambda s, t, m, d: with_(s, "study", output_dir=str(d)),
        [],
        "is a file, not a folder; set output_dir to a folder",
    ),
    (  # /proc takes no new folders, whoever asks (root included, whom permission bits do not stop)
        "output_dir where no folder can be made",
        lambda s, t, m, d: with_(s, "study", output_dir="/proc/autoft-no-such-folder"),
        [],
        "cannot create the run folder '/proc/autoft-no-such-folder/",
    ),
    # what a file really holds, named
    (
        "utf-16 csv",
        lambda s, t, m, d: with_(s, "dataset", path=raw(t, "u16.csv", "text,label\na,b\n".encode("utf-16"))),
        [],
        "is UTF-16 text (it starts with a UTF-16 byte-order mark), not utf-8; set [dataset] encoding = 'utf-16'",
    ),
    (
        "csv.gz that is not gzip",
        lambda s, t, m, d: with_(s, "dataset", path=csv(t, "plain.csv.gz", "text,label\na,b\n")),
        [],
        "not a gzip file (the name ends in .gz, but it holds text starting 'text,label')",
    ),
    (
        "parquet that is csv",
        lambda s, t, m, d: with_(s, "dataset", path=csv(t, "fake.parquet", "text,label\na,b\n")),
        [],
        "not a Parquet file (it holds text starting 'text,label')",
    ),
    (
        "binary file named .csv",
        lambda s, t, m, d: with_(s, "dataset", path=raw(t, "bin.csv", bytes(range(256)) * 4)),
        [],
        "is not text (binary data: a zero byte at byte 0)",
    ),
    (
        "zero-byte jsonl",
        lambda s, t, m, d: with_(s, "dataset", path=raw(t, "zero.jsonl", b"")),
        [],
        "the file is empty (0 bytes)",
    ),
    # text that is not text
    (
        "text_column = []",
        lambda s, t, m, d: with_(s, "dataset", text_column=[]),
        [],
        "[dataset] text_column: an empty list names no column",
    ),
    (
        "malformed template",
        lambda s, t, m, d: with_(s, "dataset", text_template="{text"),
        [],
        "[dataset] text_template '{text': expected '}' before end of string",
    ),
    (
        "positional template field",
        lambda s, t, m, d: with_(s, "dataset", text_template="{0}"),
        [],
        "no column '0' (text_template); columns present: text, label",
    ),
    (
        "list texts",
        lambda s, t, m, d: with_(
            s, "dataset", path=jsonl(t, [{"text": ["a", "b"], "label": "xy"[i % 2]} for i in range(9)])
        ),
        [],
        "column 'text' (text_column) holds lists, not text (rows 0, 1, 2, 3, 4, ...)",
    ),
    # too few rows for autoft's own carving
    (
        "a class with one row",
        lambda s, t, m, d: with_(
            s, "dataset", path=csv(t, "rare.csv", "text,label\n" + "good day,x\n" * 30 + "odd,y\n")
        ),
        [],
        "but class 'y' has only 1 row (it needs 3: one for train, one for each carved split)",
    ),
    # study-file values
    (
        "boolean for an integer",
        lambda s, t, m, d: with_(s, "search", n_trials=True),
        [],
        "expected an integer, got true",
    ),
    ("duplicate choices", lambda s, t, m, d: with_(s, "space", epochs=[1, 1]), [], "choice 1 is listed twice"),
    ("not a device", lambda s, t, m, d: with_(s, "train", device="gpu"), [], "[train] device: 'gpu' is not a device"),
]


def raw(tmp_path, name, content: bytes):
    path = tmp_path / name
    path.write_bytes(content)
    return str(path)


def jsonl(tmp_path, rows):
    import json

    path = tmp_path / "rows.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return str(path)


def latin1(tmp_path):
    path = tmp_path / "latin1.csv"
    path.write_bytes(b"text,label\n" + "café crème,x\nthé,y\n".encode("latin-1") * 10)
    return str(path)


def write_other(tmp_path):
    return str(write_csv(tmp_path / "other.csv", 200, seed=9))


def test_there_are_at_least_twenty_cases():
    assert len(CASES) >= 20


@pytest.mark.parametrize("make, args, expected", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_bad_input_is_one_line_exit_2_and_changes_nothing(existing_run, tiny_bert, tmp_path, cli, make, args, expected):
    root, data, study = existing_run
    before = snapshot(root / "runs")
    path = write_study(tmp_path / "bad.toml", make(study, tmp_path, tiny_bert, data))
    result = cli("study", "run", path, "--no-progress", *args)
    assert result.code == 2, result.out + result.err
    assert expected in result.err
    assert result.err.startswith("error: ") and result.err.count("\n") == 1, result.err
    assert "Traceback" not in result.err + result.out
    assert snapshot(root / "runs") == before


def test_bad_toml_and_missing_files(tmp_path, cli):
    broken = tmp_path / "broken.toml"
    broken.write_text("[study]\nname = \n")
    result = cli("study", "run", broken)
    assert result.code == 2 and "broken.toml: invalid TOML" in result.err and result.err.count("\n") == 1
    result = cli("study", "run", tmp_path / "nope.toml")
    assert result.code == 2 and "study file" in result.err and "does not exist" in result.err


def test_flags_are_never_abbreviated(cli, tmp_path):
    """``--text`` is no flag of predict; argparse would have read it as ``--text-column``."""
    result = cli("predict", tmp_path, "--text", "a great film")
    assert result.code == 2 and "unrecognized arguments: --text" in result.err and "\n" not in result.err.strip()
