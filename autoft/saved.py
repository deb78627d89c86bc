"""Reading what autoft saved: one safe reader per file kind, and the saved model folder (``runs/<study>/best/``).

Every file autoft reads back (JSON, TOML, NumPy ``.npy``, safetensors, its CSV, text and PNG
outputs) goes through a reader here. A truncated, garbled or wrongly shaped file becomes a
:class:`DamagedFile`: one line naming the file, what is wrong with it and what to do. Callers
that read a derived file (a cache, a checkpoint, the best model's export) catch it and rebuild
the file instead.

Only the standard library is imported up front, so the light commands (``autoft study
leaderboard``) stay light; NumPy, torch and transformers load when a reader needs them.
"""

from __future__ import annotations

import csv
import io
import json
import struct
import tomllib
from pathlib import Path
from typing import Any

from .errors import AutoftError, ModelError, first_line

#: [model] max_length when a study file leaves it out (the default of autoft.config.ModelSection)
DEFAULT_MAX_LENGTH = 128
#: bookkeeping files of a saved model folder that loading the model does not read
NOT_MODEL_FILES = ("trial.json", "metrics.json")
#: text files autoft writes (and its report reads back)
TEXT_SUFFIXES = (".html", ".md", ".txt")
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
PNG_END = b"IEND\xaeB`\x82"
#: bytes per element of each safetensors dtype
SAFETENSORS_DTYPES = {
    "BOOL": 1,
    "U8": 1,
    "I8": 1,
    "F8_E5M2": 1,
    "F8_E4M3": 1,
    "I16": 2,
    "U16": 2,
    "F16": 2,
    "BF16": 2,
    "I32": 4,
    "U32": 4,
    "F32": 4,
    "I64": 8,
    "U64": 8,
    "F64": 8,
}


class DamagedFile(AutoftError):
    """A file cannot be read back: missing bytes, garbled, or not the shape autoft wrote."""

    def __init__(self, path: Path | str, reason: str, fix: str):
        self.path, self.reason, self.fix = Path(path), reason, fix
        super().__init__(f"'{path}' cannot be read ({reason}); {fix}")

    def __reduce__(self):  # pickled across worker processes with its three parts
        return type(self), (self.path, self.reason, self.fix)


# --- one reader per file kind ---------------------------------------------------------------------


def read_bytes(path: Path, fix: str) -> bytes:
    path = Path(path)
    try:
        return path.read_bytes()
    except IsADirectoryError:
        raise DamagedFile(path, "it is a folder, not a file", fix) from None
    except OSError as exc:
        raise DamagedFile(path, exc.strerror or first_line(exc), fix) from exc


def read_text(path: Path, fix: str) -> str:
    """A UTF-8 text file."""
    data = read_bytes(path, fix)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise DamagedFile(path, f"not UTF-8 text at byte {exc.start}", fix) from exc


def read_json(path: Path, fix: str, kind: type | None = dict) -> Any:
    """A JSON file; ``kind`` (dict or list), when given, is what its top level must be."""
    text = read_text(path, fix)
    if not text.strip():
        raise DamagedFile(path, "empty file", fix)
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise DamagedFile(path, f"invalid JSON: {first_line(exc)}", fix) from exc
    except RecursionError as exc:
        raise DamagedFile(path, "invalid JSON: nested too deeply", fix) from exc
    if kind is not None and not isinstance(data, kind):
        want = {dict: "an object", list: "an array"}.get(kind, kind.__name__)
        raise DamagedFile(path, f"expected {want} at the top, found {type(data).__name__}", fix)
    return data


def read_toml(path: Path, fix: str) -> dict:
    text = read_text(path, fix)
    if not text.strip():
        raise DamagedFile(path, "empty file", fix)  # autoft never writes one: a study file has [dataset]
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise DamagedFile(path, f"invalid TOML: {first_line(exc)}", fix) from exc


