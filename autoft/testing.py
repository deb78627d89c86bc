"""Helpers for testing autoft and autoft plugins: tiny models, made-up data, study files.

Everything here is built on the spot from a config and generated text, so
tests need no download and run in seconds on a CPU.
"""

from __future__ import annotations

import random
from collections import Counter
from pathlib import Path
from typing import Any

import pandas as pd
from tomli_w import dumps

SPECIAL = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]

POSITIVE_WORDS = ["great", "excellent", "lovely", "superb", "wonderful", "brilliant", "fantastic", "perfect"]
NEGATIVE_WORDS = ["awful", "terrible", "broken", "useless", "horrible", "dreadful", "poor", "faulty"]
FILLER = [
    "the",
    "product",
    "was",
    "really",
    "and",
    "it",
    "arrived",
    "on",
    "time",
    "my",
    "order",
    "this",
    "item",
    "quite",
    "very",
    "honestly",
    "box",
    "price",
    "seller",
    "delivery",
]


def sentiment_rows(n: int, seed: int = 0, labels: tuple[str, ...] = ("neg", "pos")) -> tuple[list[str], list[str]]:
    """Short texts whose label is given away by a sentiment word: a tiny model learns them quickly."""
    rng = random.Random(seed)
    words = {labels[0]: NEGATIVE_WORDS, labels[-1]: POSITIVE_WORDS}
    texts, out = [], []
    for i in range(n):
        label = labels[i % len(labels)]
        pool = words.get(label, FILLER)
        body = rng.sample(FILLER, rng.randint(3, 9))
        body.insert(rng.randrange(len(body) + 1), rng.choice(pool))
        texts.append(" ".join(body) + f" {i}")
        out.append(label)
    return texts, out


def pair_rows(n: int, seed: int = 0) -> tuple[list[str], list[str], list[str]]:
    """Sentence pairs whose label only the second text gives away: a model that ignores it guesses."""
    rng = random.Random(seed + 1)
    firsts = [" ".join(rng.sample(FILLER, rng.randint(3, 7))) + f" {i}" for i in range(n)]
    seconds, labels = sentiment_rows(n, seed)
    return firsts, seconds, labels


def label_set_rows(n: int, seed: int = 0) -> tuple[list[str], list[list[str]]]:
    """Texts with a positive word, a negative word, both or neither, labelled with the set of those it has."""
    rng = random.Random(seed)
    texts, labels = [], []
    for i in range(n):
        pos, neg = ("pos", POSITIVE_WORDS), ("neg", NEGATIVE_WORDS)
        has = [[pos], [neg], [], [pos, neg]][i % 4]
        body = rng.sample(FILLER, rng.randint(3, 7)) + [rng.choice(words) for _, words in has]
        rng.shuffle(body)
        texts.append(" ".join(body) + f" {i}")
        labels.append([name for name, _ in has])
    return texts, labels


def write_label_sets(path: Path, n: int, seed: int = 0) -> Path:
    """A table of texts with a ``labels`` column of label lists (Parquet keeps lists; CSV joins them with '|')."""
    texts, labels = label_set_rows(n, seed)
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix == ".parquet":
        pd.DataFrame({"text": texts, "labels": labels}).to_parquet(path, index=False)
    else:
        pd.DataFrame({"text": texts, "labels": ["|".join(y) for y in labels]}).to_csv(path, index=False)
    return path


def score_rows(n: int, seed: int = 0) -> tuple[list[str], list[float]]:
    """Texts scored 0 to 5 by how many positive words they hold (0 to 4, 1.25 each): a number to predict."""
    rng = random.Random(seed)
    texts, scores = [], []
    for i in range(n):
        k = i % 5
        body = rng.sample(FILLER, rng.randint(3, 7)) + rng.sample(POSITIVE_WORDS, k)
        rng.shuffle(body)
        texts.append(" ".join(body) + f" {i}")
        scores.append(k * 1.25)
    return texts, scores


def write_scores_csv(path: Path, n: int, seed: int = 0) -> Path:
    """A CSV of texts with a ``score`` column of numbers (see :func:`score_rows`)."""
    texts, scores = score_rows(n, seed)
    path.parent.mkdir(parents=True, exist_ok=True)
    pd.DataFrame({"text": texts, "score": scores}).to_csv(path, index=False)
    return path


def write_pairs_csv(path: Path, n: int, seed: int = 0) -> Path:
    """A CSV of sentence pairs: columns ``first``, ``second`` and ``label`` (see :func:`pair_rows`)."""
    first, second, labels = pair_rows(n, seed)
    path.parent.mkdir(parents=True, exist_ok=True)
    pd.DataFrame({"first": first, "second": second, "label": labels}).to_csv(path, index=False)
    return path


