"""``autoft serve``: a saved model behind a small HTTP service (FastAPI on uvicorn).

- ``POST /predict`` takes ``{"texts": ["...", ...]}`` and answers
  ``{"predictions": [{"label": "pos", "score": 0.97, "scores": {"neg": 0.03, "pos": 0.97}}, ...]}``,
  one prediction per text, in order; a regression model (one output, the number it predicts) answers
  ``{"predictions": [{"prediction": 3.2}, ...]}``, in the target's units; a multi-label model (a decision
  threshold per label) answers ``{"predictions": [{"labels": ["pos"], "scores": {"neg": 0.03, "pos": 0.97}},
  ...]}``: the labels whose probability (each label's own, a sigmoid) reaches their threshold, in the model's
  label order (none, an empty list, where no label does). A sentence-pair model (its
  ``task.json`` names two inputs) takes ``{"texts": [...], "pairs": [...]}``: ``pairs[i]`` is the second
  text of ``texts[i]``.
- ``GET /health`` answers ``{"status": "ok"}``; ``GET /`` the model's task (``classification``, with its
  ``labels``; ``multi_label``, with its ``labels`` and their ``thresholds``; or ``regression``, with its
  ``target``), its metadata (its model card's front matter, or
  what ``metrics.json``, ``trial.json``, ``study.toml`` and ``config.json`` say), and how to call
  ``POST /predict`` (``predict.pairs`` says whether it takes pairs; ``predict.response``, what it answers).
- Concurrent requests are gathered into one batch (up to ``batch_size`` texts, waiting at most
  ``max_wait_ms`` after the first) and run as one forward pass in a worker thread: the event loop
  never waits on the model, and each request gets its own rows back (a pair's two texts stay together).
- Every refused request is a 4xx whose body is ``{"error": "<one line>"}`` naming the field and
  what would be valid; the body is read and checked here, not by FastAPI's validation.

The model is anything with ``.label_names`` and ``.proba(texts, pairs=None)`` (probabilities, one row per
text), and, for a sentence-pair model, ``.inputs`` (its two input names) or ``.paired``:
:class:`autoft.predict.Predictor`, or an ONNX runtime predictor with ``--onnx``. A model without
``inputs`` or ``paired`` reads single texts, and is called as ``proba(texts)``. A regression model has
``.regression`` True (or, without that attribute, one label name, its target) and ``proba`` gives one
column, its predictions; see :func:`is_regression`. A multi-label model has ``.thresholds``, one per label
(a model without that attribute, or with None, is not multi-label); see :func:`thresholds_of`.

Only the standard library and autoft.errors are imported up front: FastAPI and uvicorn (the ``serve`` extra) load
when a server is made, so ``autoft --help`` stays light.
"""

# no ``from __future__ import annotations``: FastAPI reads the routes' annotations (``request: Request``,
# imported inside create_app) at run time
import asyncio
import json
import signal
from collections import deque
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from .errors import AutoftError, ModelError, first_line, require, type_and_first_line
from .texts import WHAT, not_unicode, surrogate_note

#: texts per request unless ``--max-texts`` says otherwise
MAX_TEXTS = 1024
#: request body bytes allowed per text a request may hold (the body limit is this times max_texts, at least 1 MiB)
BODY_BYTES_PER_TEXT = 16 * 1024
#: the exported ONNX model a model folder holds for ``--onnx``
ONNX_FILE = "model.onnx"
EXAMPLE = '{"texts": ["Love it!", "Broke after a week."]}'
PAIR_EXAMPLE = (
    '{"texts": ["The cat sat on the mat.", "He left early."], '
    '"pairs": ["A cat was sitting on a mat.", "He stayed until the end."]}'
)
ENDPOINTS = "GET /, GET /health and POST /predict"
#: what POST /predict answers for EXAMPLE's two texts: a classifier (for its label names), a regression model
EXAMPLE_SCORES = (0.97, 0.92)
EXAMPLE_VALUES = (4.2, 1.5)
#: a multi-label example's probability of the labels a text does not have
EXAMPLE_UNLIKELY = 0.03