def read_npy(path: Path, fix: str, *, mmap: bool = True, finite: bool = False) -> Any:
    """A NumPy ``.npy`` array (never pickled objects); ``finite`` also refuses NaN and inf."""
    import numpy as np

    path = Path(path)
    if not path.is_file():
        read_bytes(path, fix)  # the reason: missing, a folder, unreadable
    try:
        array = np.load(path, mmap_mode="r" if mmap else None, allow_pickle=False)
    except Exception as exc:  # truncated data, a garbled header, pickled objects, an archive
        raise DamagedFile(path, f"not a whole NumPy array: {first_line(exc)}", fix) from exc
    if not isinstance(array, np.ndarray):
        raise DamagedFile(path, "not a single NumPy array", fix)
    if finite and array.dtype.kind in "fc" and not np.isfinite(array).all():
        raise DamagedFile(path, "it holds NaN or infinite values", fix)
    return array


def safetensors_header(path: Path, fix: str) -> dict:
    """The tensors a safetensors file declares, checked against its size (without reading the weights)."""
    path = Path(path)
    try:
        with open(path, "rb") as f:
            size = f.seek(0, io.SEEK_END)
            f.seek(0)
            if size < 8:
                raise DamagedFile(path, f"only {size} bytes, not a safetensors file", fix)
            (length,) = struct.unpack("<Q", f.read(8))
            if length > size - 8:
                raise DamagedFile(path, f"truncated or garbled: a {length}-byte header in a {size}-byte file", fix)
            raw = f.read(length)
    except IsADirectoryError:
        raise DamagedFile(path, "it is a folder, not a file", fix) from None
    except OSError as exc:
        raise DamagedFile(path, exc.strerror or first_line(exc), fix) from exc
    try:
        header = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise DamagedFile(path, "garbled safetensors header", fix) from exc
    if not isinstance(header, dict):
        raise DamagedFile(path, "garbled safetensors header", fix)
    data = size - 8 - length
    end = 0
    for name, info in header.items():
        if name == "__metadata__":
            continue
        try:
            dtype, shape, (begin, stop) = info["dtype"], info["shape"], info["data_offsets"]
            count = 1
            for n in shape:
                count *= int(n)
            ok = 0 <= begin <= stop <= data and stop - begin == count * SAFETENSORS_DTYPES[dtype]
        except (TypeError, KeyError, ValueError):
            ok = False
        if not ok:
            raise DamagedFile(path, f"tensor '{name}' does not fit the file (truncated or garbled)", fix)
        end = max(end, stop)
    if end != data:
        raise DamagedFile(path, f"truncated or garbled: {data} bytes of weights where the header declares {end}", fix)
    return header


def read_safetensors(path: Path, fix: str) -> dict:
    """The tensors of a safetensors file, checked whole and finite."""
    import torch
    from safetensors.torch import load_file

    safetensors_header(path, fix)
    try:
        tensors = load_file(path)
    except Exception as exc:
        raise DamagedFile(path, f"not valid safetensors: {first_line(exc)}", fix) from exc
    bad = [n for n, t in tensors.items() if t.is_floating_point() and not torch.isfinite(t).all()]
    if bad:
        raise DamagedFile(path, f"NaN or infinite weights in {', '.join(sorted(bad)[:3])}", fix)
    return tensors


def check_png(path: Path, fix: str) -> None:
    """A whole PNG image: its signature, then chunks whose checksums match, up to the IEND chunk that ends it."""
    import zlib

    data = read_bytes(path, fix)
    if not data.startswith(PNG_SIGNATURE) or not data.endswith(PNG_END):
        raise DamagedFile(path, "not a whole PNG image", fix)
    at = len(PNG_SIGNATURE)
    while at + 12 <= len(data):
        (length,) = struct.unpack(">I", data[at : at + 4])
        body = data[at + 4 : at + 8 + length]
        if at + 12 + length > len(data) or struct.unpack(">I", data[at + 8 + length : at + 12 + length])[0] != (
            zlib.crc32(body) & 0xFFFFFFFF
        ):
            raise DamagedFile(path, f"a garbled PNG image (chunk at byte {at})", fix)
        at += 12 + length
        if body[:4] == b"IEND":
            break
    if at != len(data):
        raise DamagedFile(path, "not a whole PNG image", fix)


