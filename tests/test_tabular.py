"""The tabular dataset: labels cut from a value or its group's aggregate, missing fields, generated records."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from autoft import LoadContext
from autoft.config import load_study
from autoft.errors import DataError
from autoft.options import build
from autoft_plugins.datasets.tabular import Tabular, TabularOptions
from autoft_plugins.gov_records import PROGRAMS, STATES, generate_records

ROOT = Path(__file__).resolve().parent.parent
PROGRAMS_FRAME = pd.DataFrame(
    {
        "state": ["Ohio", "Ohio", "Iowa", "Iowa", "Iowa", "Utah"],
        "program": ["WIC", "SNAP", "WIC", "SNAP", "LIHEAP", "WIC"],
        "count": [3000, 1500, 1000, 2500, 1600, 7000],
    }
)


def load(tmp_path, frame=PROGRAMS_FRAME, name="records.csv", **options):
    """Write ``frame`` and load it through the plugin, options checked as a study's would be."""
    path = tmp_path / name
    frame.to_parquet(path) if name.endswith(".parquet") else frame.to_csv(path, index=False)
    table = {"path": name, "value_column": "count", "text_template": "{state}: {program} served {count}", **options}
    raw = Tabular().load(build(TabularOptions, table, "[dataset]"), LoadContext(tmp_path))
    return raw


def test_a_threshold_cuts_each_rows_own_value(tmp_path):
    raw = load(tmp_path, threshold=2500)
    train = raw.splits["train"]
    assert train.labels == [1, 0, 0, 1, 0, 1]  # 2500 is at the threshold: the upper class
    assert raw.label_names == ["below 2500", "2500 or more"]
    assert train.texts[0] == "Ohio: WIC served 3000"


def test_group_by_labels_each_row_by_its_groups_total_and_keeps_its_text(tmp_path):
    raw = load(tmp_path, threshold=5000, group_by=["state"], label_names=["low", "high"])
    train = raw.splits["train"]
    # Ohio 4500 (low), Iowa 5100 (high), Utah 7000 (high): Ohio's 3000 row is low, Iowa's 1000 row high
    assert train.labels == [0, 0, 1, 1, 1, 1]
    assert train.texts[:3] == ["Ohio: WIC served 3000", "Ohio: SNAP served 1500", "Iowa: WIC served 1000"]
    assert raw.label_names == ["low", "high"]
    assert any(
        "the sum of 'count' per state (3 groups), cut at 5000: low (2 rows), high (4 rows)" in n for n in raw.notes
    )


@pytest.mark.parametrize(
    "aggregate, threshold, labels",
    [
        ("mean", 2000, [1, 1, 0, 0, 0, 1]),  # Ohio 2250, Iowa 1700, Utah 7000
        ("max", 3000, [1, 1, 0, 0, 0, 1]),  # Ohio 3000, Iowa 2500
        ("min", 1500, [1, 1, 0, 0, 0, 1]),  # Ohio 1500, Iowa 1000
        ("count", 2, [1, 1, 1, 1, 1, 0]),  # Ohio 2 rows, Iowa 3, Utah 1
    ],
)
def test_other_aggregates(tmp_path, aggregate, threshold, labels):
    raw = load(tmp_path, threshold=threshold, group_by="state", aggregate=aggregate)
    assert raw.splits["train"].labels == labels


def test_thresholds_make_three_classes_named_after_the_cut_points(tmp_path):
    frame = pd.DataFrame({"state": list("abcdefg"), "program": "x", "count": [5, 10, 12.5, 19.9, 20, 25, 1e6]})
    raw = load(tmp_path, frame, thresholds=[10, 20])
    assert raw.splits["train"].labels == [0, 1, 1, 1, 2, 2, 2]
    assert raw.label_names == ["below 10", "10 to 20", "20 or more"]
    named = load(tmp_path, frame, thresholds=[10, 20.5], label_names=["small", "medium", "large"])
    assert named.splits["train"].labels == [0, 1, 1, 1, 1, 2, 2] and named.label_names[2] == "large"