class Model(Protocol):
    """What the service needs of a model: its label names, and probabilities for a list of texts (or pairs).

    A sentence-pair model also has ``inputs`` (two names) or ``paired`` (True); see :func:`inputs_of`.
    A regression model's label names are its target's name alone, and ``proba`` gives its predictions
    as one column; see :func:`is_regression`. A multi-label model has ``thresholds``, a decision threshold
    per label, and ``proba`` gives each label's probability; see :func:`thresholds_of`.
    """

    label_names: list[str]

    def proba(self, texts: list[str], pairs: list[str] | None = None) -> Any:  # (n texts, n labels) probabilities
        ...


def inputs_of(model: Any) -> tuple[str, ...]:
    """The model's input names: one (single texts), or two for a sentence-pair model.

    Read from ``model.inputs`` and ``model.paired`` where it has them; a model with neither reads single texts.
    """
    inputs = tuple(str(i) for i in (getattr(model, "inputs", None) or ()))
    paired = bool(getattr(model, "paired", len(inputs) == 2))
    if len(inputs) != (2 if paired else 1):
        inputs = ("text", "text_pair") if paired else ("text",)
    return inputs


def is_regression(model: Any) -> bool:
    """Whether the model predicts a number: its ``regression`` attribute, or without one, a single label name
    (a classifier has two labels at least)."""
    regression = getattr(model, "regression", None)
    if regression is None:
        return len(getattr(model, "label_names", ()) or ()) == 1
    return bool(regression)


def thresholds_of(model: Any) -> list[float] | None:
    """A multi-label model's decision threshold per label (its ``thresholds`` attribute), or None for other
    models (without that attribute, or with None); thresholds that do not give one number per label are a
    :class:`ModelError`."""
    thresholds = getattr(model, "thresholds", None)
    if thresholds is None:
        return None
    names = list(getattr(model, "label_names", ()) or ())
    try:
        values = [float(t) for t in thresholds]
    except (TypeError, ValueError):
        raise ModelError(f"the model's thresholds {thresholds!r} are not numbers, one per label") from None
    if len(values) != len(names):
        raise ModelError(f"the model has {len(values)} thresholds for {len(names)} labels; it needs one per label")
    return values


class BadRequest(Exception):
    """A request the service refuses: an HTTP status (4xx) and one line saying what is wrong and what is valid."""

    def __init__(self, status: int, message: str):
        self.status, self.message = status, message
        super().__init__(message)


# --- the pieces that need neither FastAPI nor a model --------------------------------------------------


def require_server_packages() -> None:
    """FastAPI and uvicorn are importable, or one line saying how to install them."""
    require(("fastapi", "uvicorn"), "autoft serve", "serve")


def check_onnx(folder: Path) -> Path:
    """The folder's exported ONNX model, or one line saying how to make it (checked before anything loads)."""
    path = Path(folder) / ONNX_FILE
    if not path.is_file():
        raise ModelError(
            f"'{folder}' has no {ONNX_FILE} for --onnx; make it with: autoft export {folder} --onnx "
            "(or serve the model without --onnx)"
        )
    return path


def load_model(folder: Path, *, device: str = "auto", batch_size: int = 64, onnx: bool = False) -> Model:
    """The model to serve: the saved PyTorch model, or with ``onnx`` the folder's ``model.onnx``."""
    folder = Path(folder)
    if not onnx:
        from .predict import Predictor

        return Predictor(folder, device=device, batch_size=batch_size)
    path = check_onnx(folder)
    import importlib

    try:  # the ONNX export module, where there is one, provides the runtime predictor
        predictor = importlib.import_module("autoft.onnx_predict").OnnxPredictor
    except (ImportError, AttributeError):
        raise ModelError(
            f"'{path}' is there, but this version of autoft cannot run ONNX models; serve without --onnx"
        ) from None
    return predictor(folder, device=device, batch_size=batch_size)


