import numpy as np
import pytest
import torch

from autoft.errors import TrialFailed
from autoft.features import encode
from autoft.metrics import Objective
from autoft.models import BaseModel, load_tokenizer, resolve
from autoft.strategies import Phase
from autoft.testing import sentiment_rows
from autoft.training import BestWeights, Hyperparams, TrainSettings, class_weight_tensor, predict_proba, train
from autoft_plugins.metrics import METRICS

METRIC_TABLE = {m.name: m for m in METRICS}
ACCURACY = Objective("accuracy", maximize=True)


@pytest.fixture(scope="module")
def setup(tiny_bert):
    ref = resolve(str(tiny_bert), tiny_bert.parent)
    tok = load_tokenizer(ref)
    base = BaseModel(ref, ("neg", "pos"))
    texts, labels = sentiment_rows(300, seed=1)
    y = np.array([0 if lab == "neg" else 1 for lab in labels])
    train_enc = encode(tok, texts[:240], y[:240], 32)
    val_enc = encode(tok, texts[240:], y[240:], 32)
    return base, tok, train_enc, val_enc


class Recorder:
    def __init__(self, prune_at=None):
        self.evals, self.steps, self.reports, self.prune_at = [], [], [], prune_at

    def progress(self, step, total, loss):
        self.steps.append((step, total))

    def evaluated(self, index, epoch, metrics, resource, final):
        self.evals.append((index, epoch, metrics["accuracy"]))
        self.reports.append((resource, final))
        return self.prune_at is not None and index >= self.prune_at


def run(setup, phases_fn=None, hp=None, settings=None, reporter=None, seed=0, dropout=True, objective=ACCURACY):
    base, tok, train_enc, val_enc = setup
    model = base.fresh(seed)
    if not dropout:
        for module in model.modules():
            if isinstance(module, torch.nn.Dropout):
                module.p = 0.0
    hp = hp or Hyperparams(learning_rate=3e-3, epochs=3, batch_size=16)
    names = [n for n, _ in model.named_parameters()]
    phases = phases_fn(names) if phases_fn else [Phase("full", names, hp.learning_rate, hp.epochs)]
    result = train(
        model,
        phases,
        train_enc,
        val_enc,
        hp=hp,
        settings=settings or TrainSettings(rungs=0, early_stopping_patience=0),
        objective=objective,
        metrics=METRIC_TABLE,
        device=torch.device("cpu"),
        pad_id=tok.pad_token_id,
        seed=seed,
        reporter=reporter,
    )
    return model, result


def accuracy(model, setup):
    _, tok, _, val_enc = setup
    proba = predict_proba(
        model, val_enc, batch_size=32, device=torch.device("cpu"), pad_id=tok.pad_token_id, dtype=None
    )
    return float((proba.argmax(1) == val_enc.labels).mean())


def test_a_tiny_model_learns_an_easy_task(setup):
    # five epochs: three learn the task for most seeds, but not every seed and tokenizer (CI saw 0.82)
    rec = Recorder()
    model, result = run(setup, hp=Hyperparams(learning_rate=3e-3, epochs=5, batch_size=16), reporter=rec)
    assert [e[0] for e in rec.evals] == [0, 1, 2, 3, 4]
    assert result.best_metrics["accuracy"] >= 0.9
    assert rec.steps[-1] == (75, 75)  # 240 rows / 16 per batch * 5 epochs
    assert result.samples == 1200 and result.samples_per_second > 0


def test_the_best_evaluation_is_kept_not_the_last(setup):
    """A second phase with an absurd learning rate wrecks the model; training ends with the first phase's weights."""

    def phases(names):
        return [Phase("good", names, 3e-3, 3), Phase("wreck", names, 3.0, 1)]

    model, result = run(setup, phases_fn=phases)
    history = [h["accuracy"] for h in result.history]
    assert history[-1] < max(history)
    assert result.best_index == int(np.argmax(history))
    assert accuracy(model, setup) == pytest.approx(result.best_metrics["accuracy"])


def test_the_best_follows_the_study_direction_not_the_metric(setup):
    """A study that minimises accuracy keeps the evaluation with the lowest accuracy."""
    model, result = run(setup, objective=Objective("accuracy", maximize=False))
    history = [h["accuracy"] for h in result.history]
    assert history[-1] > min(history)  # the model learned: the lowest is not the last
    assert result.best_index == int(np.argmin(history))
    assert result.best_metrics["accuracy"] == min(history)
    assert accuracy(model, setup) == pytest.approx(min(history))


def test_best_weights_keep_the_best_by_the_objective_and_count_since():
    model = torch.nn.Linear(2, 1)
    best = BestWeights(model, {"weight"}, Objective("loss", maximize=False))
    with torch.no_grad():
        model.weight.fill_(1.0)
    assert best.offer(0, 1.0, {"loss": 0.5})
    with torch.no_grad():
        model.weight.fill_(2.0)
        model.bias.fill_(2.0)
    assert not best.offer(1, 2.0, {"loss": 0.7}) and not best.offer(2, 3.0, {"loss": float("nan")})
    assert (best.index, best.epoch, best.scores, best.since_best) == (0, 1.0, {"loss": 0.5}, 2)
    best.restore(model)
    assert model.weight.tolist() == [[1.0, 1.0]] and model.bias.tolist() == [2.0]  # only tracked weights go back
    assert best.offer(3, 4.0, {"loss": 0.1}) and best.since_best == 0


def test_an_unreported_phase_is_kept_in_history_but_not_reported(setup):
    def phases(names):
        return [Phase("warm", names, 3e-3, 1, reported=False), Phase("full", names, 3e-3, 1)]

    rec = Recorder()
    _, result = run(setup, phases_fn=phases, reporter=rec)
    assert [h["index"] for h in result.history] == [0, 1]
    assert [e[0] for e in rec.evals] == [1]
    assert [h["epoch"] for h in result.history] == [1, 2]


