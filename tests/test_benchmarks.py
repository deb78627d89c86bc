"""The benchmark harness runs end to end with --smoke (speed is measured there, never asserted here); the search
presets and --seeds run with both searches faked, in seconds."""

import json
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from autoft.testing import sentiment_rows

ROOT = Path(__file__).resolve().parents[1]


def write_imdb_like(folder: Path) -> Path:
    """train.parquet and test.parquet with IMDb's columns (text, label 0/1), generated on the spot."""
    folder.mkdir()
    for split, rows, seed in (("train", 200, 0), ("test", 100, 1)):
        texts, labels = sentiment_rows(rows, seed)
        frame = pd.DataFrame({"text": texts, "label": [int(label == "pos") for label in labels]})
        frame.to_parquet(folder / f"{split}.parquet")
    return folder


@pytest.mark.slow  # both sides of the benchmark end to end: `nox -s slow`
def test_smoke_run_reports_both_sides_and_their_ratios(tmp_path):
    data = write_imdb_like(tmp_path / "imdb")
    out = tmp_path / "results.json"
    cmd = [sys.executable, "-m", "benchmarks", "--smoke", "--data", str(data), "--out", str(out)]
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr[-4000:]

    results = json.loads(out.read_text())
    figures = {"throughput": ("samples_per_s", "epoch_s"), "search": ("wall_s", "best_validation")}
    for section, keys in figures.items():
        part = results[section]
        for key in keys:
            trainer, autoft = part["trainer"][key], part["autoft"][key]
            assert trainer > 0 and autoft > 0, (section, key)
            assert part["ratios"][key] == pytest.approx(autoft / trainer), (section, key)
    (run,) = results["search"]["runs"]  # one seed: the search figures are that seed's
    assert run["seed"] == 0 and run["order"] == ["trainer", "autoft"]
    for side in ("trainer", "autoft"):
        (trial,) = run[side]["trials"]
        assert 0 < trial["ended_s"] <= run[side]["wall_s"] + 1, side  # each trial's end, since its launch
        assert results["search"][side]["wall_s"] == run[side]["wall_s"]
    assert results["search"]["autoft"]["setup_s_per_trial"] is not None
    assert results["summary"]["wall_ratio"] == pytest.approx(results["search"]["ratios"]["wall_s"])
    assert Path(results["summary"]["plot"]) == out.with_suffix(".png") and out.with_suffix(".png").is_file()
    assert results["environment"]["torch"] and results["environment"]["transformers"]
    assert results["environment"]["device_name"] and results["date"]
    assert "autoft/Trainer" in proc.stdout and "training throughput" in proc.stdout


def write_phrasebank_like(path: Path, rows: int = 150) -> Path:
    """One table like Financial PhraseBank (text, label 0/1/2, no split), with 3 texts repeated."""
    texts, labels = sentiment_rows(rows, 0, ("neg", "neu", "pos"))
    ids = {"neg": 0, "neu": 1, "pos": 2}
    frame = pd.DataFrame({"text": texts + texts[:3], "label": [ids[label] for label in labels + labels[:3]]})
    frame.to_parquet(path)
    return path


def test_stratified_split_keeps_label_shares_and_no_text_in_two_splits(tmp_path):
    from benchmarks.common import stratified_split

    table = pd.read_parquet(write_phrasebank_like(tmp_path / "allagree.parquet"))
    splits, repeated = stratified_split(table, (0.70, 0.15), seed=0)
    assert repeated == 3
    assert {name: len(frame) for name, frame in splits.items()} == {"train": 105, "validation": 24, "test": 21}
    for frame in splits.values():
        assert sorted(frame.label.unique()) == [0, 1, 2]
    texts = [set(frame.text) for frame in splits.values()]
    assert not (texts[0] & texts[1] or texts[0] & texts[2] or texts[1] & texts[2])
    again, _ = stratified_split(table, (0.70, 0.15), seed=0)
    assert again["validation"].text.tolist() == splits["validation"].text.tolist()


def fake_side(name: str, seed: int) -> dict:
    """What a side's search returns, made up: a complete, a pruned (better, left out) and a better complete trial."""
    trials = [
        {"trial": 0, "state": "complete", "value": 0.5, "ended_s": 4.0 + seed},
        {"trial": 1, "state": "pruned", "value": 0.9, "ended_s": 5.0 + seed},
        {"trial": 2, "state": "complete", "value": 0.6 + 0.1 * seed, "ended_s": 7.0 + seed},
    ]
    wall = {"trainer": 10.0, "autoft": 5.0}[name] + seed
    return {"wall_s": wall, "best_validation": trials[2]["value"], "trials": trials, "test": {"accuracy": 0.5}}


