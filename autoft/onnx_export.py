"""``autoft export MODEL --onnx``: the saved model as an ONNX graph for CPU serving, checked against PyTorch.

- ``model.onnx``: inputs ``input_ids``, ``attention_mask`` (and ``token_type_ids`` where the model's
  forward takes them; autoft feeds a sentence pair's type ids where the tokenizer gives them, zeros
  otherwise, as PyTorch does when it is left out), outputs ``logits`` and ``probabilities`` (the softmax,
  in the graph; for a multi-label model, ``config.json``'s ``problem_type`` ``multi_label_classification``,
  each label's sigmoid, as autoft predicts it); a regression model (one output: ``config.json``'s
  ``num_labels`` is 1, its ``id2label`` names the target) has one output instead, ``predictions``
  (batch, 1): the model's output, which is already the prediction in the target's units (the study
  folds its target scaling into the head). The batch and sequence axes are dynamic. Exported with
  torch's dynamo exporter (``torch.export``, then onnxscript), which is torch's default: it traces
  symbolic shapes, so no branch is frozen at the example's batch size or length, as the TorchScript
  tracer would (it warns that it does so in transformers' masking code).
- ``model.int8.onnx`` (``--quantize``): onnxruntime's dynamic quantization (int8 weights, activations
  quantized per batch at run time) of the same graph.
- ``onnx.json``: what the check found.

The graph is the model alone: the folder's calibration temperature (``calibration.json``), where the
study fitted one, is applied to the graph's probabilities by :class:`OnnxPredictor` exactly as
:class:`autoft.predict.Predictor` applies it to PyTorch's. A regression or multi-label model is never
calibrated; a multi-label model's decision thresholds (``task.json``) are not in the graph either:
:class:`OnnxPredictor` reads them as :class:`autoft.predict.Predictor` does.

The check runs both graphs and the PyTorch model (as ``autoft predict`` runs it: fp32, the trained
max_length, batches sorted by length) on the same texts: the study's test split, rebuilt from the
folder's ``study.toml`` as ``autoft evaluate --study`` would (its row count must match
``metrics.json``), or ``--texts FILE``; failing both, the texts of ``evaluation/misclassified.csv`` and
texts drawn from the tokenizer's vocabulary. Probe texts of every length up to past ``max_length`` are
added to the fp32 check, so the dynamic sequence axis is exercised whatever the split's lengths.
A sentence-pair model (``task.json`` names two inputs) is checked on pairs: the test split's, the
``text`` and ``text_pair`` columns of ``misclassified.csv``, ``--texts`` lines of two texts separated by a
tab, and drawn and probe texts each paired with the next one (the last with the first). The fp32
graph must give probabilities within 1e-4 of PyTorch's and the same label for every text, and the int8
graph the same label for at least 99% of the texts (the accuracy drop is reported when labels are
known); otherwise nothing of that graph is written and the command fails in one line.

A regression model is checked on its predictions, measured against the spread of the target (the
standard deviation of the test split's targets, or where they are unknown of PyTorch's predictions of
every text checked): the fp32 graph's may differ from PyTorch's by at most 1e-4 of it (and a few
float32 rounding steps of the largest prediction), the int8 graph's by at most 10% of it, root mean
square (its correlation with PyTorch's predictions, and where targets are known the RMSE against them
and its rise, are reported). Its fallback texts come from ``evaluation/largest_errors.csv``.

A multi-label model is checked on each label's probability and on its decisions (a label is given where
its probability reaches its threshold): the fp32 graph's probabilities must be within 1e-4 of PyTorch's
and give the same labels to every text, the int8 graph the same set of labels to at least 99% of the
texts (the share of equal label decisions, and where the test split's label sets are known the micro-F1
against them and its drop, are reported). Its fallback texts come from ``evaluation/mistakes.csv``.

Files are written to a temporary folder inside the model folder and renamed into place once checked,
so a reader never sees a half-written graph. :class:`OnnxPredictor` runs them with onnxruntime's
``CPUExecutionProvider``.
"""

from __future__ import annotations