def _kind(value: Any) -> str:
    """A JSON value's kind, as a message names it."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    return "an object"


def _items(indexes: Sequence[int], values: list | None = None, name: str = "texts") -> str:
    """ "'texts[3]'" or "'texts[0]', 'texts[4]', 'texts[5]' and 7 more" (counted from 0, as in the JSON);
    with ``values``, each item's kind too: "'texts[3]' (null)". ``name``: the field ('texts' or 'pairs')."""
    shown = [f"'{name}[{i}]'" + (f" ({_kind(values[i])})" if values is not None else "") for i in indexes[:3]]
    more = len(indexes) - len(shown)
    if more:
        return ", ".join(shown) + f" and {more} more"
    return shown[0] if len(shown) == 1 else ", ".join(shown[:-1]) + " and " + shown[-1]


def _strings(values: list, name: str, valid: str) -> None:
    """Every item of the field ``name`` is a string with words in it, or a 422 naming the items."""
    odd = [i for i, t in enumerate(values) if not isinstance(t, str)]
    if odd:
        verb = "is" if len(odd) == 1 else "are"
        what = "not a string" if len(odd) == 1 else "not strings"
        raise BadRequest(422, f"{_items(odd, values, name)} {verb} {what}; '{name}' must be {valid}")
    blank = [i for i, t in enumerate(values) if not t.strip()]
    if blank:
        verb = "is" if len(blank) == 1 else "are"
        which = "text" if name == "texts" else "second text"
        raise BadRequest(
            422, f"{_items(blank, name=name)} {verb} empty or only whitespace; every {which} needs words in it"
        )
    bad = not_unicode(values)
    if bad:
        verb = "holds" if len(bad) == 1 else "hold"
        raise BadRequest(
            422, f"{_items(bad, name=name)} {verb} {WHAT} ({surrogate_note(values[bad[0]])}); send UTF-8 text"
        )


def parse_request(
    body: bytes, max_texts: int = MAX_TEXTS, inputs: Sequence[str] = ("text",)
) -> tuple[list[str], list[str] | None]:
    """The texts of a ``POST /predict`` body, and their second texts for a sentence-pair model (``inputs``
    names two), else None; or a :class:`BadRequest` naming the field and what is valid."""
    paired = len(inputs) == 2
    example = PAIR_EXAMPLE if paired else EXAMPLE
    valid = f"a list of 1 to {max_texts} non-empty strings"
    try:
        data = json.loads(body)
    except UnicodeDecodeError as exc:
        raise BadRequest(400, f"the body is not UTF-8 JSON (byte {exc.start}); send {example}") from None
    except json.JSONDecodeError as exc:
        raise BadRequest(400, f"the body is not JSON ({exc.msg} at character {exc.pos}); send {example}") from None
    except RecursionError:
        raise BadRequest(400, f"the body is JSON nested too deeply; send {example}") from None
    if not isinstance(data, dict):
        raise BadRequest(422, f"the body must be a JSON object such as {example}, not {_kind(data)}")
    if "pairs" in data and not paired:
        raise BadRequest(
            422, "'pairs': this model takes single texts, not pairs of texts; send {\"texts\": [...]}, " + valid
        )
    fields = ("texts", "pairs") if paired else ("texts",)
    unknown = [k for k in data if k not in fields]
    if unknown:
        names = ", ".join(repr(k) for k in unknown[:3]) + (f" and {len(unknown) - 3} more" if len(unknown) > 3 else "")
        if paired:
            raise BadRequest(
                422,
                f"unknown field {names}; the body has two fields, 'texts': {valid}, and 'pairs': "
                "the second text of each, such as " + PAIR_EXAMPLE,
            )
        raise BadRequest(422, f"unknown field {names}; the body has one field, 'texts': {valid}")
    if "texts" not in data:
        raise BadRequest(422, f"missing field 'texts': {valid}, such as {example}")
    texts = data["texts"]
    if not isinstance(texts, list):
        raise BadRequest(422, f"'texts' must be {valid}, not {_kind(texts)}")
    if not texts:
        raise BadRequest(422, f"'texts' is empty; give {valid}")
    if len(texts) > max_texts:
        raise BadRequest(
            413, f"'texts' holds {len(texts)} texts; at most {max_texts} per request (--max-texts): send fewer at once"
        )
    _strings(texts, "texts", valid)
    if not paired:
        return texts, None
    n = len(texts)
    one_each = f"a list of {n} non-empty string{'s' if n != 1 else ''} (the second text of each text, in order)"
    if "pairs" not in data:
        raise BadRequest(
            422,
            f"missing field 'pairs': this model reads sentence pairs ({inputs[0]}, {inputs[1]}); "
            f"give {one_each}, such as {PAIR_EXAMPLE}",
        )
    pairs = data["pairs"]
    if not isinstance(pairs, list):
        raise BadRequest(422, f"'pairs' must be {one_each}, not {_kind(pairs)}")
    if len(pairs) != len(texts):
        raise BadRequest(
            422,
            f"'pairs' holds {len(pairs)} second texts but 'texts' holds {len(texts)}; "
            "give one second text per text ('pairs[i]' goes with 'texts[i]')",
        )
    _strings(pairs, "pairs", one_each)
    return texts, pairs


