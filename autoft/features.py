"""Tokenize once per (dataset, tokenizer, max_length), then batch with per-batch padding.

Token ids of a split are kept flat (one int32 array plus offsets), so a batch is
padded only to its own longest text. Training batches group texts of similar
length (shuffled in large pools, then sorted within each pool) to waste little
on padding; evaluation batches are sorted by length.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .data import SPLITS, PreparedData
from .fsutil import write_folder
from .threads import tokenizer_threads

#: a training batch draws from a pool of this many batches, sorted by length
POOL_BATCHES = 50


@dataclass(frozen=True)
class Encoded:
    """Token ids of one split, flat, with offsets; and the labels.

    Sentence pairs also have ``type_ids`` (0 for the first text, 1 for the second), aligned with
    ``ids``, where the tokenizer gives them (BERT-like models; RoBERTa-like ones do without).
    """

    ids: np.ndarray  # int32, all texts back to back
    offsets: np.ndarray  # int64, len(texts) + 1
    labels: np.ndarray  # int64 label ids, float32 regression targets, or float32 0/1 rows (multi-label)
    type_ids: np.ndarray | None = None  # int8, like ids

    def __len__(self) -> int:
        return len(self.labels)

    @property
    def lengths(self) -> np.ndarray:
        return np.diff(self.offsets)

    def lengths_of(self, rows: np.ndarray) -> np.ndarray:
        """The lengths of some rows (without diffing the whole split, as ``lengths`` does)."""
        return self.offsets[rows + 1] - self.offsets[rows]

    def subset(self, rows: np.ndarray) -> Encoded:
        lengths = self.lengths_of(rows)
        offsets = np.zeros(len(rows) + 1, dtype=np.int64)
        np.cumsum(lengths, out=offsets[1:])

        def gather(flat: np.ndarray) -> np.ndarray:
            if not len(rows):
                return flat[:0]
            return np.concatenate([flat[self.offsets[r] : self.offsets[r + 1]] for r in rows])

        types = None if self.type_ids is None else gather(self.type_ids).astype(np.int8)
        return Encoded(gather(self.ids).astype(np.int32), offsets, self.labels[rows], types)

    def batch(self, rows: np.ndarray, pad_id: int, multiple: int = 1) -> dict[str, np.ndarray]:
        """input_ids and attention_mask (and token_type_ids for pairs) padded to the longest row, and labels.

        ``multiple``: the width rounds up to a multiple of it (fewer distinct shapes; see :func:`device_batch`).
        """
        lengths = self.lengths_of(rows)
        width = -(-int(lengths.max()) // multiple) * multiple
        input_ids = np.full((len(rows), width), pad_id, dtype=np.int64)
        types = None if self.type_ids is None else np.zeros((len(rows), width), dtype=np.int64)
        for i, r in enumerate(rows):
            start = self.offsets[r]
            input_ids[i, : lengths[i]] = self.ids[start : start + lengths[i]]
            if types is not None:
                types[i, : lengths[i]] = self.type_ids[start : start + lengths[i]]
        mask = (np.arange(width)[None, :] < lengths[:, None]).astype(np.int64)
        out = {"input_ids": input_ids, "attention_mask": mask}
        if types is not None:
            out["token_type_ids"] = types
        out["labels"] = self.labels[rows]
        return out


def model_inputs(batch: dict[str, Any]) -> dict[str, Any]:
    """What a model's forward takes from a batch: everything but the labels."""
    return {k: v for k, v in batch.items() if k != "labels"}