def check_table(path: Path, fix: str) -> None:
    """A CSV or TSV file autoft wrote: UTF-8, every row as wide as the header, the last line ended."""
    text = read_text(path, fix)
    try:
        rows = list(csv.reader(io.StringIO(text, newline=""), delimiter="\t" if path.suffix == ".tsv" else ","))
    except csv.Error as exc:
        raise DamagedFile(path, f"invalid CSV: {first_line(exc)}", fix) from exc
    if not rows:
        raise DamagedFile(path, "empty file", fix)
    if not text.endswith("\n"):  # autoft ends every line, the last too
        raise DamagedFile(path, "its last line is cut off", fix)
    width = len(rows[0])
    for number, row in enumerate(rows[1:], 2):
        if len(row) != width:
            raise DamagedFile(path, f"line {number} has {len(row)} fields, the header {width}", fix)


def check_file(path: Path, fix: str) -> None:
    """Check one file by its kind (its suffix): it must read back whole. Unknown kinds must be readable."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix == ".json":
        read_json(path, fix, kind=None)
    elif suffix == ".toml":
        read_toml(path, fix)
    elif suffix == ".npy":
        read_npy(path, fix, finite=True)
    elif suffix == ".safetensors":
        read_safetensors(path, fix)
    elif suffix == ".png":
        check_png(path, fix)
    elif suffix in (".csv", ".tsv"):
        check_table(path, fix)
    elif suffix in TEXT_SUFFIXES:
        read_text(path, fix)
    else:
        read_bytes(path, fix)


def check_folder(folder: Path, fix: str, skip: tuple[str, ...] = ()) -> None:
    """Check every file directly in ``folder`` (not hidden ones, not subfolders, not ``skip``)."""
    for path in sorted(Path(folder).iterdir()):
        if path.is_file() and not path.name.startswith(".") and path.name not in skip:
            check_file(path, fix)


# --- the saved model folder ---------------------------------------------------------------------------


def model_fix(folder: Path) -> str:
    """What to do about a damaged saved model folder."""
    folder = Path(folder)
    if folder.parent.name == "checkpoints":
        return "delete it; the next study run trains that trial again"
    if folder.name == "best" and ((folder.parent / "study.db").is_file() or (folder.parent / "study.toml").is_file()):
        return f"run the study again (autoft study run) to rebuild '{folder}', or restore it from a copy"
    return f"restore the model folder '{folder}' from a copy, or save it again"


def run_folder_hint(folder: Path, marker: str) -> str:
    """What to give instead of ``folder``, which lacks a run folder's ``marker`` file: the run folder it is
    inside (a saved model, an evaluation), the run folders it holds (an output_dir), or what one looks like."""
    folder = Path(folder)
    if (folder.parent / marker).is_file():
        return f"it is inside the run folder '{folder.parent}': give that"
    held = sorted(str(p.parent) for p in folder.glob(f"*/{marker}"))
    if held:
        more = f" and {len(held) - 3} more" if len(held) > 3 else ""
        return f"it holds run folders: give one, such as {', '.join(map(repr, held[:3]))}{more}"
    return "is it a run folder (runs/<study>)?"


def check_model_folder(folder: Path) -> None:
    """A saved model folder that :func:`load_trained` can load: a folder, with config.json; nothing damaged.

    Checks the JSON files loading reads (config, tokenizer, head) and every safetensors file's
    header (not the weights: :func:`load_trained` checks those once loaded).
    """
    folder = Path(folder)
    where = "give a saved model folder (runs/<study>/best)"
    if not folder.exists():
        raise ModelError(f"'{folder}' does not exist; {where}")
    if not folder.is_dir():
        raise ModelError(f"'{folder}' is a file, not a folder; {where}")
    if not (folder / "config.json").is_file():
        if (folder / "best" / "config.json").is_file():
            raise ModelError(f"'{folder}' is a run folder; give its saved model: '{folder / 'best'}'")
        raise ModelError(f"'{folder}' is not a saved model folder (no config.json); {where}")
    fix = model_fix(folder)
    for path in sorted(folder.glob("*.json")):
        if path.name not in NOT_MODEL_FILES:
            read_json(path, fix, kind=None)
    read_json(folder / "config.json", fix)
    weights = sorted(folder.glob("*.safetensors"))
    if not weights:
        raise ModelError(f"'{folder}' has no .safetensors weights; {fix}")
    for path in weights:
        safetensors_header(path, fix)


def read_head_spec(folder: Path, fix: str) -> Any:
    """The folder's custom head (``autoft_head.json``), or None; a damaged one is a :class:`DamagedFile`."""
    from .heads import ACTIVATIONS, HEAD_FILE, HeadSpec

    path = Path(folder) / HEAD_FILE
    if not path.is_file():
        return None
    data = read_json(path, fix)
    try:
        spec = HeadSpec(**data)
    except TypeError as exc:
        raise DamagedFile(path, f"not a head description: {first_line(exc)}", fix) from exc
    size, dropout = spec.hidden_size, spec.dropout
    if isinstance(size, bool) or not isinstance(size, int) or size < 1:
        raise DamagedFile(path, f"hidden_size = {size!r} is not a positive integer", fix)
    if isinstance(dropout, bool) or not isinstance(dropout, (int, float)) or not 0 <= dropout < 1:
        raise DamagedFile(path, f"dropout = {dropout!r} is not in [0, 1)", fix)
    if not isinstance(spec.activation, str) or spec.activation not in ACTIVATIONS:
        raise DamagedFile(path, f"activation = {spec.activation!r} is not one of {', '.join(ACTIVATIONS)}", fix)
    return spec