def predictions(
    proba: Any, label_names: Sequence[str], regression: bool = False, thresholds: Sequence[float] | None = None
) -> list[dict]:
    """One ``{"label", "score", "scores"}`` per row of probabilities; for a ``regression`` model, one
    ``{"prediction"}`` per row (its one column); for a multi-label model (``thresholds``, one per label),
    one ``{"labels", "scores"}``: the labels whose probability reaches their threshold, in label order."""
    if regression:
        return [{"prediction": float(row[0])} for row in proba]
    if thresholds is not None:
        return [
            {
                "labels": [n for n, p, t in zip(label_names, row, thresholds) if float(p) >= float(t)],
                "scores": {name: float(p) for name, p in zip(label_names, row)},
            }
            for row in proba
        ]
    out = []
    for row in proba:
        scores = {name: float(p) for name, p in zip(label_names, row)}
        best = max(range(len(label_names)), key=lambda i: float(row[i]))
        out.append({"label": label_names[best], "score": float(row[best]), "scores": scores})
    return out


def response_example(
    label_names: Sequence[str], regression: bool = False, thresholds: Sequence[float] | None = None
) -> dict:
    """What ``POST /predict`` answers for two texts (the request example's), as ``GET /`` and the OpenAPI show it."""
    if regression:
        return {"predictions": [{"prediction": v} for v in EXAMPLE_VALUES]}
    names = [str(n) for n in label_names]
    if thresholds is not None:  # "Love it!": the last label likely, the others not; "Broke...": the first
        rows = []
        for best, top in zip((names[-1], names[0]), EXAMPLE_SCORES):
            rows.append([top if name == best else EXAMPLE_UNLIKELY for name in names])
        return {"predictions": predictions(rows, names, thresholds=thresholds)}
    out = []
    for best, top in zip((names[-1], names[0]), EXAMPLE_SCORES):  # "Love it!": the last label; "Broke...": the first
        rest = (1 - top) / max(1, len(names) - 1)
        scores = {name: round(rest, 4) for name in names}
        scores[best] = top
        out.append({"label": best, "score": top, "scores": scores})
    return {"predictions": out}


