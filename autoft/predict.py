"""Predicting labels for new texts with a saved model (batched, sorted by length, no gradients).

What ``autoft predict`` is given is checked before the model loads: the model folder, the
texts (none may be empty, blank or missing: a label for no text is noise), the ``--output``
file (a known format, in a folder that exists, never the input nor a file of the model or
its run folder). Texts are taken as written: "NA", "None" or "null" are texts to label, as a
Hugging Face pipeline would take them; only the table's real missing values (a JSON or
Parquet null) are missing. A model whose weights or outputs are not finite is refused: no
NaN probability is ever written.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from . import tables
from .calibration import scale
from .errors import ConfigError, DataError, ModelError
from .features import encode
from .preflight import position_limit
from .saved import (
    SavedTask,
    load_trained,
    model_fix,
    softmax_temperature,
    trained_inputs,
    trained_max_length,
    trained_thresholds,
)
from .texts import WHAT, not_unicode, surrogate_note
from .training import autocast_dtype, predict_proba, resolve_device

__all__ = [
    "Predictions",
    "Predictor",
    "check_evaluation_out",
    "check_output",
    "check_texts",
    "read_table",
    "read_texts",
    "table_texts",
    "trained_max_length",
    "write_table",
]

#: joins a multi-label prediction's labels in a table cell
LABEL_SEPARATOR = "|"
#: rows named in a message before "and N more"
SHOWN_ROWS = 5
FORMATS = ".csv, .tsv, .jsonl, .json or .parquet"


@dataclass
class Predictions:
    texts: list[str]
    label_names: list[str]
    proba: np.ndarray
    pairs: list[str] | None = None
    thresholds: list[float] | None = None  # a multi-label model's, one per label

    @property
    def regression(self) -> bool:
        """Whether these are numbers (a regression model's, one column) rather than class probabilities."""
        return self.proba.shape[1] == 1

    @property
    def labels(self) -> list[str]:
        """Each text's label; a multi-label model's labels joined with :data:`LABEL_SEPARATOR`."""
        if self.thresholds is not None:
            return [LABEL_SEPARATOR.join(names) for names in self.label_sets]
        return [self.label_names[i] for i in self.proba.argmax(axis=1)]

    @property
    def label_sets(self) -> list[list[str]]:
        """A multi-label model's labels of each text: those whose probability reaches their threshold."""
        cuts = np.asarray(self.thresholds if self.thresholds is not None else [0.5] * len(self.label_names))
        return [[n for n, on in zip(self.label_names, row) if on] for row in self.proba >= cuts[None, :]]

    @property
    def values(self) -> np.ndarray:
        """A regression model's predictions."""
        return self.proba[:, 0]

    def frame(self) -> pd.DataFrame:
        """label, probability of that label, and one p(<label>) column per class; for regression, prediction."""
        if self.regression:
            return pd.DataFrame({"prediction": self.values})
        if self.thresholds is not None:  # multi-label: the set, and each label's probability
            out = pd.DataFrame({"labels": self.labels})
            for i, name in enumerate(self.label_names):
                out[f"p({name})"] = self.proba[:, i]
            return out
        out = pd.DataFrame({"label": self.labels, "probability": self.proba.max(axis=1)})
        for i, name in enumerate(self.label_names):
            out[f"p({name})"] = self.proba[:, i]
        return out


def check_device(name: str):
    """The torch device for ``--device``; one this machine lacks is an error, not a crash mid-way."""
    import torch

    device = resolve_device(name)
    if device.type == "cuda":
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if count == 0:
            raise ConfigError(f"--device {name}: this machine has no CUDA GPU visible to torch; use --device cpu")
        if device.index is not None and device.index >= count:
            raise ConfigError(f"--device {name}: there is no GPU {device.index} (GPUs 0 to {count - 1} are visible)")
    elif device.type == "mps" and not (torch.backends.mps.is_available()):
        raise ConfigError(f"--device {name}: Apple's MPS is not available here; use --device cpu")
    return device


class Predictor(SavedTask):
    """A saved model and its tokenizer, ready to label texts (or sentence pairs: ``inputs`` names two columns)."""

    def __init__(self, folder: str | Path, device: str = "auto", batch_size: int = 128, max_length: int | None = None):
        self.folder = Path(folder)
        self.inputs = trained_inputs(self.folder)
        self.device = check_device(device)
        self.model, self.tokenizer = load_trained(self.folder)
        self.model.to(self.device)
        self.batch_size = batch_size
        self.max_length = max_length or trained_max_length(self.folder, self.tokenizer)
        limit = position_limit(self.model.config)
        if limit is not None and self.max_length > limit:
            given = "--max-length" if max_length else f"[model] max_length of '{self.folder / 'study.toml'}'"
            raise ConfigError(f"{given}: {self.max_length} tokens is more than the model takes ({limit})")
        config = self.model.config
        try:
            self.label_names = [str(config.id2label[i]) for i in range(config.num_labels)]
        except (KeyError, TypeError) as exc:
            raise ModelError(
                f"'{self.folder / 'config.json'}': id2label does not name labels 0 to {config.num_labels - 1}; "
                f"{model_fix(self.folder)}"
            ) from exc
        if self.tokenizer.pad_token_id is None:
            raise ModelError(f"the tokenizer in '{self.folder}' has no padding token; {model_fix(self.folder)}")
        self.thresholds = trained_thresholds(self.folder, self.label_names)
        self.temperature = softmax_temperature(self.folder, not self.regression and self.thresholds is None)

    def proba(self, texts: list[str], pairs: list[str] | None = None) -> np.ndarray:
        """Class probabilities (a regression model's predictions, as one column); all finite, or a
        :class:`ModelError` naming the model and the texts."""
        import torch

        check_pairs(self.inputs, texts, pairs, f"the model in '{self.folder}'")
        zeros = np.zeros(len(texts), dtype=np.int64)
        enc = encode(self.tokenizer, texts, zeros, self.max_length, pairs=list(pairs) if pairs is not None else None)
        try:
            proba = predict_proba(
                self.model,
                enc,
                batch_size=self.batch_size,
                device=self.device,
                pad_id=int(self.tokenizer.pad_token_id),
                dtype=autocast_dtype("auto", self.device),
            )
        except torch.OutOfMemoryError as exc:
            raise ConfigError(
                f"--batch-size {self.batch_size}: out of memory on {self.device}; use a smaller --batch-size"
            ) from exc
        fix = f"its weights are damaged or it overflows: {model_fix(self.folder)}"
        return finish(proba, self.temperature, f"the model in '{self.folder}'", fix)

    def __call__(self, texts: list[str], pairs: list[str] | None = None) -> Predictions:
        pairs = None if pairs is None else list(pairs)
        return Predictions(list(texts), self.label_names, self.proba(list(texts), pairs), pairs, self.thresholds)


def check_pairs(inputs: tuple[str, ...], texts: list[str], pairs: list[str] | None, source: str) -> None:
    """Second texts exactly when the model reads pairs, one per text."""
    if len(inputs) == 2 and pairs is None:
        raise ConfigError(f"{source} reads sentence pairs ({inputs[0]}, {inputs[1]}): give each text its second text")
    if len(inputs) == 1 and pairs is not None:
        raise ConfigError(f"{source} reads single texts, not pairs: give texts alone")
    if pairs is not None and len(pairs) != len(texts):
        raise ConfigError(f"{len(texts)} texts but {len(pairs)} second texts: give one second text per text")


def finish(proba: np.ndarray, temperature: float, source: str, fix: str) -> np.ndarray:
    """Apply the saved temperature; refuse NaN or infinite probabilities in one line naming the texts."""
    proba = scale(proba, temperature) if temperature != 1.0 else proba
    bad = np.flatnonzero(~np.isfinite(proba).all(axis=1))
    if len(bad):
        raise ModelError(
            f"{source} gives NaN or infinite probabilities for {_rows(bad + 1, 'text')} of {len(proba)}; {fix}"
        )
    return proba


def _rows(numbers, noun: str = "row") -> str:
    """'row 3' or 'rows 3, 7, 9, 12, 15 and 4 more' (numbers counted from 1)."""
    numbers = [int(n) for n in numbers]
    if len(numbers) == 1:
        return f"{noun} {numbers[0]}"
    shown = ", ".join(map(str, numbers[:SHOWN_ROWS]))
    more = f" and {len(numbers) - SHOWN_ROWS} more" if len(numbers) > SHOWN_ROWS else ""
    return f"{noun}s {shown}{more}"


def check_texts(texts: list[str]) -> None:
    """Texts given as arguments: none may be empty or only whitespace."""
    blank = [i for i, t in enumerate(texts, 1) if not t.strip()]
    if blank:
        raise ConfigError(
            f"{_rows(blank, 'text')} of the {len(texts)} given {'is' if len(blank) == 1 else 'are'} empty "
            "or only whitespace; give texts with words in them"
        )
    bad = not_unicode(texts)
    if bad:
        raise ConfigError(
            f"{_rows([i + 1 for i in bad], 'text')} of the {len(texts)} given {'holds' if len(bad) == 1 else 'hold'} "
            f"{WHAT} ({surrogate_note(texts[bad[0]])}); give UTF-8 text"
        )


def read_texts(path: Path) -> list[str]:
    """``--file``: one text per line (UTF-8); blank lines are skipped, and a file with no text is an error.
    ``-`` reads standard input, as Unix tools do."""
    path = Path(path)
    if str(path) == "-":
        where = "--file - (standard input)"
        data = sys.stdin.buffer.read()
    else:
        where = f"--file '{path}'"
        if not path.exists():
            raise ConfigError(f"{where} does not exist")
        if path.is_dir():
            raise ConfigError(f"{where} is a folder; give a text file with one text per line")
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise ConfigError(f"{where} cannot be read ({exc.strerror or exc})") from exc
    try:
        text = data.decode("utf-8-sig")  # a byte-order mark is not part of the first text
    except UnicodeDecodeError as exc:
        raise DataError(f"{where}: not UTF-8 text at byte {exc.start}; save it as UTF-8") from exc
    texts = [line for line in text.splitlines() if line.strip()]
    if not texts:
        what = "is empty" if not data else "holds only blank lines"
        raise ConfigError(f"{where} {what}; give a text file with one text per line")
    return texts


def split_pairs(lines: list[str], flag: str) -> tuple[list[str], list[str]]:
    """A sentence-pair model's lines of a text file, ``first text<TAB>second text``: the firsts and the seconds."""
    halves = [line.split("\t", 1) for line in lines]
    bad = [i for i, h in enumerate(halves, 1) if len(h) != 2 or not h[0].strip() or not h[1].strip()]
    if bad:
        more = f" and {len(bad) - 1} more" if len(bad) > 1 else ""
        raise ConfigError(
            f"{flag}: text {bad[0]}{more} (counted from 1, blank lines skipped) is not two texts separated "
            "by a tab; the model reads sentence pairs: give a line per pair, 'first text<TAB>second text'"
        )
    return [h[0] for h in halves], [h[1] for h in halves]


#: the encoding setting named in autoft.tables' messages; predict has none to set
_ENCODING_KEY = "<autoft predict reads UTF-8>"


def read_table(path: Path, text_column: str, pair_column: str | None = None) -> pd.DataFrame:
    """The ``--input`` table of texts (CSV, TSV, JSON Lines, JSON or Parquet); its text column(s) must be there."""
    path = Path(path)
    if not path.exists():
        if str(path) == "-":
            raise ConfigError(
                "--input reads a table file, its format known by its extension; for texts on standard input, "
                "one per line, use --file -"
            )
        raise ConfigError(f"--input '{path}' does not exist")
    if path.is_dir():
        raise ConfigError(f"--input '{path}' is a folder; give a {FORMATS} file")
    if tables.format_of(path) is None:
        raise ConfigError(f"--input '{path}': use a {FORMATS} file")
    try:
        frame = tables.read_table(path, encoding_key=_ENCODING_KEY)
    except DataError as exc:
        cause = exc.__cause__
        if isinstance(cause, UnicodeDecodeError) or _ENCODING_KEY in str(exc):
            at = f" at byte {cause.start}" if isinstance(cause, UnicodeDecodeError) else ""
            raise DataError(f"--input '{path}': not UTF-8 text{at}; save it as UTF-8") from exc
        raise DataError(f"--input {exc}") from exc
    tables.require_columns(frame, [text_column], f"--input '{path}'", "--text-column")
    if pair_column is not None:
        tables.require_columns(frame, [pair_column], f"--input '{path}'", "--pair-column")
    if not len(frame):
        raise DataError(f"--input '{path}' has no rows; give a table with a row per text")
    return frame


def table_texts(frame: pd.DataFrame, column: str, path: Path, flag: str = "--text-column") -> list[str]:
    """The texts of an ``--input`` column; a missing value (null) or a blank cell is an error naming the rows."""
    values = frame[column].tolist()
    odd = [i for i, v in enumerate(values, 1) if not _missing(v) and not isinstance(v, (str, int, float))]
    if odd:
        kind = type(values[odd[0] - 1]).__name__
        raise DataError(
            f"--input '{path}': column '{column}' ({flag}) holds values that are not text ({kind}) "
            f"in {_rows(odd)}; give a column of texts"
        )
    missing = [i for i, v in enumerate(values, 1) if _missing(v)]
    blank = [i for i, v in enumerate(values, 1) if not _missing(v) and not str(v).strip()]
    if missing or blank:
        rows = sorted(missing + blank)
        kinds = " and ".join(k for k, n in (("missing", missing), ("blank", blank)) if n)
        raise DataError(
            f"--input '{path}': column '{column}' ({flag}) has no text ({kinds}) in {_rows(rows)} "
            f"of {len(values)} (counted from 1, after any header); drop those rows or fill them in"
        )
    return [str(v) for v in values]  # pandas' readers give no lone surrogates (see texts.py): none to check


def _missing(value: object) -> bool:
    if value is None or value is pd.NA or value is pd.NaT:
        return True
    return isinstance(value, float) and value != value


def _kind(path: Path) -> str:
    """The format of an output file; compressed files are not written."""
    kind = tables.SUFFIXES.get(path.suffix.lower())
    if kind is None:
        raise ConfigError(f"--output '{path}': use a {FORMATS} file")
    return kind


def _inside(path: Path, folder: Path) -> bool:
    try:
        path.resolve().relative_to(folder.resolve())
    except (ValueError, OSError):
        return False
    return True


def check_parent(flag: str, path: Path) -> None:
    """The folder ``path`` goes into exists, is a folder, and can be written."""
    parent = path.parent
    if not parent.exists():
        raise ConfigError(f"{flag} '{path}': the folder '{parent}' does not exist; create it first")
    if not parent.is_dir():
        raise ConfigError(f"{flag} '{path}': '{parent}' is a file, not a folder")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise ConfigError(f"{flag} '{path}': the folder '{parent}' is not writable")


def check_output(path: Path, model_dir: Path, sources: list[Path]) -> None:
    """``--output`` can be written, in a known format, without overwriting anything autoft or the user needs."""
    path = Path(path)
    if path.is_dir():
        raise ConfigError(f"--output '{path}' is a folder; give a file name in it, such as '{path / 'labels.csv'}'")
    _kind(path)
    check_parent("--output", path)
    for source in sources:
        if source.exists() and path.exists() and path.resolve() == source.resolve():
            raise ConfigError(f"--output '{path}' is the file the texts come from; write the labels to another file")
    model_dir = Path(model_dir)
    run_dir = model_dir.parent if model_dir.name == "best" else None
    protected = [model_dir] + ([run_dir] if run_dir and (run_dir / "study.toml").exists() else [])
    for folder in protected:
        if _inside(path, folder):
            raise ConfigError(
                f"--output '{path}' is inside '{folder}', which autoft wrote; write the labels somewhere else"
            )


def check_evaluation_out(out: Path, model_dir: Path) -> None:
    """``autoft evaluate --out``: a new folder, or an earlier evaluation's (replaced whole); never another folder."""
    out, model_dir = Path(out), Path(model_dir)
    if out.exists() and not out.is_dir():
        raise ConfigError(f"--out '{out}' is a file; give a folder for the evaluation files")
    if out.is_dir() and any(out.iterdir()) and not (out / "evaluation.json").is_file():
        raise ConfigError(
            f"--out '{out}' is a folder of other files (it holds no evaluation.json) and would be replaced; "
            "give a new folder"
        )
    run_dir = model_dir.parent if model_dir.name == "best" else None
    own = run_dir is not None and (run_dir / "study.toml").exists()
    if own and out.resolve() == (run_dir / "evaluation").resolve():
        raise ConfigError(f"--out '{out}' is the study's own test evaluation; give another folder")
    check_parent("--out", out)


def write_table(frame: pd.DataFrame, path: Path) -> None:
    from .fsutil import write_bytes, write_text

    kind = _kind(path)
    try:
        if kind == "csv":
            write_text(path, frame.to_csv(index=False))
        elif kind == "tsv":
            write_text(path, frame.to_csv(index=False, sep="\t"))
        elif kind in ("jsonl", "json"):
            write_text(path, frame.to_json(orient="records", lines=kind == "jsonl", force_ascii=False))
        else:
            import io

            buf = io.BytesIO()
            frame.to_parquet(buf, index=False)
            write_bytes(path, buf.getvalue())
    except OSError as exc:
        raise ConfigError(f"--output '{path}' cannot be written ({exc.strerror or exc})") from exc