@pytest.mark.parametrize("preset", ["finpb-cpu", "imdb-cpu"])
def test_preset_searches_each_seed_and_summarises(tmp_path, monkeypatch, capsys, preset):
    """--preset with --smoke --seeds 2, the two searches replaced by fakes that check what they are given."""
    import optuna

    from autoft.config import load_study
    from autoft.testing import write_study
    from benchmarks import compare, search
    from benchmarks.hf_search import hp_space

    if preset == "finpb-cpu":
        data = write_phrasebank_like(tmp_path / "allagree.parquet")
    else:
        data = write_imdb_like(tmp_path / "imdb")
    calls = []

    def trainer(workdir, files, s):
        calls.append(("trainer", s.seed, files))
        params = hp_space(optuna.create_study(sampler=optuna.samplers.TPESampler(seed=s.seed)).ask(), s.space)
        assert 1 <= params["num_train_epochs"] <= 4 and params["per_device_train_batch_size"] in (16, 32)
        return fake_side("trainer", s.seed)

    def autoft(workdir, files, s):
        calls.append(("autoft", s.seed, files))
        tables = search.study_tables(files, workdir / "runs", s)
        assert set(tables["search"]) == {"n_trials", "objective"}  # autoft's own sampler, pruner, schedule
        config, _ = load_study(write_study(workdir / "bench.toml", tables))
        assert (config.study.seed, config.search.n_trials, config.train.device) == (s.seed, 2, "cpu")
        assert config.space["epochs"].high == 4 and config.space["weight_decay"] == 0.0
        return fake_side("autoft", s.seed)

    monkeypatch.setattr(search, "trainer_search", trainer)
    monkeypatch.setattr(search, "autoft_search", autoft)
    out = tmp_path / "out" / "results.json"
    argv = ["--preset", preset, "--smoke", "--seeds", "2", "--trials", "2", "--data", str(data), "--out", str(out)]
    assert compare.main([*argv, "--workdir", str(tmp_path / "work")]) == 0

    # each seed: both sides, the first one alternating, on the same files
    assert [(side, seed) for side, seed, _ in calls] == [("trainer", 0), ("autoft", 0), ("autoft", 1), ("trainer", 1)]
    assert all(files == calls[0][2] for *_, files in calls)
    splits = {name: pd.read_parquet(path) for name, path in calls[0][2].items()}
    assert {name: len(frame) for name, frame in splits.items()} == {"train": 32, "validation": 16, "test": 16}
    assert not set(splits["train"].text) & set(splits["validation"].text)

    results = json.loads(out.read_text())
    summary = results["summary"]
    assert summary["seeds"] == [0, 1] and summary["preset"] == preset
    assert [row["first"] for row in summary["per_seed"]] == ["trainer", "autoft"]
    assert [row["wall_ratio"] for row in summary["per_seed"]] == pytest.approx([5 / 10, 6 / 11])
    assert summary["wall_ratio"] == pytest.approx((5 / 10 + 6 / 11) / 2)
    assert summary["best_validation_delta"] == pytest.approx(0.0)
    assert summary["median"]["trainer"] == pytest.approx({"wall_s": 10.5, "best_validation": 0.65})
    assert summary["machine"]["cores"] and summary["machine"]["name"] and summary["date"]
    assert all(summary["versions"][k] for k in ("torch", "transformers", "optuna"))
    assert results["search"]["autoft"]["wall_s"] == pytest.approx(5.5)  # the table's figures: medians over seeds
    plot = out.with_suffix(".png")
    assert summary["plot"] == str(plot) and plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "median over 2 seed(s): wall ratio" in capsys.readouterr().out


def test_best_so_far_counts_complete_trials_only():
    from benchmarks.plot import best_so_far

    assert best_so_far(fake_side("autoft", 0)["trials"]) == ([4.0, 7.0], [0.5, 0.6])


def test_a_preset_is_a_search(tmp_path, capsys):
    from benchmarks import compare

    assert compare.main(["--preset", "imdb-cpu", "--mode", "throughput", "--out", str(tmp_path / "r.json")]) == 2
    assert "search benchmark" in capsys.readouterr().err


