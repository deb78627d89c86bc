"""The texts ``autoft export --onnx`` checks a graph on: the study's test split, ``--texts``, or texts of its own."""

from __future__ import annotations

import contextlib
import random
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .errors import AutoftError, first_line
from .onnx_predict import multi_label_of

#: probe texts added to the fp32 check, their lengths spread up to past max_length
PROBES = 32
#: texts drawn from the vocabulary when neither the test split nor --texts is there
VOCAB_TEXTS = 200

if TYPE_CHECKING:
    import numpy as np


@dataclass
class CheckTexts:
    texts: list[str]
    #: where known: indexes into the model's labels; a regression model's targets; a multi-label model's 0/1 rows
    #: (n, labels), one column per label in the model's order
    labels: np.ndarray | None
    source: str
    pairs: list[str] | None = None  # each text's second text, for a sentence-pair model


def paired_with_next(texts: list[str]) -> list[str]:
    """Second texts for ``texts``: each is paired with the next one, the last with the first."""
    return texts[1:] + texts[:1]


def texts_file(path: Path, paired: bool = False) -> CheckTexts:
    """``--texts``: one text per line; for a sentence-pair model (``paired``), two texts a line, tab-separated."""
    from .predict import read_texts, split_pairs

    try:
        texts = read_texts(path)
    except AutoftError as exc:  # its messages name --file, autoft predict's flag
        raise type(exc)(str(exc).replace("--file ", "--texts ", 1)) from exc
    if not paired:
        return CheckTexts(texts, None, f"--texts {path} ({len(texts)} texts)")
    firsts, seconds = split_pairs(texts, f"--texts {path}")
    return CheckTexts(firsts, None, f"--texts {path} ({len(texts)} pairs)", seconds)


def study_test_split(
    folder: Path, label_names: list[str], paired: bool | None = None, multi_label: bool | None = None
) -> tuple[CheckTexts | None, str]:
    """The study's test split, rebuilt from the folder's study.toml as ``autoft evaluate --study`` would.

    None, and why, when it cannot be: no study.toml, its data not found from here, a split whose row
    count differs from the one ``metrics.json`` says the study scored, or (``paired`` given) single texts
    for a sentence-pair model or pairs for a single-text one. A split of pairs keeps them (``pairs``).
    Its labels are the model's label ids; for a regression model (one label name: its target), the
    numeric targets, and the split must be a regression split of the same target; for a multi-label model
    (``multi_label``, by default what the folder's config.json says), the split must be of label sets, given
    as 0/1 rows (float, one column per label of ``label_names``, in that order).
    """
    import numpy as np

    from .config import parse_dataset
    from .plugins import load_plugins
    from .saved import read_json, read_toml
    from .workbench import load_dataset

    folder = Path(folder)
    path = folder / "study.toml"
    if not path.is_file():
        return None, "no study.toml"
    try:
        raw = read_toml(path, "restore it from the study file the model came from")
        if not isinstance(raw.get("dataset"), dict):
            return None, "its study.toml has no [dataset]"
        study = raw.get("study", {}) if isinstance(raw.get("study", {}), dict) else {}
        seed = study.get("seed", 0)
        plugins = [Path(p) for p in study.get("plugins", []) if isinstance(p, str)]
        registry = load_plugins(plugins)
        section, options = parse_dataset(raw.get("dataset"), str(path), registry)
        data = load_dataset(section, options, registry, Path.cwd(), seed if isinstance(seed, int) else 0, str(path))
    except (AutoftError, OSError, ValueError, KeyError, TypeError) as exc:
        return None, f"the study's data cannot be loaded from here ({first_line(exc)})"
    split = data.split("test")
    expected = None
    if (folder / "metrics.json").is_file():
        with contextlib.suppress(AutoftError):
            expected = read_json(folder / "metrics.json", "").get("test_rows")
    if expected is not None and expected != len(split):
        return None, f"the rebuilt test split has {len(split)} rows, the study scored {expected}"
    regression = len(label_names) == 1
    if multi_label is None:
        try:
            multi_label = multi_label_of(folder)
        except AutoftError as exc:
            return None, f"the model's config.json cannot be read ({first_line(exc)})"
    if not len(split):
        return None, "the rebuilt test split has no rows"
    if bool(getattr(data, "regression", False)) != regression:
        if regression:
            return None, "the rebuilt test split has classes, the model predicts a number (regression)"
        return None, "the rebuilt test split has numbers (regression), the model predicts classes"
    sets = getattr(data, "task", "classification") == "multi_label"
    if not regression and sets != bool(multi_label):
        if multi_label:
            return None, "the rebuilt test split has one class per row, the model gives sets of labels (multi-label)"
        return None, "the rebuilt test split has sets of labels (multi-label), the model gives one class per row"
    if regression and list(data.label_names) != list(label_names):
        return None, f"the rebuilt test split's target is '{data.label_names[0]}', the model's '{label_names[0]}'"
    unknown = [n for n in data.label_names if n not in label_names]
    if unknown:
        return None, "the rebuilt test split does not fit the model's labels"
    has_pairs = split.pairs is not None
    if paired is not None and has_pairs != paired:
        if paired:
            return None, "the rebuilt test split has single texts, the model reads sentence pairs"
        return None, "the rebuilt test split has sentence pairs, the model reads single texts"
    if regression:  # the numbers themselves
        labels = np.asarray(split.labels, dtype=np.float64)
    elif multi_label:  # 0/1 rows, their columns moved to the model's label order (a label the data lacks: all 0)
        labels = np.zeros((len(split), len(label_names)), dtype=np.float32)
        to_model = [label_names.index(n) for n in data.label_names]
        labels[:, to_model] = np.asarray(split.labels, dtype=np.float32).reshape(len(split), len(to_model)) > 0
    else:
        to_model = np.array([label_names.index(n) for n in data.label_names])
        labels = to_model[np.asarray(split.labels)]
    pairs = list(split.pairs) if has_pairs else None
    return CheckTexts(list(split.texts), labels, f"the study's test split ({len(split)} rows)", pairs), ""