def encode(
    tokenizer: Any,
    texts: list[str],
    labels: np.ndarray,
    max_length: int,
    chunk: int = 2048,
    pairs: list[str] | None = None,
) -> Encoded:
    """Tokenize texts (or pairs of texts) with truncation to ``max_length`` tokens (special tokens included).

    A pair is cut from its longer side first (the tokenizer's ``longest_first``).
    """
    pieces, type_pieces, lengths = [], [], []
    for start in range(0, len(texts), chunk):
        if pairs is None:
            out = tokenizer(texts[start : start + chunk], truncation=True, max_length=max_length)
        else:
            out = tokenizer(
                texts[start : start + chunk],
                pairs[start : start + chunk],
                truncation="longest_first",
                max_length=max_length,
            )
        types = out.get("token_type_ids") if pairs is not None else None
        for i, ids in enumerate(out["input_ids"]):
            pieces.append(np.asarray(ids, dtype=np.int32))
            lengths.append(len(ids))
            if types is not None:
                type_pieces.append(np.asarray(types[i], dtype=np.int8))
    offsets = np.zeros(len(lengths) + 1, dtype=np.int64)
    np.cumsum(lengths, out=offsets[1:])
    ids = np.concatenate(pieces) if pieces else np.zeros(0, dtype=np.int32)
    type_ids = None
    if pairs is not None and type_pieces:
        type_ids = np.concatenate(type_pieces)
    return Encoded(ids, offsets, label_array(labels), type_ids)


def label_array(labels: Any) -> np.ndarray:
    """Labels as training reads them: int64 class ids, or float32 regression targets."""
    labels = np.asarray(labels)
    return labels.astype(np.float32) if labels.dtype.kind == "f" else labels.astype(np.int64)


def tokenizer_fingerprint(tokenizer: Any) -> str:
    h = hashlib.sha256()
    backend = getattr(tokenizer, "backend_tokenizer", None)
    if backend is not None:
        h.update(backend.to_str().encode())
    else:
        h.update(f"{type(tokenizer).__name__}:{tokenizer.name_or_path}:{len(tokenizer)}".encode())
    return h.hexdigest()[:16]


def cache_key(tokenizer: Any, data: PreparedData, max_length: int) -> str:
    return hashlib.sha256(f"{data.fingerprint}:{tokenizer_fingerprint(tokenizer)}:{max_length}".encode()).hexdigest()[
        :20
    ]


def save_encoded(folder: Path, splits: dict[str, Encoded]) -> None:
    """Token ids as .npy files (one per split and array), written as a whole folder."""

    def fill(tmp: Path) -> None:
        for split, enc in splits.items():
            for name in ("ids", "offsets", "labels", "type_ids"):
                if getattr(enc, name) is not None:
                    np.save(tmp / f"{split}_{name}.npy", getattr(enc, name))

    write_folder(folder, fill)


def load_encoded(folder: Path, mmap: bool = True) -> dict[str, Encoded]:
    """Token ids saved by :func:`save_encoded`, memory-mapped (processes share the pages).

    Each split's arrays are checked against each other (a :class:`~autoft.saved.DamagedFile` names
    the file that does not fit); :func:`encode_splits` also checks them against the data.
    """
    from .saved import DamagedFile, read_npy

    folder = Path(folder)
    fix = f"delete the folder '{folder}': the next study run tokenizes again"
    out = {}
    for s in SPLITS:
        paths = [folder / f"{s}_{name}.npy" for name in ("ids", "offsets", "labels")]
        ids, offsets, labels = (read_npy(p, fix, mmap=mmap) for p in paths)
        for path, array in zip(paths, (ids, offsets, labels)):
            if array.ndim not in ((1, 2) if array is labels else (1,)) or array.dtype.kind not in (
                "iuf" if array is labels else "iu"
            ):
                raise DamagedFile(path, f"a {array.dtype} array of shape {array.shape}, not token ids", fix)
        if len(offsets) != len(labels) + 1:
            raise DamagedFile(paths[1], f"{len(offsets)} offsets for {len(labels)} labels", fix)
        if offsets[0] != 0 or offsets[-1] != len(ids) or (len(offsets) > 1 and np.diff(offsets).min() < 0):
            raise DamagedFile(paths[1], f"the offsets do not cut the {len(ids)} token ids into texts", fix)
        types_path = folder / f"{s}_type_ids.npy"
        types = read_npy(types_path, fix, mmap=mmap) if types_path.exists() else None
        if types is not None and (types.shape != ids.shape or types.dtype.kind not in "iu"):
            reason = f"a {types.dtype} array of shape {types.shape}, not one type id per token"
            raise DamagedFile(types_path, reason, fix)
        out[s] = Encoded(ids, offsets, labels, types)
    return out


