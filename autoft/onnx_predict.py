"""An exported ONNX graph of a saved model, run with onnxruntime on the CPU: :class:`OnnxPredictor`.

``autoft export MODEL --onnx`` writes and checks the graphs (:mod:`autoft.onnx_export`);
``autoft predict --onnx`` and ``autoft serve --onnx`` run them through this class, which tokenizes,
batches and calibrates exactly as :class:`autoft.predict.Predictor` does with the PyTorch model.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from .errors import ConfigError, ModelError, first_line
from .saved import SavedTask

ONNX_FILE = "model.onnx"
INT8_FILE = "model.int8.onnx"
INSTALL = "pip install 'autoft[onnx]'"
#: the inputs a graph may take (input_ids and attention_mask always, token_type_ids where the model does)
INPUTS = ("input_ids", "attention_mask", "token_type_ids")
#: a regression model's graph output: (batch, 1) predictions in the target's units
REGRESSION_OUTPUTS = ("predictions",)

if TYPE_CHECKING:
    import numpy as np


# --- what is installed ------------------------------------------------------------------------------------


def require_runtime(what: str = "--onnx") -> Any:
    """onnxruntime, or one line saying how to install it."""
    try:
        import onnxruntime
    except ImportError:
        raise ConfigError(f"{what} needs onnxruntime, which is not installed: {INSTALL}") from None
    return onnxruntime


def graph_path(folder: Path, quantized: bool = False) -> Path:
    """The folder's ONNX graph, or one line saying how to make it."""
    folder = Path(folder)
    path = folder / (INT8_FILE if quantized else ONNX_FILE)
    if not path.is_file():
        flags = "--onnx --quantize" if quantized else "--onnx"
        raise ModelError(f"'{folder}' has no {path.name}; make it with: autoft export {folder} {flags}")
    return path


# --- running a graph ------------------------------------------------------------------------------------------


def label_names_of(folder: Path) -> list[str]:
    """The labels of a saved model, from its config.json's id2label."""
    from .saved import model_fix, read_json

    folder = Path(folder)
    config = read_json(folder / "config.json", model_fix(folder))
    id2label = config.get("id2label")
    try:
        names = [str(id2label[str(i)]) for i in range(len(id2label))]
    except (KeyError, TypeError) as exc:
        raise ModelError(
            f"'{folder / 'config.json'}': id2label does not name labels 0 to n-1; {model_fix(folder)}"
        ) from exc
    if not names:
        raise ModelError(f"'{folder / 'config.json'}' names no labels (id2label); {model_fix(folder)}")
    return names


def multi_label_of(folder: Path) -> bool:
    """Whether a saved model is multi-label: its config.json's ``problem_type`` is ``multi_label_classification``
    (its probabilities are each label's sigmoid, as :func:`is_multi_label` says of the loaded model)."""
    from .saved import model_fix, read_json

    config = read_json(Path(folder) / "config.json", model_fix(Path(folder)))
    return config.get("problem_type") == "multi_label_classification" and len(config.get("id2label") or ()) > 1


def session(path: Path, threads: int | None = None) -> Any:
    """An onnxruntime CPU session for a graph; one that cannot be loaded is one line naming it."""
    ort = require_runtime()
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    if threads:
        options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    # threads sleep when waiting rather than spin, as autoft's torch threads do (OMP_WAIT_POLICY=PASSIVE):
    # spinning threads collapse when anything else runs on the cores
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    options.log_severity_level = 3
    try:
        return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    except Exception as exc:
        folder = Path(path).parent
        flags = "--onnx --quantize" if Path(path).name == INT8_FILE else "--onnx"
        raise ModelError(
            f"'{path}' cannot be loaded by onnxruntime ({first_line(exc)}); export it again: "
            f"autoft export {folder} {flags}"
        ) from exc