import contextlib
import inspect
import logging
import os
import shutil
import tempfile
import time
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .errors import AutoftError, ConfigError, ModelError, first_line, require, type_and_first_line
from .onnx_predict import INPUTS, INT8_FILE, ONNX_FILE, REGRESSION_OUTPUTS, OnnxPredictor
from .onnx_texts import fallback_texts, paired_with_next, probe_texts, study_test_split, texts_file

REPORT_FILE = "onnx.json"
#: the opset written unless ``--opset`` says otherwise (onnxruntime 1.18 runs up to 21)
DEFAULT_OPSET = 18
#: the opsets --opset takes: the dynamo exporter writes 18 and up; at 23 it writes ONNX's Attention op,
#: which onnxruntime's quantizer (1.32) turns into a graph onnxruntime refuses
OPSETS = (18, 22)
OUTPUTS = ("logits", "probabilities")
#: the fp32 graph's probabilities may differ from PyTorch's by this much at most
FP32_TOLERANCE = 1e-4
#: the int8 graph must give PyTorch's label for at least this share of the texts (a multi-label model's: its set
#: of labels, see :func:`compare_sets`)
INT8_AGREEMENT = 0.99
#: a regression graph's fp32 predictions may differ from PyTorch's by this share of the target's spread at most
#: (its standard deviation): the classification bound, on probabilities that span 1, put in the target's units.
#: float32 arithmetic done in another order moves a prediction by about 1e-6 of the values it is made of,
#: so this leaves a wide margin, while a graph that reads an input wrongly (the type ids, the mask) is far off.
#: A few float32 rounding steps (ulps) of the largest prediction are allowed on top, for targets far from 0.
REGRESSION_FP32_TOLERANCE = 1e-4
REGRESSION_FP32_ULPS = 8
#: the int8 graph's predictions may differ from PyTorch's by this share of the target's spread at most (root mean
#: square). Quantization noise of 10% of the spread, independent of the model's own error, raises an RMSE of half
#: the spread (a modest model) to 0.51 of it (sqrt(0.5² + 0.1²)), 2% more: about what changing 1% of the labels
#: (INT8_AGREEMENT) costs a classifier of 50-90% accuracy. Where the predictions spread as the targets do, it is a
#: correlation of 0.995 with PyTorch's predictions (reported, not checked: a correlation alone would pass a graph
#: whose predictions are shifted or scaled, and falls for a model whose predictions hardly vary, however close).
INT8_RELATIVE_RMS = 0.1
#: graphs larger than this keep their weights in a ``.data`` file beside them (protobuf's limit is 2 GiB)
EXTERNAL_DATA_BYTES = 1_800_000_000

if TYPE_CHECKING:
    import numpy as np

# --- what is installed ------------------------------------------------------------------------------------


def require_exporter() -> None:
    """onnx, onnxscript (torch's ONNX exporter) and onnxruntime (the check), or one line naming what is missing."""
    require(("onnx", "onnxscript", "onnxruntime"), "autoft export --onnx", "onnx")


# --- exporting ------------------------------------------------------------------------------------------------


def model_inputs(model: Any) -> list[str]:
    """The graph's inputs: input_ids, attention_mask, and token_type_ids where the model's forward takes them."""
    params = inspect.signature(model.forward).parameters
    return [name for name in INPUTS if name in params]


def is_regression(model: Any) -> bool:
    """Whether a sequence classifier is a regression model: one output, its prediction (as Predictor says)."""
    return int(model.config.num_labels) == 1


def is_multi_label(model: Any) -> bool:
    """Whether a sequence classifier is multi-label (``problem_type`` multi_label_classification): its
    probabilities are each label's sigmoid, as autoft trains and predicts it, not a softmax over the labels."""
    problem = getattr(model.config, "problem_type", None)
    return problem == "multi_label_classification" and not is_regression(model)


def graph_outputs(model: Any) -> list[str]:
    """The graph's outputs: (logits, probabilities), or a regression model's (predictions,)."""
    return list(REGRESSION_OUTPUTS if is_regression(model) else OUTPUTS)


def _outputs(logits: Any, regression: bool, multi_label: bool = False) -> Any:
    import torch

    if regression:  # already the number in the target's units: softmax of one logit would be 1
        return logits
    if multi_label:  # each label on its own, as autoft.training.predict_proba gives them
        return logits, torch.sigmoid(logits)
    return logits, torch.softmax(logits, dim=-1)