def test_the_reporter_can_prune(setup):
    rec = Recorder(prune_at=0)
    _, result = run(setup, reporter=rec)
    assert result.pruned and len(result.history) == 1


def test_early_stopping_after_patience(setup):
    hp = Hyperparams(learning_rate=1e-9, epochs=6, batch_size=16)  # nothing improves after the first evaluation
    _, result = run(setup, hp=hp, settings=TrainSettings(rungs=0, early_stopping_patience=2))
    assert result.stopped_early and len(result.history) == 3


@pytest.mark.parametrize(
    ("every", "steps", "epochs"),
    [
        (5, [5, 10, 15], [0.3333, 0.6667, 1.0]),  # the epoch's end falls on a step evaluation: not evaluated twice
        (4, [4, 8, 12, 15], [0.2667, 0.5333, 0.8, 1]),  # and also at the epoch's end
    ],
)
def test_evaluation_every_n_steps(setup, every, steps, epochs):
    hp = Hyperparams(learning_rate=3e-3, epochs=1, batch_size=16)
    _, result = run(setup, hp=hp, settings=TrainSettings(rungs=0, eval_every=every, early_stopping_patience=0))
    assert [h["step"] for h in result.history] == steps
    assert [h["epoch"] for h in result.history] == epochs


def test_gradient_accumulation_gives_the_same_training(setup):
    hp = Hyperparams(learning_rate=3e-3, epochs=1, batch_size=16)
    one, _ = run(setup, hp=hp, settings=TrainSettings(rungs=0, early_stopping_patience=0), dropout=False)
    two, _ = run(
        setup, hp=hp, settings=TrainSettings(rungs=0, early_stopping_patience=0, gradient_accumulation=4), dropout=False
    )
    for (n, a), (_, b) in zip(one.named_parameters(), two.named_parameters()):
        torch.testing.assert_close(a, b, atol=2e-4, rtol=1e-3, msg=n)


def test_a_diverging_loss_fails_the_trial(setup):
    hp = Hyperparams(learning_rate=0.5, epochs=1, batch_size=16)
    base, tok, train_enc, val_enc = setup
    model = base.fresh(0)
    with torch.no_grad():
        model.classifier.weight.fill_(float("nan"))
    names = [n for n, _ in model.named_parameters()]
    with pytest.raises(TrialFailed, match="training loss became nan"):
        train(
            model,
            [Phase("x", names, 0.5, 1)],
            train_enc,
            val_enc,
            hp=hp,
            settings=TrainSettings(rungs=0),
            objective=ACCURACY,
            metrics=METRIC_TABLE,
            device=torch.device("cpu"),
            pad_id=tok.pad_token_id,
            seed=0,
        )


def test_training_is_reproducible_with_a_seed(setup):
    _, a = run(setup, seed=5)
    _, b = run(setup, seed=5)
    assert [h["accuracy"] for h in a.history] == [h["accuracy"] for h in b.history]


def test_balanced_class_weights():
    labels = np.array([0] * 30 + [1] * 10)
    weights = class_weight_tensor("balanced", labels, ("a", "b"))
    assert weights.tolist() == pytest.approx([40 / 60, 40 / 20])
    assert class_weight_tensor("none", labels, ("a", "b")) is None
    assert class_weight_tensor({"b": 3.0}, labels, ("a", "b")).tolist() == [1.0, 3.0]


@pytest.mark.parametrize("arch", ["bert", "distilbert", "roberta"])
def test_a_classifier_of_other_labels_starts_a_study_with_a_new_head(arch, tmp_path, request):
    """A fine-tuned model as the start (users reuse sentiment models): its body is kept, its head of five labels
    makes way for the study's two, initialised per trial like a fresh model's head."""
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    folder = request.getfixturevalue(f"tiny_{arch}")
    other = AutoModelForSequenceClassification.from_pretrained(folder, num_labels=5)
    other.save_pretrained(tmp_path / "five")
    AutoTokenizer.from_pretrained(folder).save_pretrained(tmp_path / "five")
    base = BaseModel(resolve(str(tmp_path / "five"), tmp_path), ("neg", "pos"))
    assert base.model.config.num_labels == 2 and base.new_parameters  # the head, and only the head
    body = {n: p for n, p in other.named_parameters() if n not in base.new_parameters}
    kept = dict(base.model.named_parameters())
    assert body and all(torch.equal(p, kept[n]) for n, p in body.items())
    weight = next(n for n in base.new_parameters if n.endswith("weight"))
    assert not torch.equal(*(base.fresh(seed).state_dict()[weight] for seed in (1, 2)))  # drawn per trial


@pytest.mark.parametrize("task", ["classification", "multi_label", "regression"])
def test_scores_that_are_ill_defined_on_a_split_are_computed_without_warnings(task):
    """A validation split of one class (or constant targets) makes some scores ill-defined; scikit-learn and
    SciPy warned about it on stderr, into the study's display, at every evaluation."""
    import warnings

    from autoft.metrics import compute

    metrics = {m.name: m for m in METRICS}
    if task == "classification":
        y, proba = np.zeros(6, dtype=np.int64), np.tile([0.9, 0.1], (6, 1))
    elif task == "multi_label":
        y, proba = np.zeros((6, 3), dtype=np.float32), np.full((6, 3), 0.1)
    else:
        y, proba = np.ones(6, dtype=np.float32), np.ones((6, 1), dtype=np.float32)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        scores = compute(metrics, y, proba)
    assert scores and not [str(w.message) for w in caught]
    assert all(isinstance(v, float) for v in scores.values())