class OnnxPredictor(SavedTask):
    """A saved model's exported ONNX graph and its tokenizer, ready to label texts on the CPU.

    The same interface as :class:`autoft.predict.Predictor` where serving needs it: ``label_names``,
    ``max_length``, ``inputs`` and ``paired`` (a sentence-pair model, from ``task.json``), ``regression``
    (one output: ``label_names`` names the target, ``proba`` gives the (n, 1) predictions, from the graph's
    ``predictions``), ``thresholds`` (a multi-label model's decision threshold per label, from ``task.json``;
    None for other models: ``proba`` then gives each label's sigmoid, and ``__call__`` label sets) and
    ``proba(texts, pairs=None)``, with the same tokenization and length-sorted batches. ``multi_label`` says
    whether config.json makes the model multi-label; ``graph_inputs`` names the graph's inputs.
    ``quantized`` runs ``model.int8.onnx``; ``path``, another graph of the same model (the export's check);
    ``threads``, onnxruntime's intra-op threads (default: one per physical core).
    """

    def __init__(
        self,
        folder: str | Path,
        device: str = "cpu",
        batch_size: int = 64,
        max_length: int | None = None,
        quantized: bool = False,
        threads: int | None = None,
        path: str | Path | None = None,
    ):
        from transformers import AutoTokenizer

        from .models import quiet_transformers
        from .saved import model_fix, softmax_temperature, trained_inputs, trained_max_length, trained_thresholds

        if str(device) not in ("cpu", "auto"):
            raise ConfigError(
                f"--device {device}: ONNX models run on the CPU (onnxruntime's CPUExecutionProvider); "
                "use --device cpu, or the PyTorch model (without --onnx)"
            )
        self.folder = Path(folder)
        self.quantized = quantized
        self.path = Path(path) if path is not None else graph_path(self.folder, quantized)
        require_runtime()
        self.inputs = trained_inputs(self.folder)
        self.label_names = label_names_of(self.folder)
        self.multi_label = multi_label_of(self.folder)
        self.thresholds = trained_thresholds(self.folder, self.label_names)
        quiet_transformers()
        try:
            self.tokenizer = AutoTokenizer.from_pretrained(self.folder)
        except Exception as exc:
            raise ModelError(
                f"cannot load the tokenizer in '{self.folder}': {first_line(exc)}; {model_fix(self.folder)}"
            ) from exc
        if self.tokenizer.pad_token_id is None:
            raise ModelError(f"the tokenizer in '{self.folder}' has no padding token; {model_fix(self.folder)}")
        self.max_length = max_length or trained_max_length(self.folder, self.tokenizer)
        self.temperature = softmax_temperature(self.folder, not self.regression and not self.multi_label)
        self.batch_size = batch_size
        self.session = session(self.path, threads)
        self.graph_inputs = [i.name for i in self.session.get_inputs()]
        outputs = {o.name: o.shape for o in self.session.get_outputs()}
        again = f"export it again: autoft export {self.folder} {'--onnx --quantize' if quantized else '--onnx'}"
        graph = set(self.graph_inputs)
        if not {"input_ids", "attention_mask"} <= graph or not graph <= set(INPUTS):
            raise ModelError(f"'{self.path}' takes inputs {', '.join(self.graph_inputs)}, not autoft's; {again}")
        self.output = REGRESSION_OUTPUTS[0] if self.regression else "probabilities"
        if self.output not in outputs:
            what = "a regression model's" if self.regression else "a classifier's"
            raise ModelError(f"'{self.path}' has no '{self.output}' output, which {what} graph has; {again}")
        width = outputs[self.output][-1]
        if isinstance(width, int) and width != len(self.label_names):
            raise ModelError(
                f"'{self.path}' gives {width} {self.output}, but config.json names {len(self.label_names)} labels; "
                f"{again}"
            )

    def proba(self, texts: list[str], pairs: list[str] | None = None) -> np.ndarray:
        """Class probabilities (a regression model's predictions, as one column); all finite, or a
        :class:`ModelError` naming the graph and the texts.

        ``pairs``: each text's second text, for a sentence-pair model (and only for one).
        """
        import numpy as np

        from .features import encode, eval_batches
        from .predict import check_pairs, finish

        texts = list(texts)
        pairs = None if pairs is None else list(pairs)
        check_pairs(self.inputs, texts, pairs, f"the model in '{self.folder}'")
        enc = encode(self.tokenizer, texts, np.zeros(len(texts), dtype=np.int64), self.max_length, pairs=pairs)
        out = np.zeros((len(texts), len(self.label_names)), dtype=np.float32)
        pad_id = int(self.tokenizer.pad_token_id)
        for rows in eval_batches(enc.lengths, self.batch_size):
            batch = enc.batch(rows, pad_id)
            feeds = {"input_ids": batch["input_ids"], "attention_mask": batch["attention_mask"]}
            if "token_type_ids" in self.graph_inputs:
                types = batch.get("token_type_ids")
                feeds["token_type_ids"] = types if types is not None else np.zeros_like(batch["input_ids"])
            out[rows] = self.session.run([self.output], feeds)[0]
        return finish(out, self.temperature, f"'{self.path}'", f"export it again: autoft export {self.folder} --onnx")

    def __call__(self, texts: list[str], pairs: list[str] | None = None) -> Any:
        from .predict import Predictions

        pairs = None if pairs is None else list(pairs)
        return Predictions(list(texts), self.label_names, self.proba(list(texts), pairs), pairs, self.thresholds)