def vocabulary_texts(tokenizer: Any, n: int, lengths: tuple[int, int], seed: int = 0) -> list[str]:
    """``n`` texts of whole words drawn from the tokenizer's vocabulary (deterministic), ``lengths`` words long."""
    special = set(getattr(tokenizer, "all_special_tokens", []))
    words = sorted(
        {w.lstrip("Ġ▁") for w in tokenizer.get_vocab() if w not in special and w.lstrip("Ġ▁").isalpha()}
    ) or ["text"]
    rng = random.Random(seed)
    low, high = lengths
    return [" ".join(rng.choice(words) for _ in range(rng.randint(low, high))) for _ in range(n)]


def probe_texts(tokenizer: Any, max_length: int, n: int = PROBES) -> list[str]:
    """Texts of every length from 1 word to past ``max_length`` tokens (some truncated), for the dynamic axes."""
    texts = vocabulary_texts(tokenizer, n, (1, 1), seed=1)
    longest = max_length + 8
    return [" ".join([t] * max(1, round(1 + (longest - 1) * i / max(1, n - 1)))) for i, t in enumerate(texts)]


def fallback_texts(
    folder: Path,
    tokenizer: Any,
    max_length: int,
    paired: bool = False,
    regression: bool = False,
    multi_label: bool = False,
) -> CheckTexts:
    """The mistakes the study listed (``evaluation/misclassified.csv``; for a ``regression`` model
    ``evaluation/largest_errors.csv``; for a ``multi_label`` one ``evaluation/mistakes.csv``, a row per wrong
    decision, each text taken once) and texts drawn from the vocabulary.

    For a sentence-pair model (``paired``): the listed pairs (its ``text`` and ``text_pair`` columns), and
    each drawn text paired with the next one.
    """
    import pandas as pd

    texts: list[str] = []
    seconds: list[str] = []
    listing = "largest_errors.csv" if regression else "mistakes.csv" if multi_label else "misclassified.csv"
    listed = Path(folder).parent / "evaluation" / listing
    if Path(folder).name == "best" and listed.is_file():
        with contextlib.suppress(Exception):
            frame = pd.read_csv(listed, keep_default_na=False)
            if not paired:
                texts = [t for t in frame["text"].astype(str) if t.strip()]
            elif "text_pair" in frame.columns:
                for first, second in zip(frame["text"].astype(str), frame["text_pair"].astype(str)):
                    if first.strip() and second.strip():
                        texts.append(first)
                        seconds.append(second)
    if multi_label:  # a text with several wrong decisions is listed once for each
        unique = dict.fromkeys(zip(texts, seconds) if paired else texts)
        texts = [t[0] for t in unique] if paired else list(unique)
        seconds = [t[1] for t in unique] if paired else []
    drawn = vocabulary_texts(tokenizer, VOCAB_TEXTS, (1, max(2, max_length // 2)))
    noun = "pairs" if paired else "texts"
    source = f"{len(drawn)} {noun} drawn from the vocabulary"
    if texts:
        source = f"{len(texts)} {noun} of evaluation/{listing} and {source}"
    pairs = seconds + paired_with_next(drawn) if paired else None
    return CheckTexts(texts + drawn, None, source, pairs)