def response_schema(label_names: Sequence[str], regression: bool = False, multi_label: bool = False) -> dict:
    """The JSON schema of ``POST /predict``'s answer (a ``multi_label`` model's: label sets and scores)."""
    number = {"type": "number"}
    names = [str(n) for n in label_names]
    scores = {
        "type": "object",
        "properties": {name: number for name in names},
        "required": names,
        "additionalProperties": False,
    }
    if multi_label:
        item = {
            "type": "object",
            "required": ["labels", "scores"],
            "properties": {
                "labels": {
                    "type": "array",
                    "items": {"type": "string", "enum": names},
                    "uniqueItems": True,
                    "description": "the labels whose probability reaches their threshold (GET / lists the "
                    "thresholds), in label order; empty where none does",
                },
                "scores": {**scores, "description": "the probability of each label, on its own (a sigmoid)"},
            },
            "additionalProperties": False,
        }
    elif regression:
        item = {
            "type": "object",
            "required": ["prediction"],
            "properties": {"prediction": {**number, "description": f"the predicted {label_names[0]}"}},
            "additionalProperties": False,
        }
    else:
        item = {
            "type": "object",
            "required": ["label", "score", "scores"],
            "properties": {
                "label": {"type": "string", "enum": names},
                "score": {**number, "description": "the probability of the label"},
                "scores": scores,
            },
            "additionalProperties": False,
        }
    return {
        "type": "object",
        "required": ["predictions"],
        "properties": {"predictions": {"type": "array", "items": item, "description": "one per text, in order"}},
        "additionalProperties": False,
    }


def _jsonable(value: Any) -> Any:
    """YAML's values (dates, sets) as JSON ones."""
    return json.loads(json.dumps(value, default=str))


def card_front_matter(folder: Path) -> dict | None:
    """The YAML front matter of the folder's model card (``README.md``), or None when it has none.

    Front matter that is there but cannot be read is a one-line error naming the file, not skipped.
    """
    from .saved import DamagedFile, read_text

    path = Path(folder) / "README.md"
    if not path.is_file():
        return None
    fix = "fix the YAML between its '---' lines, or delete the model card"
    lines = read_text(path, fix).splitlines()
    if not lines or lines[0].strip() != "---":
        return None
    end = next((i for i in range(1, len(lines)) if lines[i].strip() in ("---", "...")), None)
    if end is None:
        raise DamagedFile(path, "its YAML front matter has no closing '---' line", fix)
    try:
        import yaml
    except ImportError:  # pragma: no cover - transformers needs PyYAML
        return None
    try:
        data = yaml.safe_load("\n".join(lines[1:end]))
    except yaml.YAMLError as exc:
        raise DamagedFile(path, f"invalid YAML front matter: {first_line(exc)}", fix) from exc
    if data is None:
        return None
    if not isinstance(data, dict):
        raise DamagedFile(path, f"its YAML front matter is {type(data).__name__}, not a mapping of keys", fix)
    return _jsonable(data)


def files_metadata(folder: Path) -> tuple[dict, list[str]]:
    """What the folder's metrics.json, trial.json, study.toml and config.json say, and which of them were read."""
    from .saved import model_fix, read_json, read_toml

    folder = Path(folder)
    fix = model_fix(folder)
    meta: dict[str, Any] = {}
    used = []
    if (folder / "metrics.json").is_file():
        metrics = read_json(folder / "metrics.json", fix)
        used.append("metrics.json")
        for key in ("study", "trial", "task", "objective", "label_names", "test", "test_rows", "validation"):
            if key in metrics:
                meta[key] = metrics[key]
        for key in ("majority_baseline", "mean_baseline"):  # a classifier's, a regression model's
            if key in metrics:
                meta[key] = metrics[key]
    if (folder / "trial.json").is_file():
        trial = read_json(folder / "trial.json", fix)
        used.append("trial.json")
        config = trial.get("config") if isinstance(trial.get("config"), dict) else {}
        if "strategy" in config:
            meta["strategy"] = config["strategy"]
        if isinstance(config.get("hyperparams"), dict):
            meta["hyperparams"] = config["hyperparams"]
        meta.setdefault("trial", trial.get("trial"))
    if (folder / "study.toml").is_file():
        study = read_toml(folder / "study.toml", "restore it from the study file the model came from")
        used.append("study.toml")
        model = study.get("model") if isinstance(study.get("model"), dict) else {}
        section = study.get("study") if isinstance(study.get("study"), dict) else {}
        if "name" in model:
            meta["base_model"] = model["name"]
        if "max_length" in model:
            meta["max_length"] = model["max_length"]
        if "name" in section:
            meta.setdefault("study", section["name"])
    config = read_json(folder / "config.json", fix)
    used.append("config.json")
    if "model_type" in config:
        meta["model_type"] = config["model_type"]
    return _jsonable(meta), used


