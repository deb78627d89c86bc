"""The frozen-body feature cache: run the body once, then train and evaluate the head alone on what it read.

A phase whose body is frozen (the ``head`` strategy, the head stage of ``two_stage``, ``full``
with the embeddings and every layer frozen: :func:`autoft.anatomy.body_frozen`) spends nearly
all its time running a transformer whose output never changes. Here the body runs once per
(model, data, tokenizer, max_length, precision), over the training and validation splits; its
output is kept as memory-mapped ``.npy`` files beside the run's token cache, shared by every
trial and every worker process; a frozen-body phase then costs what its head costs.

What is cached, and why there. The head's input differs by architecture: BERT's classifier
reads the pooled output, and the pooler belongs to the backbone (the ``head`` strategy trains
it by default); DistilBERT's head is pre_classifier + classifier on the first token, applied in
the model's ``forward``; RoBERTa's classifier (dense + out_proj) takes the whole sequence output
and reads its first token; autoft's MLP head replaces the last linear layer of any of them.
What all of them read from the body is the **last hidden state at the first token** ([CLS],
``<s>``): that is what is cached, one float32 row per text. Cutting there, below the pooler,
makes one cache serve every head: pooler trained or not, the model's own classifier or the MLP,
so the cache key names the cut but not the head. Caching the head's own input instead (a hook
on the classifier) would tie the cache to which modules train and would capture BERT's
classifier input after its dropout.

How the head is applied. The model's own ``forward`` runs with the backbone's ``forward``
replaced by a stub that hands back the cached rows as a one-token sequence and runs the
backbone's pooler on them (:func:`body_replaced`). Pooling, activations and every dropout
outside the body are the model's code, not a copy of it: BERT's dropout before the
classifier and the MLP head's dropout act in training exactly as on tokens. A model whose head
reads more than the first token (mean pooling, the last token) or whose pooler is not a module
over the sequence is caught by :func:`stub_matches` at the start of each trial: the stub's
logits must equal the whole model's on a few padded validation rows, or the trial trains on
tokens as before.

Dropout inside the body. A frozen feature extractor has none: a frozen-body phase runs the body
in eval mode on tokens too (:func:`autoft.anatomy.set_train_modes`), so the cached and uncached
paths compute the same thing and draw the same random numbers; from the same seed they give
the same model, up to float rounding (features are computed in length-sorted, masked eval
batches rather than in the training batches).

The cache key: the cut; the token cache's key (dataset, tokenizer, max_length); the backbone's
weights and configuration (:func:`body_fingerprint`, the pooler left out: it runs per step); the
autocast precision the trial trains with. Workers that find the files missing compute them under
a lock file; each file is written to a temporary name and renamed, so a reader never sees half
a file, and two processes that compute at once (where the lock does not hold) write the same bytes.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import logging
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch import nn

from . import anatomy
from .features import Encoded, device_batch, eval_batches, model_inputs
from .fsutil import locked, write_bytes
from .strategies import Phase
from .training import Forward, attention_kernels, autocast_dtype, model_forward

if TYPE_CHECKING:
    from .workbench import Workbench

log = logging.getLogger(__name__)

#: what is cached (the backbone's last hidden state at the first token); a new cut needs a new name
CUT = "first-token-v1"
#: the splits a trial trains and evaluates on
SPLITS = ("train", "validation")
#: validation rows on which the stub backbone must give the whole model's logits
CHECK_ROWS = 8
#: model configuration keys that do not change the body's output
UNUSED_CONFIG_KEYS = ("id2label", "label2id", "num_labels", "problem_type", "transformers_version", "architectures")


def body_fingerprint(model: nn.Module) -> str:
    """A hash of what the body computes with: the backbone's class, configuration, weights and buffers.

    The pooler is left out (the cached rows are its input), and so are label names. Every byte
    of every weight is hashed (about 0.1 s for MiniLM's 22M parameters on a CPU).
    """
    prefix = anatomy.backbone_prefix(model)
    backbone = getattr(model, prefix)
    config = {k: v for k, v in model.config.to_dict().items() if k not in UNUSED_CONFIG_KEYS}
    h = hashlib.sha256(f"{type(backbone).__name__}\n{json.dumps(config, sort_keys=True, default=str)}".encode())
    tensors = [*backbone.named_parameters(), *backbone.named_buffers()]
    for name, tensor in tensors:
        if name.startswith("pooler."):
            continue
        t = tensor.detach().to("cpu").contiguous().reshape(-1)
        h.update(f"\n{name}:{tuple(tensor.shape)}:{t.dtype}\n".encode())
        h.update(memoryview(t.view(torch.uint8).numpy()))
    return h.hexdigest()[:20]


def cache_key(token_key: str, fingerprint: str, dtype: torch.dtype | None) -> str:
    """The feature cache's key: the cut, the token cache's key, the body's fingerprint, the autocast dtype."""
    text = f"{CUT}:{token_key}:{fingerprint}:{dtype or 'fp32'}"
    return hashlib.sha256(text.encode()).hexdigest()[:20]


def compute_features(
    backbone: nn.Module, data: Encoded, *, batch_size: int, device: torch.device, pad_id: int, dtype: torch.dtype | None
) -> np.ndarray:
    """The backbone's last hidden state at each row's first token, in eval mode: float32 (rows, hidden).

    Batches run longest first, padded to their longest row with an attention mask, so padding
    changes nothing beyond float rounding.
    """
    modes = [(m, m.training) for m in backbone.modules()]
    backbone.eval()
    out = np.zeros((len(data), 0), dtype=np.float32)
    try:
        with torch.inference_mode(), _autocast(device, dtype):
            for rows in eval_batches(data.lengths, batch_size):
                batch = device_batch(data, rows, pad_id, device)
                first = backbone(**model_inputs(batch))[0][:, 0]
                if out.shape[1] != first.shape[-1]:
                    out = np.zeros((len(data), first.shape[-1]), dtype=np.float32)
                out[rows] = first.float().cpu().numpy()
    finally:
        for module, mode in modes:
            module.training = mode
    return out


@contextlib.contextmanager
def body_replaced(backbone: nn.Module, first: torch.Tensor) -> Iterator[None]:
    """Within: ``backbone`` returns ``first`` (rows, hidden) as a one-token sequence, with its pooler run on it.

    The model's own ``forward`` around it then applies the head as it does on tokens; the
    ``input_ids`` it is called with are not read.
    """
    from transformers.modeling_outputs import BaseModelOutputWithPooling

    pooler = anatomy.pooler_of(backbone)

    def forward(*args: Any, **kwargs: Any) -> BaseModelOutputWithPooling:
        sequence = first[:, None, :]
        return BaseModelOutputWithPooling(
            last_hidden_state=sequence, pooler_output=pooler(sequence) if pooler is not None else None
        )

    backbone.forward = forward
    try:
        yield
    finally:
        del backbone.forward


class HeadOnFeatures:
    """A :data:`~autoft.training.Forward`: the head applied to the cached first-token rows of one split."""

    def __init__(self, model: nn.Module, features: torch.Tensor):
        self.model = model
        self.backbone = getattr(model, anatomy.backbone_prefix(model))
        self.features = features  # on the training device

    def __call__(self, rows: np.ndarray) -> torch.Tensor:
        index = torch.from_numpy(np.asarray(rows, dtype=np.int64)).to(self.features.device)
        dummy = torch.zeros((len(rows), 1), dtype=torch.long, device=self.features.device)
        with body_replaced(self.backbone, self.features[index]):
            return self.model(input_ids=dummy, attention_mask=torch.ones_like(dummy)).logits


class FrozenBodyForwards:
    """A trial's :class:`~autoft.training.Forwards`: frozen-body phases use the cached features.

    A phase that trains any of the body, or data other than the two splits the features were
    computed for (a sample of validation, say), runs the whole model on tokens.
    """

    def __init__(
        self,
        model: nn.Module,
        splits: dict[str, Encoded],
        features: dict[str, torch.Tensor],
        *,
        device: torch.device,
        pad_id: int,
    ):
        self.model, self.splits, self.features = model, splits, features
        self.device, self.pad_id = device, pad_id

    def __call__(self, phase: Phase, data: Encoded) -> Forward:
        split = next((name for name, enc in self.splits.items() if enc is data), None)
        if split is None or not anatomy.body_frozen(self.model, phase.params):
            return model_forward(self.model, data, device=self.device, pad_id=self.pad_id)
        return HeadOnFeatures(self.model, self.features[split])


def stub_matches(model: nn.Module, data: Encoded, *, device: torch.device, pad_id: int) -> bool:
    """Whether the head on first-token rows (:func:`body_replaced`) gives the whole model's logits.

    Checked in fp32, in eval mode, on up to :data:`CHECK_ROWS` rows of different lengths in one
    padded batch: a head that reads anything but the first token gives other logits.
    """
    backbone = getattr(model, anatomy.backbone_prefix(model))
    order = np.argsort(data.lengths, kind="stable")
    rows = order[np.linspace(0, len(order) - 1, min(CHECK_ROWS, len(order))).astype(int)]
    modes = [(m, m.training) for m in model.modules()]
    model.eval()
    seen: list[torch.Tensor] = []  # the body's output on the model's way: each row's first-token state
    hook = backbone.register_forward_hook(lambda module, args, output: seen.append(output[0][:, 0]))
    try:
        with torch.inference_mode():
            batch = device_batch(data, rows, pad_id, device)
            want = model(**model_inputs(batch)).logits.float()
            got = HeadOnFeatures(model, seen[0].float())(np.arange(len(rows))).float()
    except Exception as exc:  # a head the stub cannot feed: train on tokens
        log.debug("the head of %s does not run on first-token rows: %s", type(model).__name__, exc)
        return False
    finally:
        hook.remove()
        for module, mode in modes:
            module.training = mode
    return got.shape == want.shape and bool(torch.allclose(got, want, rtol=1e-3, atol=1e-4))


def load_or_compute(
    folder: Path | None, splits: dict[str, Encoded], compute: Callable[[Encoded], np.ndarray]
) -> tuple[dict[str, np.ndarray], bool]:
    """Each split's features from ``folder`` (memory-mapped), or from ``compute`` and saved there.

    Returns the features and whether they were computed now. Without a folder (no token cache:
    Ray's portable workers) they are computed for this trial alone. Missing or damaged files are
    computed under the folder's lock file, each written to a temporary file and renamed.
    """
    if folder is None:
        return {name: compute(enc) for name, enc in splits.items()}, True
    found = _read(folder, splits)
    if found is not None:
        return found, False
    folder.mkdir(parents=True, exist_ok=True)
    with locked(folder / ".lock"):
        found = _read(folder, splits)  # another worker may have written them while this one waited
        if found is not None:
            return found, False
        out = {}
        for name, enc in splits.items():
            out[name] = compute(enc)
            buffer = io.BytesIO()
            np.save(buffer, out[name], allow_pickle=False)
            write_bytes(folder / f"{name}.npy", buffer.getbuffer())
        return out, True


def _read(folder: Path, splits: dict[str, Encoded]) -> dict[str, np.ndarray] | None:
    """The saved features when every split's file is there and fits its split; otherwise None."""
    from .saved import DamagedFile, read_npy

    fix = f"delete '{folder}': the next trial computes it again"
    out: dict[str, np.ndarray] = {}
    for name, enc in splits.items():
        path = folder / f"{name}.npy"
        if not path.is_file():
            return None
        try:
            array = read_npy(path, fix, mmap=True, finite=True)
        except DamagedFile as exc:
            log.warning("%s", exc)
            return None
        widths = {a.shape[1] for a in out.values()} | {array.shape[-1]}
        if array.ndim != 2 or array.dtype != np.float32 or len(array) != len(enc) or len(widths) > 1:
            log.warning("'%s' (%s %s) does not fit the %s split: computed again", path, array.dtype, array.shape, name)
            return None
        out[name] = array
    return out


def frozen_body_forwards(
    model: nn.Module,
    phases: list[Phase],
    splits: dict[str, Encoded],
    *,
    folder: Path | None,
    device: torch.device,
    pad_id: int,
    dtype: torch.dtype | None,
    batch_size: int,
) -> FrozenBodyForwards | None:
    """The forwards for a trial whose phases include a frozen body, with the features loaded or computed.

    ``folder`` holds the cache (None: compute for this trial only). None when no phase has a
    frozen body, or when the model's head does not run on the cached rows (:func:`stub_matches`).
    Moves ``model`` to ``device``.
    """
    if not any(anatomy.body_frozen(model, phase.params) for phase in phases):
        return None
    model.to(device)
    if not stub_matches(model, splits["validation"], device=device, pad_id=pad_id):
        log.info("feature cache off: the head of %s needs more than the first token's state", type(model).__name__)
        return None
    backbone = getattr(model, anatomy.backbone_prefix(model))

    def compute(enc: Encoded) -> np.ndarray:
        return compute_features(backbone, enc, batch_size=batch_size, device=device, pad_id=pad_id, dtype=dtype)

    arrays, _ = load_or_compute(folder, splits, compute)
    features = {name: torch.from_numpy(np.array(a, dtype=np.float32)).to(device) for name, a in arrays.items()}
    return FrozenBodyForwards(model, splits, features, device=device, pad_id=pad_id)


def for_trial(bench: Workbench, model: nn.Module, phases: list[Phase], settings: Any) -> FrozenBodyForwards | None:
    """:func:`frozen_body_forwards` for a trial of ``bench``, cached beside its token cache (``features-<key>/``).

    None when ``[train] feature_cache`` is off or no phase has a frozen body.
    """
    if not getattr(settings, "feature_cache", True) or bench.encoded is None:
        return None
    if not any(anatomy.body_frozen(model, phase.params) for phase in phases):
        return None
    device = bench.device
    dtype = autocast_dtype(settings.precision, device)
    folder = None
    if bench.cache is not None:
        key = cache_key(bench.cache.name, body_fingerprint(model), dtype)
        folder = bench.cache.parent / f"features-{key}"
    splits = {name: bench.encoded[name] for name in SPLITS}
    return frozen_body_forwards(
        model,
        phases,
        splits,
        folder=folder,
        device=device,
        pad_id=bench.pad_id,
        dtype=dtype,
        batch_size=settings.eval_batch_size,
    )


@contextlib.contextmanager
def _autocast(device: torch.device, dtype: torch.dtype | None):
    autocast = torch.autocast(device.type, dtype=dtype or torch.float32, enabled=dtype is not None)
    with attention_kernels(device), autocast:
        yield
