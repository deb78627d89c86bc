import os

import numpy as np
import pytest

from autoft.features import encode, eval_batches, train_batches


class WordTokenizer:
    """Each word is a token id: enough to test padding and batching."""

    def __call__(self, texts, truncation, max_length):
        ids = [[1] + [len(w) + 2 for w in t.split()][: max_length - 2] + [2] for t in texts]
        return {"input_ids": ids}


def test_batches_are_padded_to_their_own_longest_row():
    texts = ["a", "a bb ccc", "a bb", "a bb ccc dddd eeeee"]
    enc = encode(WordTokenizer(), texts, np.array([0, 1, 0, 1]), max_length=5)
    assert enc.lengths.tolist() == [3, 5, 4, 5]  # truncated to 5
    batch = enc.batch(np.array([0, 2]), pad_id=0)
    assert batch["input_ids"].tolist() == [[1, 3, 2, 0], [1, 3, 4, 2]]
    assert batch["attention_mask"].tolist() == [[1, 1, 1, 0], [1, 1, 1, 1]]
    assert batch["labels"].tolist() == [0, 0]


def test_an_epoch_visits_every_row_once_and_groups_similar_lengths():
    rng = np.random.default_rng(0)
    lengths = rng.integers(3, 200, size=1000)
    batches = train_batches(lengths, 16, rng)
    rows = np.concatenate(batches)
    assert sorted(rows.tolist()) == list(range(1000))
    padded = sum(len(b) * lengths[b].max() for b in batches)
    random_padded = sum(len(b) * lengths[b].max() for b in train_batches(lengths, 16, rng, group_by_length=False))
    assert padded < 0.75 * random_padded


def test_evaluation_batches_run_longest_first():
    lengths = np.array([5, 9, 2, 7])
    assert [b.tolist() for b in eval_batches(lengths, 2)] == [[1, 3], [0, 2]]


def test_subset_keeps_rows_and_labels():
    enc = encode(WordTokenizer(), ["a", "bb cc", "ddd"], np.array([0, 1, 2]), max_length=8)
    sub = enc.subset(np.array([2, 0]))
    assert sub.labels.tolist() == [2, 0]
    assert sub.batch(np.array([0]), 0)["input_ids"].tolist() == enc.batch(np.array([2]), 0)["input_ids"].tolist()


def test_a_width_multiple_pads_with_masked_tokens_only():
    texts = ["a", "a bb ccc", "a bb"]
    enc = encode(WordTokenizer(), texts, np.array([0, 1, 0]), max_length=16)
    exact = enc.batch(np.array([0, 1, 2]), pad_id=0)
    rounded = enc.batch(np.array([0, 1, 2]), pad_id=0, multiple=8)
    assert rounded["input_ids"].shape == (3, 8)
    width = exact["input_ids"].shape[1]
    assert (rounded["input_ids"][:, :width] == exact["input_ids"]).all()
    assert (rounded["attention_mask"].sum(axis=1) == enc.lengths).all()  # the extra columns are masked padding
    assert (rounded["input_ids"][:, width:] == 0).all()


def test_gpu_attention_runs_without_cudnn_and_the_setting_comes_back():
    """cuDNN's attention plans each new batch shape (see attention_kernels); the flags need no GPU to check."""
    import torch

    from autoft.training import attention_kernels

    before = torch.backends.cuda.cudnn_sdp_enabled()
    with attention_kernels(torch.device("cuda")):
        assert not torch.backends.cuda.cudnn_sdp_enabled()
        assert torch.backends.cuda.mem_efficient_sdp_enabled() and torch.backends.cuda.flash_sdp_enabled()
    assert torch.backends.cuda.cudnn_sdp_enabled() == before
    with attention_kernels(torch.device("cpu")):
        assert torch.backends.cuda.cudnn_sdp_enabled() == before


def test_padding_to_a_width_multiple_leaves_every_architectures_logits(tiny_bert, tiny_distilbert, tiny_roberta):
    import torch

    from autoft.features import model_inputs
    from autoft.models import BaseModel, load_tokenizer, resolve
    from autoft.testing import sentiment_rows

    texts, _ = sentiment_rows(12, seed=3)
    for folder in (tiny_bert, tiny_distilbert, tiny_roberta):
        ref = resolve(str(folder), folder)
        tokenizer = load_tokenizer(ref)
        enc = encode(tokenizer, texts, np.zeros(len(texts), dtype=np.int64), max_length=40)
        model = BaseModel(ref, ("neg", "pos")).fresh(0).eval()
        rows = np.arange(len(texts))
        assert enc.batch(rows, 0, 8)["input_ids"].shape[1] > enc.lengths.max()  # columns of padding were added
        with torch.inference_mode():
            logits = [
                model(**model_inputs({k: torch.from_numpy(v) for k, v in enc.batch(rows, pad, m).items()})).logits
                for pad, m in ((tokenizer.pad_token_id, 1), (tokenizer.pad_token_id, 8))
            ]
        assert torch.allclose(logits[0], logits[1], atol=1e-5), folder.name


@pytest.mark.parametrize("user_value", [None, "false", "true"])
def test_a_study_tokenizes_with_the_tokenizers_threads_unless_the_user_chose(user_value, monkeypatch):
    """autoft's command line keeps the threads off where trials fork; they run only while a study tokenizes."""
    from types import SimpleNamespace

    from autoft import features, threads

    monkeypatch.delenv("TOKENIZERS_PARALLELISM", raising=False)
    monkeypatch.delenv(threads.THREADS_OFF_BY_AUTOFT, raising=False)
    monkeypatch.setenv("OMP_WAIT_POLICY", "PASSIVE")  # restored after the test, as the two above
    if user_value is not None:
        monkeypatch.setenv("TOKENIZERS_PARALLELISM", user_value)
    threads.set_process_defaults()  # what autoft's command line does first
    seen = []
    monkeypatch.setattr(features, "encode", lambda *a, **k: seen.append(os.environ["TOKENIZERS_PARALLELISM"]))
    split = SimpleNamespace(texts=["a b"], labels=np.zeros(1, dtype=np.int64), pairs=None)
    features.encode_splits(None, SimpleNamespace(split=lambda s: split), max_length=8)
    assert seen == [user_value or "true"] * 3  # train, validation, test
    assert os.environ["TOKENIZERS_PARALLELISM"] == (user_value or "false")  # off again before anything forks