def _classifier(model: Any, inputs: list[str]) -> Any:
    """The model as a module of the graph's inputs (positional, in order) returning (logits, probabilities),
    or for a regression model its (batch, 1) predictions; a multi-label model's probabilities are sigmoids."""
    import torch

    regression, multi_label = is_regression(model), is_multi_label(model)

    class WithTokenTypes(torch.nn.Module):
        def __init__(self, model: Any):
            super().__init__()
            self.model = model

        def forward(self, input_ids, attention_mask, token_type_ids):
            logits = self.model(
                input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids
            ).logits.float()
            return _outputs(logits, regression, multi_label)

    class WithoutTokenTypes(torch.nn.Module):
        def __init__(self, model: Any):
            super().__init__()
            self.model = model

        def forward(self, input_ids, attention_mask):
            logits = self.model(input_ids=input_ids, attention_mask=attention_mask).logits.float()
            return _outputs(logits, regression, multi_label)

    wrapper = WithTokenTypes if "token_type_ids" in inputs else WithoutTokenTypes
    return wrapper(model).eval()


def _example(model: Any, inputs: list[str]) -> tuple:
    """An example batch for tracing: 2 rows of 16 tokens, the second padded (sizes 0 and 1 would be frozen)."""
    import torch

    vocab = int(getattr(model.config, "vocab_size", 0) or 100)
    ids = torch.randint(5, max(6, min(vocab, 1000)), (2, 16), generator=torch.Generator().manual_seed(0))
    mask = torch.ones_like(ids)
    mask[1, 10:] = 0
    pad = getattr(model.config, "pad_token_id", None)
    if pad is not None:
        ids[1, 10:] = int(pad)
    example = {"input_ids": ids, "attention_mask": mask, "token_type_ids": torch.zeros_like(ids)}
    return tuple(example[name] for name in inputs)


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """The exporter's and the quantizer's chatter (warnings, progress lines, log records) kept off the terminal."""
    loggers = [logging.getLogger(), logging.getLogger("torch.onnx"), logging.getLogger("torch.export")]
    levels = [log.level for log in loggers]
    for log in loggers:
        log.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        for log, level in zip(loggers, levels):
            log.setLevel(level)


def export_graph(model: Any, path: Path, opset: int = DEFAULT_OPSET) -> list[str]:
    """Write ``model`` (a sequence classifier, or a regression model, in eval mode) to ``path`` as ONNX; the
    graph's input names."""
    import torch

    inputs = model_inputs(model)
    wrapped = _classifier(model, inputs)
    batch, sequence = torch.export.Dim("batch"), torch.export.Dim("sequence")
    dynamic = {name: {0: batch, 1: sequence} for name in inputs}
    size = sum(p.numel() * p.element_size() for p in model.parameters())
    with _quiet():
        torch.onnx.export(
            wrapped,
            _example(model, inputs),
            str(path),
            dynamo=True,
            dynamic_shapes=dynamic,
            input_names=inputs,
            output_names=graph_outputs(model),
            opset_version=opset,
            external_data=size > EXTERNAL_DATA_BYTES,
            verbose=False,
        )
    return inputs