def test_lanes_run_the_autoft_side_once_per_lane_count(tmp_path, monkeypatch):
    """python -m benchmarks.lanes: each value goes into the study file (on the CPU as cpu_trials), with the other
    autoft settings the flags give (--isolation, --search-seed); samples/s adds up every trial's rows."""
    from autoft.config import load_study
    from autoft.testing import write_study
    from benchmarks import lanes, search

    data = write_imdb_like(tmp_path / "imdb")
    seen, seeds = [], []

    def autoft(workdir, files, s):
        config, _ = load_study(write_study(workdir / "bench.toml", search.study_tables(files, workdir / "runs", s)))
        seen.append((config.search.cpu_trials, config.train.device, config.model.max_length, config.search.isolation))
        seeds.append(config.study.seed)
        trials = [  # two trials side by side from 1 s to 3 s: 100 rows each
            {"state": "complete", "samples_per_s": 50.0, "train_s": 2.0, "duration_s": 2.0, "ended_s": 3.0},
            {"state": "pruned", "samples_per_s": 100.0, "train_s": 1.0, "duration_s": 1.5, "ended_s": 2.5},
        ]
        return {"wall_s": 9.0, "best_validation": 0.8, "trials": trials, "startup_s": 1.0, "after_last_trial_s": 1.0}

    monkeypatch.setattr(search, "autoft_search", autoft)
    out = tmp_path / "lanes.json"
    argv = ["--smoke", "--device", "cpu", "--lanes", "1,4", "--isolation", "none", "--data", str(data)]
    argv += ["--search-seed", "3", "--out", str(out)]
    assert lanes.main(argv) == 0
    assert seen == [(1, "cpu", 32, "none"), (4, "cpu", 32, "none")]  # imdb-gpu's data handling, --smoke's sizes
    assert seeds == [3, 3]  # the search seed, on --seed's (0) data split
    rows = json.loads(out.read_text())["lanes"]
    assert [r["cpu_trials"] for r in rows] == [1, 4]
    assert rows[0]["aggregate_samples_per_s"] == pytest.approx(200 / 2.0)
    assert rows[0]["states"] == {"complete": 1, "pruned": 1, "fail": 0}


@pytest.mark.parametrize("program", ["compare", "lanes"])
def test_a_workdir_holding_an_earlier_study_is_refused_before_any_search(tmp_path, monkeypatch, capsys, program):
    """autoft would resume the earlier study and the benchmark would time a search that never ran."""
    from benchmarks import compare, lanes, search

    data = write_imdb_like(tmp_path / "imdb")
    workdir = tmp_path / "work"
    earlier = workdir / "seed-0" / "runs" / "bench" / "study.db"
    earlier.parent.mkdir(parents=True)
    earlier.write_bytes(b"")
    ran = []
    monkeypatch.setattr(search, "run", lambda *a, **k: ran.append(a))
    monkeypatch.setattr(search, "autoft_search", lambda *a, **k: ran.append(a))
    main = {"compare": compare.main, "lanes": lanes.main}[program]
    argv = ["--preset", "imdb-gpu", "--smoke", "--device", "cpu", "--data", str(data), "--workdir", str(workdir)]
    assert main([*argv, "--out", str(tmp_path / "r.json")]) == 2
    err = capsys.readouterr().err
    assert "--workdir" in err and "seed-0/runs/bench/study.db" in err
    assert ran == [] and not (tmp_path / "r.json").exists()
    earlier.unlink()  # the same folder without the study: accepted
    assert compare.check_workdir(workdir) is None


def test_carried_data_gives_the_same_subsets_in_a_fraction_of_the_text(tmp_path):
    """python -m benchmarks.carry empties the texts no seed draws; every seed's subsets stay the same."""
    from benchmarks.carry import pack_data
    from benchmarks.common import held_out_rows, load_subsets

    source = write_imdb_like(tmp_path / "imdb")
    packed = tmp_path / "packed"
    pack_data(source, packed, [0, 1], {"train": 50, "test": 20})
    for seed in (0, 1):
        ours, theirs = load_subsets(packed, 30, 20, seed), load_subsets(source, 30, 20, seed)
        pd.testing.assert_frame_equal(ours.train, theirs.train)
        pd.testing.assert_frame_equal(ours.validation, theirs.validation)
        pd.testing.assert_frame_equal(held_out_rows(packed, 20, seed), held_out_rows(source, 20, seed))
    train = pd.read_parquet(packed / "train.parquet")
    assert len(train) == 200 and 50 <= (train.text != "").sum() < 100
    for draw in (lambda: load_subsets(packed, 30, 20, 2), lambda: load_subsets(packed, 150, 20, 0)):
        with pytest.raises(SystemExit, match=r"empty text .*benchmarks\.carry"):  # a seed or size it was not made for
            draw()
    with pytest.raises(SystemExit, match="empty text"):
        held_out_rows(packed, 20, 2)