def model_metadata(folder: Path) -> tuple[dict, str]:
    """``GET /``'s metadata: the model card's front matter if it has one, else what the folder's files say."""
    card = card_front_matter(folder)
    if card is not None:
        return card, "README.md"
    meta, used = files_metadata(folder)
    return meta, ", ".join(used)


# --- batching ------------------------------------------------------------------------------------------


@dataclass
class _Job:
    texts: list[str]
    future: asyncio.Future = field(repr=False)
    pairs: list[str] | None = None  # the second text of each text, for a sentence-pair model


class Batcher:
    """Gathers concurrent requests into batches and runs each batch as one call of ``model.proba``.

    A batch holds up to ``batch_size`` texts (a single larger request runs alone, never split), and
    waits at most ``max_wait`` seconds after its first request for others. Batches run one at a time
    in one worker thread; while one runs, the next gathers. A failing batch fails each of its requests.
    Requests of sentence pairs run as ``model.proba(texts, pairs)``, each pair's second text in its
    text's row; requests of single texts as ``model.proba(texts)``; the two kinds never share a batch.
    """

    def __init__(self, model: Model, batch_size: int = 64, max_wait: float = 0.005):
        self.model, self.batch_size, self.max_wait = model, batch_size, max_wait
        self.queue: asyncio.Queue[_Job] | None = None
        self.task: asyncio.Task | None = None
        self.executor: ThreadPoolExecutor | None = None
        self.batches: deque[int] = deque(maxlen=1000)  # texts in each of the latest batches, for tests and tuning
        self._carry: _Job | None = None

    def start(self) -> None:
        self.queue = asyncio.Queue()
        self.executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="autoft-model")
        self.task = asyncio.get_running_loop().create_task(self._run())

    async def stop(self) -> None:
        if self.task is not None:
            self.task.cancel()
            try:
                await self.task
            except asyncio.CancelledError:
                pass
        waiting = [self._carry] if self._carry else []
        while self.queue is not None and not self.queue.empty():
            waiting.append(self.queue.get_nowait())
        for job in waiting:
            if not job.future.done():
                job.future.set_exception(ModelError("the server is shutting down; send the request again"))
        if self.executor is not None:
            self.executor.shutdown(wait=False, cancel_futures=True)

    async def __call__(self, texts: list[str], pairs: list[str] | None = None) -> Any:
        """The probabilities of ``texts`` (one row each; with ``pairs``, of each text and its second text),
        computed in a batch with whatever else is waiting."""
        if self.queue is None:
            raise RuntimeError("Batcher.start() was not called")
        if pairs is not None and len(pairs) != len(texts):
            raise ValueError(f"{len(texts)} texts but {len(pairs)} second texts")
        future = asyncio.get_running_loop().create_future()
        self.queue.put_nowait(_Job(list(texts), future, None if pairs is None else list(pairs)))
        return await future

    async def _gather(self) -> list[_Job]:
        assert self.queue is not None
        first = self._carry or await self.queue.get()
        self._carry = None
        jobs, count = [first], len(first.texts)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.max_wait
        while count < self.batch_size:
            try:
                job = self.queue.get_nowait()
            except asyncio.QueueEmpty:
                left = deadline - loop.time()
                if left <= 0:
                    break
                try:
                    job = await asyncio.wait_for(self.queue.get(), left)
                except TimeoutError:
                    break
            if count + len(job.texts) > self.batch_size or (job.pairs is None) != (first.pairs is None):
                self._carry = job  # the first of the next batch
                break
            jobs.append(job)
            count += len(job.texts)
        return jobs

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            jobs = [j for j in await self._gather() if not j.future.done()]  # a done one: its client left
            if not jobs:
                continue
            texts = [t for job in jobs for t in job.texts]
            args: tuple = (texts,)
            if jobs[0].pairs is not None:  # every job of the batch has pairs (see _gather)
                args = (texts, [p for job in jobs for p in job.pairs or ()])
            self.batches.append(len(texts))
            try:
                proba = await loop.run_in_executor(self.executor, self.model.proba, *args)
            except Exception as exc:
                for job in jobs:
                    if not job.future.done():
                        job.future.set_exception(exc)
                continue
            start = 0
            for job in jobs:
                stop = start + len(job.texts)
                if not job.future.done():
                    job.future.set_result(proba[start:stop])
                start = stop