def quantize_graph(source: Path, target: Path) -> None:
    """onnxruntime's dynamic quantization of ``source``: int8 weights (QInt8), activations quantized at run time."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    large = (Path(str(source) + ".data")).exists()
    with _quiet():
        quantize_dynamic(source, target, weight_type=QuantType.QInt8, use_external_data_format=large)


# --- the check ------------------------------------------------------------------------------------------------


def compare(reference: np.ndarray, got: np.ndarray) -> dict:
    """How far ``got``'s probabilities are from the reference's: max |Δp| and the share of equal labels."""
    import numpy as np

    same = reference.argmax(axis=1) == got.argmax(axis=1)
    return {
        "max_abs_diff": float(np.abs(reference - got).max()) if len(got) else 0.0,
        "argmax_agreement": float(same.mean()) if len(got) else 1.0,
        "argmax_differs": int((~same).sum()),
    }


def decisions(proba: np.ndarray, thresholds: np.ndarray) -> np.ndarray:
    """A multi-label model's decisions: (rows, labels) True where a label's probability reaches its threshold,
    as :class:`autoft.predict.Predictions` gives labels."""
    import numpy as np

    return np.asarray(proba) >= np.asarray(thresholds, dtype=np.float64)[None, :]


def compare_sets(reference: np.ndarray, got: np.ndarray, thresholds: np.ndarray) -> dict:
    """How far a multi-label graph's probabilities are from the reference's: max |Δp| over every label, the share
    of texts given the same set of labels (``set_agreement``; ``sets_differ`` counts the others) and the share
    of equal label decisions (``decision_agreement``, over every text and label; ``decisions_differ``).

    The export gates on ``set_agreement``: a text's answer is its set of labels, so "the same answer for 99% of the
    texts" is the promise made of a classifier's int8 graph. ``decision_agreement`` is reported, not gated: most
    decisions are easy "no"s where labels are sparse (with 100 labels and 2 on a text, 1% of decisions changed is
    a changed label on most texts), so 99% of them would let through a graph that changes most answers.
    Sets agree less than decisions as labels grow in number; a many-label model's int8 graph is refused sooner
    than a classifier's, which errs on the safe side (the fp32 graph is still written).
    """
    import numpy as np

    ours, theirs = decisions(reference, thresholds), decisions(got, thresholds)
    same = ours == theirs
    rows = same.all(axis=1)
    return {
        "max_abs_diff": float(np.abs(reference - got).max()) if got.size else 0.0,
        "set_agreement": float(rows.mean()) if len(got) else 1.0,
        "sets_differ": int((~rows).sum()),
        "decision_agreement": float(same.mean()) if same.size else 1.0,
        "decisions_differ": int((~same).sum()),
    }


def micro_f1(proba: np.ndarray, thresholds: np.ndarray, targets: np.ndarray | None) -> float | None:
    """A multi-label model's micro-F1 (all label decisions pooled) against 0/1 targets, where they are known;
    0 where neither predicts nor holds any label (scikit-learn's ``zero_division=0``)."""
    import numpy as np

    if targets is None:
        return None
    predicted, true = decisions(proba, thresholds), np.asarray(targets) > 0
    pooled = int(predicted.sum() + true.sum())
    return float(2 * (predicted & true).sum() / pooled) if pooled else 0.0


def accuracy(proba: np.ndarray, labels: np.ndarray | None) -> float | None:
    return None if labels is None else float((proba.argmax(axis=1) == labels).mean())


def rmse(predictions: np.ndarray, targets: np.ndarray | None) -> float | None:
    """A regression model's root mean square error against the targets, where they are known."""
    import numpy as np

    if targets is None or not len(targets):
        return None
    error = np.asarray(predictions, dtype=np.float64).reshape(-1) - np.asarray(targets, dtype=np.float64)
    return float(np.sqrt(np.mean(error**2)))


def target_spread(targets: np.ndarray | None, reference: np.ndarray) -> tuple[float, str]:
    """The scale a regression graph's differences are measured in, and what it is: the standard deviation
    of the targets where known (and not all equal), else of PyTorch's predictions, else 1."""
    import numpy as np

    if targets is not None and len(targets) > 1 and float(np.std(targets)) > 0:
        return float(np.std(np.asarray(targets, dtype=np.float64))), "the standard deviation of the test targets"
    values = np.asarray(reference, dtype=np.float64).reshape(-1)
    if len(values) > 1 and float(np.std(values)) > 0:
        return float(np.std(values)), "the standard deviation of PyTorch's predictions of the texts checked"
    return 1.0, "1 (PyTorch predicts one number for every text checked)"


def compare_values(reference: np.ndarray, got: np.ndarray, spread: float) -> dict:
    """How far a regression graph's predictions are from the reference's: max and RMS |Δ|, each also as a share
    of ``spread``, and their Pearson correlation (1 where either is constant and they agree exactly)."""
    import numpy as np

    ref = np.asarray(reference, dtype=np.float64).reshape(-1)
    out = np.asarray(got, dtype=np.float64).reshape(-1)
    if not len(out):
        return {"max_abs_diff": 0.0, "max_rel_diff": 0.0, "rms_diff": 0.0, "rms_rel_diff": 0.0, "correlation": 1.0}
    diff = np.abs(ref - out)
    rms = float(np.sqrt(np.mean(diff**2)))
    if len(out) > 1 and np.std(ref) > 0 and np.std(out) > 0:
        correlation = float(np.corrcoef(ref, out)[0, 1])
    else:
        correlation = 1.0 if float(diff.max()) == 0 else 0.0
    return {
        "max_abs_diff": float(diff.max()),
        "max_rel_diff": float(diff.max()) / spread,
        "rms_diff": rms,
        "rms_rel_diff": rms / spread,
        "correlation": correlation,
    }


def fp32_allowed(reference: np.ndarray, spread: float) -> float:
    """The largest |Δ| a regression graph's fp32 predictions may have: REGRESSION_FP32_TOLERANCE of the spread,
    and REGRESSION_FP32_ULPS float32 rounding steps of the largest prediction."""
    import numpy as np

    largest = float(np.abs(reference).max()) if len(reference) else 0.0
    return REGRESSION_FP32_TOLERANCE * spread + REGRESSION_FP32_ULPS * float(np.spacing(np.float32(largest)))


def _timed(fn: Callable[[], np.ndarray]) -> tuple[np.ndarray, float]:
    started = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - started


def _mb(path: Path) -> float:
    data = Path(str(path) + ".data")
    return round((path.stat().st_size + (data.stat().st_size if data.exists() else 0)) / 1e6, 1)


def _move_in(tmp: Path, folder: Path, names: list[str]) -> None:
    """Rename the checked files of ``tmp`` into ``folder`` (weights before the graph that points at them)."""
    for name in sorted(names, key=lambda n: not n.endswith(".data")):
        with open(tmp / name, "rb") as f:
            os.fsync(f.fileno())
        os.replace(tmp / name, folder / name)


def export(
    folder: Path,
    *,
    quantize: bool = False,
    opset: int = DEFAULT_OPSET,
    texts: Path | None = None,
    batch_size: int = 32,
    say: Callable[[str], None] = lambda line: None,
) -> dict:
    """Export the saved model in ``folder`` to ``model.onnx`` (and ``model.int8.onnx``), checked; the report.

    The report is also written to ``onnx.json``. A graph that fails its check is not written, and the
    failure is a :class:`ModelError` (after the report, with what passed, is written).
    """
    import numpy as np

    from .fsutil import write_json
    from .predict import Predictor
    from .saved import check_model_folder, trained_inputs

    folder = Path(folder)
    check_model_folder(folder)
    require_exporter()
    if opset not in range(OPSETS[0], OPSETS[1] + 1):
        raise ConfigError(f"--opset {opset}: the exporter writes opsets {OPSETS[0]} to {OPSETS[1]}")
    paired = len(trained_inputs(folder)) == 2
    check = texts_file(texts, paired) if texts is not None else None
    torch_model = Predictor(folder, device="cpu", batch_size=batch_size)
    regression = len(torch_model.label_names) == 1
    multi_label = is_multi_label(torch_model.model)
    # a multi-label model's decision thresholds (task.json), 0.5 where it has none (as Predictions decides then)
    given = getattr(torch_model, "thresholds", None)
    cuts = np.asarray(given if given is not None else [0.5] * len(torch_model.label_names), dtype=np.float64)
    task = "regression" if regression else "multi_label" if multi_label else "classification"
    why = ""
    if check is None:
        check, why = study_test_split(folder, torch_model.label_names, paired, multi_label)
    if check is None:
        check = fallback_texts(
            folder, torch_model.tokenizer, torch_model.max_length, paired, regression, multi_label=multi_label
        )
        check.source += f" (no test split: {why})"
    probes = probe_texts(torch_model.tokenizer, torch_model.max_length)
    # every text of the check, then the probes; a pair model reads each with its second text
    all_texts = check.texts + probes
    all_pairs = (check.pairs or []) + paired_with_next(probes) if paired else None
    noun = "pairs" if paired else "texts"
    say(f"checking on {check.source}, and {len(probes)} probe {noun} of 1 to {torch_model.max_length}+ tokens")

    report: dict[str, Any] = {
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "exporter": "torch.onnx.export(dynamo=True)",
        "versions": _versions(),
        "opset": opset,
        "task": task,
        **({"target": torch_model.label_names[0]} if regression else {}),
        **({"thresholds": dict(zip(torch_model.label_names, map(float, cuts)))} if multi_label else {}),
        "max_length": torch_model.max_length,
        "temperature": 1.0 if regression or multi_label else torch_model.temperature,
        "texts": check.source,
        "inputs": list(torch_model.inputs),
        "rows": len(check.texts),
        "probe_texts": len(probes),
        "batch_size": batch_size,
    }
    n = len(check.texts)
    reference, seconds = _timed(lambda: torch_model.proba(all_texts, all_pairs))
    spread, spread_of = target_spread(check.labels, reference) if regression else (1.0, "")
    if regression:
        report["spread"] = {"value": spread, "of": spread_of}
        report["pytorch"] = {"rmse": rmse(reference[:n], check.labels), "seconds": round(seconds, 2)}
    elif multi_label:
        report["pytorch"] = {"micro_f1": micro_f1(reference[:n], cuts, check.labels), "seconds": round(seconds, 2)}
    else:
        report["pytorch"] = {"accuracy": accuracy(reference[:n], check.labels), "seconds": round(seconds, 2)}
    try:
        tmp = Path(tempfile.mkdtemp(dir=folder, prefix=".onnx-export.", suffix=".tmp"))
    except OSError as exc:
        raise ModelError(f"cannot write to '{folder}' ({exc.strerror or first_line(exc)})") from exc
    try:
        try:
            started = time.perf_counter()
            inputs = export_graph(torch_model.model, tmp / ONNX_FILE, opset)
            export_seconds = time.perf_counter() - started
        except AutoftError:
            raise
        except Exception as exc:
            raise ModelError(f"cannot export '{folder}' to ONNX: {type_and_first_line(exc)}") from exc
        graph = OnnxPredictor(folder, batch_size=batch_size, max_length=torch_model.max_length, path=tmp / ONNX_FILE)
        got, seconds = _timed(lambda: graph.proba(all_texts, all_pairs))
        fp32: dict[str, Any] = {
            "file": ONNX_FILE,
            "mb": _mb(tmp / ONNX_FILE),
            "inputs": inputs,
            "outputs": list(REGRESSION_OUTPUTS if regression else OUTPUTS),
        }
        if regression:
            allowed = fp32_allowed(reference, spread)
            fp32 |= {**compare_values(reference, got, spread), "allowed_abs_diff": allowed}
            fp32["rmse"] = rmse(got[:n], check.labels)
            passed = fp32["max_abs_diff"] <= allowed
        elif multi_label:  # each label's sigmoid within the tolerance, and every text given the same labels
            fp32 |= {**compare_sets(reference, got, cuts), "micro_f1": micro_f1(got[:n], cuts, check.labels)}
            passed = fp32["max_abs_diff"] <= FP32_TOLERANCE and fp32["sets_differ"] == 0
        else:
            fp32 |= {**compare(reference, got), "accuracy": accuracy(got[:n], check.labels)}
            passed = fp32["max_abs_diff"] <= FP32_TOLERANCE and fp32["argmax_differs"] == 0
        fp32 |= {"export_seconds": round(export_seconds, 2), "seconds": round(seconds, 2), "passed": passed}
        report["fp32"] = fp32
        if not fp32["passed"]:
            if regression:
                differs = (
                    f"max |Δ| {fp32['max_abs_diff']:.2g} {torch_model.label_names[0]}, "
                    f"{fp32['max_rel_diff']:.2g} of the spread {spread:.3g} (at most {allowed:.2g})"
                )
            elif multi_label:
                differs = (
                    f"max |Δp| {fp32['max_abs_diff']:.2g} (at most {FP32_TOLERANCE:g}), "
                    f"{fp32['sets_differ']} of {len(got)} label sets differ"
                )
            else:
                differs = (
                    f"max |Δp| {fp32['max_abs_diff']:.2g} (at most {FP32_TOLERANCE:g}), "
                    f"{fp32['argmax_differs']} of {len(got)} labels differ"
                )
            raise ModelError(
                f"the exported graph differs from the PyTorch model in '{folder}' on {check.source}: "
                f"{differs}; nothing was written"
            )
        written = sorted(p.name for p in tmp.iterdir() if p.name.startswith(ONNX_FILE))
        failure = None
        if quantize:
            quantize_graph(tmp / ONNX_FILE, tmp / INT8_FILE)
            int8_graph = OnnxPredictor(
                folder, batch_size=batch_size, max_length=torch_model.max_length, path=tmp / INT8_FILE
            )
            got8, seconds = _timed(lambda: int8_graph.proba(check.texts, check.pairs))
            int8: dict[str, Any] = {"file": INT8_FILE, "mb": _mb(tmp / INT8_FILE)}
            if regression:
                int8 |= compare_values(reference[:n], got8, spread)
                int8["rmse"] = rmse(got8, check.labels)
                if check.labels is not None:
                    int8["rmse_increase"] = int8["rmse"] - report["pytorch"]["rmse"]
                int8["passed"] = int8["rms_rel_diff"] <= INT8_RELATIVE_RMS
            elif multi_label:  # the same set of labels for the texts, as a classifier's same label (compare_sets)
                int8 |= compare_sets(reference[:n], got8, cuts)
                int8["micro_f1"] = micro_f1(got8, cuts, check.labels)
                if check.labels is not None:
                    int8["micro_f1_drop"] = report["pytorch"]["micro_f1"] - int8["micro_f1"]
                int8["passed"] = int8["set_agreement"] >= INT8_AGREEMENT
            else:
                int8 |= compare(reference[:n], got8)
                int8["accuracy"] = accuracy(got8, check.labels)
                if check.labels is not None:
                    int8["accuracy_drop"] = report["pytorch"]["accuracy"] - int8["accuracy"]
                int8["passed"] = int8["argmax_agreement"] >= INT8_AGREEMENT
            int8["seconds"] = round(seconds, 2)
            report["int8"] = int8
            if int8["passed"]:
                written += sorted(p.name for p in tmp.iterdir() if p.name.startswith(INT8_FILE))
            elif regression:
                failure = (
                    f"the int8 graph's predictions differ from the PyTorch model's by {int8['rms_diff']:.3g} "
                    f"{torch_model.label_names[0]} (root mean square), {int8['rms_rel_diff']:.1%} of the spread "
                    f"{spread:.3g}, on the {n} {noun} checked (at most {INT8_RELATIVE_RMS:.0%}; see "
                    f"{folder / REPORT_FILE}): {INT8_FILE} was not written, {ONNX_FILE} was"
                )
            elif multi_label:
                failure = (
                    f"the int8 graph gives the PyTorch model's set of labels for {int8['set_agreement']:.1%} of the "
                    f"{n} {noun} checked ({int8['decision_agreement']:.1%} of the label decisions; at least "
                    f"{INT8_AGREEMENT:.0%} of the sets needed; see {folder / REPORT_FILE}): {INT8_FILE} was not "
                    f"written, {ONNX_FILE} was"
                )
            else:
                failure = (
                    f"the int8 graph gives the PyTorch model's label for {int8['argmax_agreement']:.1%} of the "
                    f"{n} texts checked (at least {INT8_AGREEMENT:.0%} needed; see {folder / REPORT_FILE}): "
                    f"{INT8_FILE} was not written, {ONNX_FILE} was"
                )
        _move_in(tmp, folder, written)
        # files of an earlier export that this one did not write (and onnx.json no longer describes)
        stale = [folder / name for name in (INT8_FILE, f"{INT8_FILE}.data", f"{ONNX_FILE}.data")]
        for path in (p for p in stale if p.name not in written):
            if path.exists():
                path.unlink()
                say(f"removed {path} (from an earlier export, not checked by this one)")
        report["files"] = written
        write_json(folder / REPORT_FILE, report)
        if failure:
            raise ModelError(failure)
        return report
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _versions() -> dict:
    import onnx
    import onnxruntime
    import onnxscript
    import torch
    import transformers

    return {
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "onnx": onnx.__version__,
        "onnxscript": onnxscript.__version__,
        "onnxruntime": onnxruntime.__version__,
    }


def summary(report: dict, folder: Path) -> list[str]:
    """What ``autoft export --onnx`` prints: a line per graph written."""
    fp32 = report["fp32"]
    rows = report["rows"] + report["probe_texts"]
    noun = "pairs" if len(report.get("inputs", ())) == 2 else "texts"
    if report.get("task") == "regression":
        return _regression_summary(report, folder, rows, noun)
    if report.get("task") == "multi_label":
        return _multi_label_summary(report, folder, rows, noun)
    lines = [
        f"wrote {Path(folder) / ONNX_FILE} ({fp32['mb']} MB, opset {report['opset']}, inputs "
        f"{', '.join(fp32['inputs'])}): max |Δp| {fp32['max_abs_diff']:.1e} against PyTorch, the same label for "
        f"{rows} of {rows} {noun}"
    ]
    int8 = report.get("int8")
    if int8 and int8["passed"]:
        line = (
            f"wrote {Path(folder) / INT8_FILE} ({int8['mb']} MB): PyTorch's label for "
            f"{int8['argmax_agreement']:.1%} of {report['rows']} {noun}"
        )
        if int8.get("accuracy_drop") is not None:
            line += (
                f"; accuracy {report['pytorch']['accuracy']:.4f} → {int8['accuracy']:.4f} "
                f"(drop {int8['accuracy_drop']:.4f})"
            )
        lines.append(line)
    lines.append(f"checked on {report['texts']}; the results are in {Path(folder) / REPORT_FILE}")
    return lines


def _multi_label_summary(report: dict, folder: Path, rows: int, noun: str) -> list[str]:
    """:func:`summary`'s lines for a multi-label model: each label's probability, and the sets of labels given."""
    fp32 = report["fp32"]
    same = rows - fp32["sets_differ"]
    lines = [
        f"wrote {Path(folder) / ONNX_FILE} ({fp32['mb']} MB, opset {report['opset']}, inputs "
        f"{', '.join(fp32['inputs'])}, a sigmoid per label): max |Δp| {fp32['max_abs_diff']:.1e} against PyTorch, "
        f"the same labels for {same} of {rows} {noun}"
    ]
    int8 = report.get("int8")
    if int8 and int8["passed"]:
        line = (
            f"wrote {Path(folder) / INT8_FILE} ({int8['mb']} MB): PyTorch's labels for {int8['set_agreement']:.1%} "
            f"of {report['rows']} {noun} ({int8['decision_agreement']:.1%} of the label decisions)"
        )
        if int8.get("micro_f1_drop") is not None:
            line += (
                f"; micro-F1 {report['pytorch']['micro_f1']:.4f} → {int8['micro_f1']:.4f} "
                f"(drop {int8['micro_f1_drop']:.4f})"
            )
        lines.append(line)
    lines.append(f"checked on {report['texts']}; the results are in {Path(folder) / REPORT_FILE}")
    return lines


def _regression_summary(report: dict, folder: Path, rows: int, noun: str) -> list[str]:
    """:func:`summary`'s lines for a regression model: differences in the target's units and of its spread."""
    fp32, target = report["fp32"], report.get("target", "the target")
    spread = report["spread"]["value"]
    lines = [
        f"wrote {Path(folder) / ONNX_FILE} ({fp32['mb']} MB, opset {report['opset']}, inputs "
        f"{', '.join(fp32['inputs'])}, output predictions of {target}): max |Δ| {fp32['max_abs_diff']:.1e} "
        f"({fp32['max_rel_diff']:.1e} of the spread {spread:.3g}) against PyTorch over {rows} {noun}"
    ]
    int8 = report.get("int8")
    if int8 and int8["passed"]:
        line = (
            f"wrote {Path(folder) / INT8_FILE} ({int8['mb']} MB): RMS |Δ| {int8['rms_diff']:.3g} "
            f"({int8['rms_rel_diff']:.1%} of the spread) and correlation {int8['correlation']:.4f} with PyTorch "
            f"over {report['rows']} {noun}"
        )
        if int8.get("rmse_increase") is not None:
            line += f"; rmse {report['pytorch']['rmse']:.4g} → {int8['rmse']:.4g} (change {int8['rmse_increase']:+.4g})"
        lines.append(line)
    lines.append(f"checked on {report['texts']}; the results are in {Path(folder) / REPORT_FILE}")
    return lines


__all__ = [
    "REPORT_FILE",
    "compare_sets",
    "export",
    "export_graph",
    "quantize_graph",
    "require_exporter",
    "summary",
]