def write_csv(path: Path, n: int, seed: int = 0, labels: tuple[str, ...] = ("neg", "pos")) -> Path:
    texts, y = sentiment_rows(n, seed, labels)
    path.parent.mkdir(parents=True, exist_ok=True)
    pd.DataFrame({"text": texts, "label": y}).to_csv(path, index=False)
    return path


def train_tokenizer(texts: list[str], folder: Path, vocab_size: int = 400, token_types: bool = False) -> Any:
    """A WordPiece tokenizer (BERT-style, lowercase) trained on ``texts`` and saved to ``folder``.

    ``token_types``: it also gives ``token_type_ids`` (segment ids of a pair), as BERT's tokenizer does.
    """
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast

    normalizer = normalizers.BertNormalizer(lowercase=True)
    pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    # The vocabulary is built here rather than by tokenizers' WordPieceTrainer, whose choice among
    # equally frequent pieces changes from run to run: tests need the same tokenizer every time.
    counts: Counter[str] = Counter()
    for text in texts:
        counts.update(word for word, _ in pre_tokenizer.pre_tokenize_str(normalizer.normalize_str(text)))
    chars = sorted({c for word in counts for c in word})
    vocab = list(SPECIAL) + chars + [f"##{c}" for c in chars]
    words = sorted((w for w in counts if len(w) > 1), key=lambda w: (-counts[w], w))
    vocab += words[: max(0, vocab_size - len(vocab))]
    tok = Tokenizer(models.WordPiece({piece: i for i, piece in enumerate(vocab)}, unk_token="[UNK]"))
    tok.normalizer = normalizer
    tok.pre_tokenizer = pre_tokenizer
    cls, sep = tok.token_to_id("[CLS]"), tok.token_to_id("[SEP]")
    tok.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", pair="[CLS] $A [SEP] $B:1 [SEP]:1", special_tokens=[("[CLS]", cls), ("[SEP]", sep)]
    )
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok,
        unk_token="[UNK]",
        pad_token="[PAD]",
        cls_token="[CLS]",
        sep_token="[SEP]",
        mask_token="[MASK]",
        model_max_length=128,
        **({"model_input_names": ["input_ids", "token_type_ids", "attention_mask"]} if token_types else {}),
    )
    fast.save_pretrained(folder)
    return fast


def make_tiny_model(folder: Path, arch: str = "bert", texts: list[str] | None = None, seed: int = 0) -> Path:
    """A randomly initialised 2-layer encoder (``bert``, ``distilbert`` or ``roberta``) saved like a checkpoint.

    The folder holds a backbone without a classifier head, as pretrained checkpoints do.
    """
    import torch
    from transformers import AutoModel, BertConfig, DistilBertConfig, RobertaConfig

    from .models import quiet_transformers

    quiet_transformers()
    folder = Path(folder)
    if texts is None:
        texts = sentiment_rows(400, seed)[0]
    tokenizer = train_tokenizer(texts, folder, token_types=arch == "bert")
    vocab = len(tokenizer)
    torch.manual_seed(seed)
    # 64 wide, 2 layers, a wider initialisation than BERT's 0.02: small enough for seconds on a CPU,
    # and it learns the sentiment words reliably whatever the seed
    size = {"hidden_size": 64, "num_hidden_layers": 2, "num_attention_heads": 2, "intermediate_size": 128}
    if arch == "bert":
        config = BertConfig(vocab_size=vocab, max_position_embeddings=128, initializer_range=0.05, **size)
    elif arch == "distilbert":
        config = DistilBertConfig(
            vocab_size=vocab,
            dim=64,
            n_layers=2,
            n_heads=2,
            hidden_dim=128,
            max_position_embeddings=128,
            initializer_range=0.05,
        )
    elif arch == "roberta":
        config = RobertaConfig(
            vocab_size=vocab,
            max_position_embeddings=132,
            pad_token_id=0,
            bos_token_id=2,
            eos_token_id=3,
            initializer_range=0.05,
            **size,
        )
    else:
        raise ValueError(f"unknown arch {arch!r}; use bert, distilbert or roberta")
    AutoModel.from_config(config).save_pretrained(folder, safe_serialization=True)
    return folder


def write_study(path: Path, tables: dict) -> Path:
    """Write a study file from a dict of tables."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(dumps(tables))
    return path