@pytest.mark.parametrize(
    "options, message",
    [
        ({"thresholds": [20, 10]}, r"thresholds: \[20.0, 10.0\] must be strictly ascending"),
        ({"threshold": 5, "thresholds": [1, 2]}, "give threshold .* or thresholds .*, not both"),
        ({}, "needs threshold = <number> .* or thresholds"),
        ({"threshold": 5, "label_names": ["a", "b", "c"]}, "label_names: 3 names for 2 classes"),
        ({"threshold": 5, "aggregate": "mean"}, "aggregate = 'mean' needs group_by"),
    ],
)
def test_label_settings_are_checked(tmp_path, options, message):
    with pytest.raises(DataError, match=message):
        load(tmp_path, **options)


@pytest.mark.parametrize(
    "options, message",
    [
        ({"generate": 50}, "give one of path, train .* or generate, not path and generate"),
        ({"test": "records.csv"}, "test goes with train = <file>; path is one table, carved into splits"),
        ({"path": "nowhere.csv"}, "path: '.*nowhere.csv' does not exist"),
        ({"path": ""}, "needs path .*, train .* or generate = N"),
        ({"generate_missing": 0.1}, "generate_seed and generate_missing go with generate = <rows>"),
    ],
)
def test_where_the_rows_come_from_is_checked(tmp_path, options, message):
    with pytest.raises(DataError, match=message):
        load(tmp_path, threshold=1, **options)


def test_missing_columns_name_the_option_and_list_the_columns_present(tmp_path):
    present = "columns present: state, program, count"
    with pytest.raises(DataError, match=f"no column 'people' \\(value_column\\); {present}"):
        load(tmp_path, threshold=1, value_column="people")
    with pytest.raises(DataError, match=f"no column 'region' \\(group_by\\); {present}"):
        load(tmp_path, threshold=1, group_by=["region"])
    with pytest.raises(DataError, match=f"no column 'agency' \\(text_template\\); {present}"):
        load(tmp_path, threshold=1, text_template="{agency} served {count}")
    with pytest.raises(DataError, match=f"needs text_template .* or text_columns; {present}"):
        load(tmp_path, threshold=1, text_template="")
    with pytest.raises(DataError, match="value_column 'state' has no numeric values; numeric columns: count"):
        load(tmp_path, threshold=1, value_column="state")


GAPS = pd.DataFrame(
    {
        "state": ["Ohio", "Ohio", "Ohio", "Iowa", "Iowa", None, "Iowa"],
        "county": ["Franklin", "", "Summit", "Polk", None, "Linn", "Scott"],
        "count": ["3,000", "2,500", "(D)", "$1,000", "4500", "800", ""],
    }
)
TEMPLATE = "{county} County, {state}: {count}"


def test_missing_drop_drops_rows_and_reports_the_counts(tmp_path):
    raw = load(tmp_path, GAPS, threshold=5000, group_by="state", text_template=TEMPLATE)
    train = raw.splits["train"]
    # '(D)' and '' are no numbers; the row without a state joins no group; rows without a county are
    # dropped but still count in their state's total: Ohio 3000 + 2500 = 5500, Iowa 1000 + 4500 = 5500
    assert train.texts == ["Franklin County, Ohio: 3,000", "Polk County, Iowa: $1,000"]
    assert train.labels == [1, 1]
    assert "dropped 2 rows whose count is missing or not a number" in raw.notes
    assert "dropped 3 rows with missing fields (state 1, county 2)" in raw.notes


def test_missing_fill_fills_text_and_group_fields_but_drops_rows_without_a_value(tmp_path):
    raw = load(tmp_path, GAPS, threshold=5000, group_by="state", text_template=TEMPLATE, missing="fill", fill_value="?")
    train = raw.splits["train"]
    assert train.texts == [
        "Franklin County, Ohio: 3,000",
        "? County, Ohio: 2,500",
        "Polk County, Iowa: $1,000",
        "? County, Iowa: 4500",
        "Linn County, ?: 800",
    ]
    assert train.labels == [1, 1, 1, 1, 0]  # the filled state '?' is a group of its own: 800
    assert "dropped 2 rows whose count is missing or not a number" in raw.notes
    assert "filled 3 missing fields in 3 rows with '?' (state 1, county 2)" in raw.notes


def test_missing_error_names_the_column_and_rows(tmp_path):
    with pytest.raises(
        DataError, match=r"value_column 'count' has 2 missing or non-numeric values \(rows 2, 6; such as"
    ):
        load(tmp_path, GAPS, threshold=1, text_template=TEMPLATE, missing="error")
    clean = GAPS.assign(count=[1, 2, 3, 4, 5, 6, 7])
    with pytest.raises(DataError, match=r"column 'county' has 2 missing values \(rows 1, 4\); set missing = 'drop'"):
        load(tmp_path, clean, threshold=1, text_template=TEMPLATE, missing="error")


