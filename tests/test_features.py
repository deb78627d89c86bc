import numpy as np

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