def load_trained(folder: Path, tokenizer: bool = True) -> tuple[Any, Any]:
    """A fine-tuned model (safetensors only) and, if asked, its tokenizer, from a saved folder.

    The folder is checked first (:func:`check_model_folder`): a damaged file is named, not guessed
    at. A custom head (``autoft_head.json``) is rebuilt before the weights are loaded. Weights that
    are NaN or infinite are refused.
    """
    import torch
    from transformers import AutoConfig, AutoModelForSequenceClassification, AutoTokenizer

    from .heads import install_head
    from .models import TOKENIZER_FILES, quiet_transformers

    quiet_transformers()
    folder = Path(folder)
    check_model_folder(folder)
    fix = model_fix(folder)
    head = read_head_spec(folder, fix)
    weights = sorted(folder.glob("*.safetensors"))
    names = ", ".join(p.name for p in [folder / "config.json", *weights])
    try:
        if head is None:
            model = AutoModelForSequenceClassification.from_pretrained(
                folder, use_safetensors=True, dtype=torch.float32
            )
        else:
            model = AutoModelForSequenceClassification.from_config(AutoConfig.from_pretrained(folder))
            install_head(model, head, seed=0)
            load_safetensors(model, folder)
    except AutoftError:
        raise
    except Exception as exc:
        raise ModelError(f"cannot load the model in '{folder}' ({names}): {first_line(exc)}; {fix}") from exc
    bad = [n for n, p in model.named_parameters() if p.is_floating_point() and not torch.isfinite(p).all()]
    if bad:
        where = f"'{weights[0]}' holds" if len(weights) == 1 else f"the weights of '{folder}' hold"
        raise ModelError(f"{where} NaN or infinite values ({', '.join(bad[:3])}); {fix}")
    tok = None
    if tokenizer:
        try:
            tok = AutoTokenizer.from_pretrained(folder)
        except Exception as exc:
            files = ", ".join(n for n in (*TOKENIZER_FILES, "tokenizer_config.json") if (folder / n).is_file())
            raise ModelError(
                f"cannot load the tokenizer in '{folder}' ({files or 'no tokenizer files'}): {first_line(exc)}; {fix}"
            ) from exc
    model.eval()
    return model, tok


def load_safetensors(model: Any, folder: Path) -> None:
    """Load every weight of ``model`` from the folder's safetensors files; a missing weight is an error."""
    folder = Path(folder)
    fix = model_fix(folder)
    files = sorted(folder.glob("*.safetensors"))
    if not files:
        raise ModelError(f"'{folder}' has no .safetensors weights")
    state: dict = {}
    for f in files:
        state.update(read_safetensors(f, fix))
    missing, _ = model.load_state_dict(state, strict=False)
    persistent = {n for n, _ in model.named_parameters()}
    lost = sorted(set(missing) & persistent)
    if lost:
        raise ModelError(f"'{folder}' lacks weights for {', '.join(lost[:3])}; {fix}")