def test_whole_numbers_in_a_column_with_gaps_print_without_decimals(tmp_path):
    frame = pd.DataFrame({"state": ["a", "b", "c"], "program": "x", "count": [1200.0, None, 7.0]})
    raw = load(tmp_path, frame, threshold=10, text_template="{state} {count:,}")
    assert raw.splits["train"].texts == ["a 1,200", "c 7"]


def test_split_files_share_group_totals(tmp_path):
    train, test = PROGRAMS_FRAME.iloc[:4], PROGRAMS_FRAME.iloc[4:]
    train.to_parquet(tmp_path / "train.parquet")
    test.to_csv(tmp_path / "test.csv", index=False)
    options = {"train": "train.parquet", "test": "test.csv", "value_column": "count", "threshold": 5000}
    options |= {"group_by": ["state"], "text_columns": ["state", "program"]}
    raw = Tabular().load(build(TabularOptions, options, "[dataset]"), LoadContext(tmp_path))
    assert set(raw.splits) == {"train", "test"}
    # Iowa's total (5100) spans both files: its train rows are labelled from the test row too
    assert raw.splits["train"].labels == [0, 0, 1, 1]
    assert raw.splits["test"].labels == [1, 1] and raw.splits["test"].texts == ["Iowa LIHEAP", "Utah WIC"]


def test_generated_records_are_seeded_and_look_like_published_tables():
    one, two, other = generate_records(300, seed=4), generate_records(300, seed=4), generate_records(300, seed=5)
    pd.testing.assert_frame_equal(one, two)
    assert not one.equals(other)
    assert list(one.columns) == [
        "record_id",
        "state",
        "state_code",
        "county",
        "year",
        "program",
        "agency",
        "count",
        "funding",
    ]
    assert one["record_id"].is_unique
    assert not one.duplicated(["state", "county", "year", "program"]).any()
    assert set(one["state"]) <= set(STATES) and one["state"].nunique() > 15
    assert all(STATES[s][0] == c for s, c in zip(one["state"], one["state_code"]))
    assert all(PROGRAMS[p][0] == a for p, a in zip(one["program"], one["agency"]))
    assert one["year"].between(2015, 2024).all() and (one["count"] > 0).all()
    assert (one["funding"] > one["count"]).all()
    big = one[one["state"] == "California"]["count"].median()
    small = one[one["state"] == "Wyoming"]["count"].median()
    assert big > 10 * small  # counts follow population
    gaps = generate_records(300, seed=4, missing_share=0.1)
    assert gaps["county"].isna().sum() == 30 and gaps["count"].isna().sum() == 30


def test_the_study_labels_are_balanced_and_not_readable_from_a_rows_own_count():
    config, _ = load_study(ROOT / "studies" / "tabular.toml")
    raw = Tabular().load(config.dataset_options, LoadContext(config.base_dir))
    labels = np.array(raw.splits["train"].labels)
    assert 0.3 < labels.mean() < 0.7
    # each text ends "... served 12,345 people": the best cut of that count still misses many labels
    own = np.array([int(t.rsplit(" served ", 1)[1].split()[0].replace(",", "")) for t in raw.splits["train"].texts])
    best_rule = max(np.mean((own >= t) == labels) for t in np.unique(own))
    assert 0.6 < best_rule < 0.9


def test_a_study_on_generated_records_runs_end_to_end(study_file, cli, tmp_path):
    dataset = {
        "type": "tabular",
        "generate": 160,
        "generate_missing": 0.05,
        "value_column": "count",
        "group_by": ["state", "year"],
        "threshold": 5000,
        "text_template": "{state} {year}: {program} in {county} County served {count:,} people",
    }
    path = study_file(dataset=dataset, space={"epochs": 1})
    result = cli("study", "run", path, "--n-trials", "1", "--no-progress")
    assert result.code == 0, result.err
    assert "dropped 8 rows whose count is missing or not a number" in result.out
    assert "labels from the sum of 'count' per state and year" in result.out
    metrics = json.loads((tmp_path / "runs" / "tiny" / "best" / "metrics.json").read_text())
    assert metrics["label_names"] == ["below 5000", "5000 or more"]
    assert metrics["test_rows"] > 0
