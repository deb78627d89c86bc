"""Helpers for testing autoft and autoft plugins: tiny models, made-up data, study files.

Everything here is built on the spot from a config and generated text, so
tests need no download and run in seconds on a CPU.
"""

from __future__ import annotations

import random
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


def write_csv(path: Path, n: int, seed: int = 0, labels: tuple[str, ...] = ("neg", "pos")) -> Path:
    texts, y = sentiment_rows(n, seed, labels)
    path.parent.mkdir(parents=True, exist_ok=True)
    pd.DataFrame({"text": texts, "label": y}).to_csv(path, index=False)
    return path


def train_tokenizer(texts: list[str], folder: Path, vocab_size: int = 400) -> Any:
    """A WordPiece tokenizer (BERT-style, lowercase) trained on ``texts`` and saved to ``folder``."""
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.WordPiece(unk_token="[UNK]"))
    tok.normalizer = normalizers.BertNormalizer(lowercase=True)
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tok.train_from_iterator(texts, trainers.WordPieceTrainer(vocab_size=vocab_size, special_tokens=SPECIAL))
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
    tokenizer = train_tokenizer(texts, folder)
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