def trained_max_length(folder: Path, tokenizer: Any) -> int:
    """The max_length the model was trained with, from the folder's study.toml.

    Without a study.toml, the tokenizer's limit (512 where it has none). A study.toml
    that cannot be read, or whose ``[model] max_length`` is not a positive integer,
    is an error: guessing would silently truncate texts differently from training.
    """
    path = Path(folder) / "study.toml"
    if not path.exists():
        limit = tokenizer.model_max_length
        return limit if limit and limit < 100_000 else 512
    fix = "restore it or pass --max-length"
    study = read_toml(path, fix)
    model = study.get("model", {})
    if not isinstance(model, dict):
        raise ModelError(f"'{path}': [model] is not a table; {fix}")
    value = model.get("max_length", DEFAULT_MAX_LENGTH)
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ModelError(f"'{path}': [model] max_length = {value!r} is not a positive integer; {fix}")
    return value


#: what the model reads: its input columns (one text, or two for a sentence pair)
TASK = "task.json"
#: the input columns of a model whose study did not name them
DEFAULT_INPUTS = {1: ("text",), 2: ("text", "text_pair")}


def task_inputs(paired: bool, columns: tuple[str, ...] = ()) -> list[str]:
    """``task.json``'s input columns for a study's data: the dataset's names when it gave the right number."""
    want = 2 if paired else 1
    return list(columns) if len(columns) == want else list(DEFAULT_INPUTS[want])


def trained_inputs(folder: Path) -> tuple[str, ...]:
    """The names of the model's inputs: ``("text",)``, or two names for a sentence-pair model.

    A folder saved before ``task.json`` existed reads single texts.
    """
    path = Path(folder) / TASK
    if not path.exists():
        return DEFAULT_INPUTS[1]
    fix = model_fix(Path(folder))
    inputs = read_json(path, fix).get("inputs")
    if (
        not isinstance(inputs, list)
        or len(inputs) not in (1, 2)
        or not all(isinstance(c, str) and c.strip() for c in inputs)
        or len(set(inputs)) != len(inputs)
    ):
        raise DamagedFile(path, f"inputs = {inputs!r} is not a list of one or two column names", fix)
    return tuple(inputs)


def trained_thresholds(folder: Path, label_names: list[str]) -> list[float] | None:
    """A multi-label model's decision threshold per label (``task.json``), or None for other models."""
    path = Path(folder) / TASK
    if not path.exists():
        return None
    fix = model_fix(Path(folder))
    data = read_json(path, fix)
    if data.get("task") != "multi_label":
        return None
    cuts = data.get("thresholds")
    if not isinstance(cuts, dict) or set(cuts) != set(label_names):
        raise DamagedFile(path, "thresholds do not name each of the model's labels once", fix)
    values = [cuts[n] for n in label_names]
    if not all(isinstance(v, (int, float)) and not isinstance(v, bool) and 0 < v < 1 for v in values):
        raise DamagedFile(path, f"thresholds {values} are not all between 0 and 1", fix)
    return [float(v) for v in values]


class SavedTask:
    """What a saved model reads and predicts, from its ``inputs`` (``task.json``) and ``label_names``:
    the part :class:`~autoft.predict.Predictor` and :class:`~autoft.onnx_predict.OnnxPredictor` share."""

    inputs: tuple[str, ...]
    label_names: list[str]

    @property
    def paired(self) -> bool:
        """Whether the model reads sentence pairs (``proba`` then needs ``pairs``)."""
        return len(self.inputs) == 2

    @property
    def regression(self) -> bool:
        """Whether the model predicts a number (one output) rather than a class."""
        return len(self.label_names) == 1


def softmax_temperature(folder: Path, single_label: bool) -> float:
    """The temperature to apply: ``calibration.json``'s for a single-label classifier; 1.0 for a regression's
    number or a multi-label model's sigmoids (temperature scaling rescales a softmax; studies calibrate neither)."""
    return trained_temperature(folder) if single_label else 1.0


#: the temperature the model's logits are divided by (temperature scaling, fitted on validation by the study)
CALIBRATION = "calibration.json"


def trained_temperature(folder: Path) -> float:
    """The folder's calibration temperature (1.0, no scaling, when the study did not calibrate)."""
    path = Path(folder) / CALIBRATION
    if not path.exists():
        return 1.0
    fix = "restore it, or delete it to predict without temperature scaling"
    value = read_json(path, fix).get("temperature")
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value < float("inf"):
        raise ModelError(f"'{path}': temperature = {value!r} is not a positive number; {fix}")
    return float(value)