def _check_cache(splits: dict[str, Encoded], folder: Path, tokenizer: Any, data: PreparedData, max_length: int):
    """Cached tokens that fit this data and tokenizer: the same labels, ids in the vocabulary, no text too long."""
    from .saved import DamagedFile

    fix = f"delete the folder '{folder}': the next study run tokenizes again"
    vocab = len(tokenizer)
    for s, enc in splits.items():
        if not np.array_equal(enc.labels, data.split(s).labels):
            raise DamagedFile(folder / f"{s}_labels.npy", f"not the labels of the {s} split", fix)
        if data.paired and enc.type_ids is None and "token_type_ids" in getattr(tokenizer, "model_input_names", ()):
            raise DamagedFile(folder / f"{s}_type_ids.npy", "missing: the pairs' type ids", fix)
        if len(enc.ids) and (int(enc.ids.min()) < 0 or int(enc.ids.max()) >= vocab):
            raise DamagedFile(folder / f"{s}_ids.npy", f"token ids outside the vocabulary of {vocab}", fix)
        if len(enc) and int(enc.lengths.max()) > max_length:
            raise DamagedFile(folder / f"{s}_offsets.npy", f"texts longer than max_length {max_length}", fix)


def encode_splits(
    tokenizer: Any, data: PreparedData, max_length: int, cache_dir: Path | None = None
) -> tuple[dict[str, Encoded], Path | None, bool]:
    """Token ids for train, validation and test, from the cache when there.

    A damaged cache (truncated or garbled files, arrays that do not fit the data) is rebuilt.
    Returns the splits, the cache folder (None without a cache) and whether the splits came from it.
    """
    from .saved import DamagedFile

    folder = cache_dir / f"tokens-{cache_key(tokenizer, data, max_length)}" if cache_dir else None
    if folder is not None and folder.is_dir():
        try:
            splits = load_encoded(folder)
            _check_cache(splits, folder, tokenizer, data, max_length)
            return splits, folder, True
        except DamagedFile:
            pass  # rebuilt below
    with tokenizer_threads():
        splits = {
            s: encode(tokenizer, data.split(s).texts, data.split(s).labels, max_length, pairs=data.split(s).pairs)
            for s in SPLITS
        }
    if folder is not None:
        save_encoded(folder, splits)
    return splits, folder, False


def train_batches(lengths: np.ndarray, batch_size: int, rng: np.random.Generator, group_by_length: bool = True):
    """Row indices of each training batch for one epoch."""
    order = rng.permutation(len(lengths))
    if not group_by_length:
        return [order[i : i + batch_size] for i in range(0, len(order), batch_size)]
    pool = batch_size * POOL_BATCHES
    batches = []
    for start in range(0, len(order), pool):
        chunk = order[start : start + pool]
        chunk = chunk[np.argsort(-lengths[chunk], kind="stable")]
        batches.extend(chunk[i : i + batch_size] for i in range(0, len(chunk), batch_size))
    rng.shuffle(batches)
    return batches


def eval_batches(lengths: np.ndarray, batch_size: int):
    """Row indices of evaluation batches, longest texts first."""
    order = np.argsort(-lengths, kind="stable")
    return [order[i : i + batch_size] for i in range(0, len(order), batch_size)]


#: on a GPU every batch's width rounds up to a multiple of this: tensor-core friendly widths, and 8 times fewer
#: distinct shapes for the kernels that plan per shape (as Hugging Face's ``pad_to_multiple_of=8``)
GPU_WIDTH_MULTIPLE = 8


def device_batch(data: Encoded, rows: np.ndarray, pad_id: int, device: torch.device) -> dict[str, torch.Tensor]:
    """``rows`` of ``data`` as one padded batch on ``device``."""
    multiple = GPU_WIDTH_MULTIPLE if device.type == "cuda" else 1
    return to_device(data.batch(rows, pad_id, multiple), device)


def to_device(batch: dict[str, np.ndarray], device: torch.device) -> dict[str, torch.Tensor]:
    if device.type == "cuda":
        return {k: torch.from_numpy(v).pin_memory().to(device, non_blocking=True) for k, v in batch.items()}
    return {k: torch.from_numpy(v) for k, v in batch.items()}