# --- the application -----------------------------------------------------------------------------------


def create_app(
    model: Model,
    folder: Path,
    *,
    batch_size: int = 64,
    max_wait_ms: float = 5,
    max_texts: int = MAX_TEXTS,
    backend: str = "torch",
) -> Any:
    """The FastAPI application serving ``model`` (saved in ``folder``)."""
    from fastapi import FastAPI, Request
    from fastapi.exceptions import RequestValidationError
    from fastapi.responses import JSONResponse
    from starlette.exceptions import HTTPException

    label_names = [str(n) for n in model.label_names]
    regression = is_regression(model)
    thresholds = None if regression else thresholds_of(model)
    multi_label = thresholds is not None
    inputs = inputs_of(model)
    paired = len(inputs) == 2
    example = PAIR_EXAMPLE if paired else EXAMPLE
    answer = response_example(label_names, regression, thresholds)
    metadata, source = model_metadata(folder)
    index = {
        "task": "regression" if regression else "multi_label" if multi_label else "classification",
        **({"target": label_names[0]} if regression else {"labels": label_names}),
        **({"thresholds": dict(zip(label_names, thresholds))} if thresholds is not None else {}),
        "metadata": metadata,
        "metadata_from": source,
        "backend": backend,
        "predict": {
            "request": example,
            "response": json.dumps(answer),
            "max_texts": max_texts,
            "pairs": paired,
            "inputs": list(inputs),
            "batch_size": batch_size,
            "max_wait_ms": max_wait_ms,
        },
    }
    per_text = BODY_BYTES_PER_TEXT * len(inputs)  # a pair is two texts
    body_limit = max(2**20, max_texts * per_text)
    batcher = Batcher(model, batch_size=batch_size, max_wait=max_wait_ms / 1000)

    @asynccontextmanager
    async def lifespan(app: Any):
        batcher.start()
        try:
            yield
        finally:
            await batcher.stop()

    what = "sentence pairs" if paired else "texts"
    if regression:
        summary = f"predicts the {label_names[0]} of {what} (regression)"
    elif multi_label:
        summary = f"labels {what} with any of {', '.join(label_names)} (multi-label)"
    else:
        summary = f"labels {what} as {', '.join(label_names)}"
    app = FastAPI(
        title="autoft model",
        summary=summary,
        version="1",
        lifespan=lifespan,
    )
    app.state.batcher = batcher

    def error(status: int, message: str) -> JSONResponse:
        return JSONResponse({"error": " ".join(message.split())}, status_code=status)

    @app.exception_handler(BadRequest)
    async def bad_request(request: Request, exc: BadRequest):
        return error(exc.status, exc.message)

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, exc: HTTPException):
        where = f"{request.method} {request.url.path}"
        if exc.status_code == 404:
            return error(404, f"there is no {where}; the endpoints are {ENDPOINTS}")
        if exc.status_code == 405:
            return error(405, f"{where} is not allowed; the endpoints are {ENDPOINTS}")
        return error(exc.status_code, f"{where}: {first_line(Exception(exc.detail))}")

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError):  # no route declares fields; kept one-line
        problems = exc.errors()
        first = problems[0] if problems else {}
        where = ".".join(str(p) for p in first.get("loc", ()) if p != "body") or "the body"
        return error(422, f"'{where}': {first.get('msg', 'invalid')}; send {example}")

    async def read_body(request: Request) -> bytes:
        declared = request.headers.get("content-length", "")
        unit = "pair" if paired else "text"
        too_big = f"at most {body_limit} bytes ({per_text // 1024} KiB per {unit}, --max-texts {max_texts})"
        if declared.isdigit() and int(declared) > body_limit:
            raise BadRequest(413, f"the body is {declared} bytes; {too_big}")
        chunks, size = [], 0
        async for chunk in request.stream():
            size += len(chunk)
            if size > body_limit:
                raise BadRequest(413, f"the body is over {body_limit} bytes; {too_big}")
            chunks.append(chunk)
        return b"".join(chunks)

    @app.get("/", summary="the model's metadata")
    async def root():
        return index

    @app.get("/health", summary="whether the service is up")
    async def health():
        return {"status": "ok"}

    strings = {"type": "array", "items": {"type": "string", "minLength": 1}, "minItems": 1, "maxItems": max_texts}
    request_schema = {
        "type": "object",
        "required": ["texts", "pairs"] if paired else ["texts"],
        "properties": {"texts": strings, "pairs": strings} if paired else {"texts": strings},
        "additionalProperties": False,
    }

    verb = f"predict the {label_names[0]} of" if regression else "label"
    if regression:
        description = f"the predicted {label_names[0]} of each text, in order"
    elif multi_label:
        description = (
            "the labels of each text (those whose probability reaches their threshold) and the probability of "
            "every label, in order"
        )
    else:
        description = "the label of each text and the probability of every label, in order"
    schema = response_schema(label_names, regression, multi_label)
    answered = {"description": description, "content": {"application/json": {"schema": schema, "example": answer}}}

    @app.post(
        "/predict",
        summary=f"{verb} sentence pairs (texts[i] with pairs[i])" if paired else f"{verb} texts",
        openapi_extra={"requestBody": {"required": True, "content": {"application/json": {"schema": request_schema}}}},
        responses={200: answered},
    )
    async def predict(request: Request):
        texts, pairs = parse_request(await read_body(request), max_texts, inputs)
        try:
            proba = await batcher(texts, pairs)
        except AutoftError as exc:
            return error(500, str(exc))
        except Exception as exc:
            return error(500, f"the model failed: {type_and_first_line(exc)}")
        return {"predictions": predictions(proba, label_names, regression, thresholds)}

    return app


# --- running it ----------------------------------------------------------------------------------------


def run_server(app: Any, sock: Any) -> list[int]:
    """Serve ``app`` on the listening socket ``sock`` until Ctrl-C or SIGTERM; the signals that stopped it.

    uvicorn shuts down gracefully on either signal (requests in flight are answered), then raises
    it again; that second one is caught here, so stopping the service is a clean exit.
    """
    import uvicorn

    stopped: list[int] = []
    handled = (signal.SIGINT, signal.SIGTERM)
    previous = {sig: signal.signal(sig, lambda number, frame: stopped.append(number)) for sig in handled}
    try:
        config = uvicorn.Config(app, log_level="warning", access_log=False, timeout_graceful_shutdown=10)
        uvicorn.Server(config).run(sockets=[sock])
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        sock.close()
    return stopped
