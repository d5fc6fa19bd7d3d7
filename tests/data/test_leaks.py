"""Columns a model must not learn from: row numbers, identifiers, one-feature leaks, and a
split by time that never trains on the future."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from dnnops.config import SplitConfig
from dnnops.data.leaks import Labeled, identifier_columns, single_feature_leaks
from dnnops.data.split import split_indices
from dnnops.errors import DataError

ROWS = 300


def _frame(seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {
            "carat": rng.gamma(2.0, 0.4, ROWS),
            "rooms": rng.integers(1, 7, ROWS),
            "cut": rng.choice(["Fair", "Good", "Ideal"], ROWS),
        }
    )


@pytest.mark.parametrize(
    ("name", "values", "reason"),
    [
        ("rownames", np.arange(1, ROWS + 1), "named like a row number"),
        ("Unnamed: 0", np.arange(ROWS), "without a name"),
        ("index", np.random.default_rng(1).permutation(ROWS) * 3, "named like a row number"),
        ("n", np.arange(ROWS) * 7 + 11, "in the file's order"),
        ("n", np.arange(ROWS)[::-1], "in the file's order"),
        ("line", np.random.default_rng(2).permutation(ROWS) + 500, "consecutive integers"),
        ("customer_id", np.random.default_rng(3).permutation(ROWS) * 13, "named like an id"),
        ("email", [f"user{i}@example.com" for i in range(ROWS)], "distinct text"),
        (
            "ordered",
            pd.date_range("2024-01-01", periods=ROWS, freq="h").astype(str),
            "data.split.by: ordered",
        ),
    ],
)
def test_row_numbers_and_identifiers_are_found_by_what_they_hold(
    name: str, values: object, reason: str
) -> None:
    frame = _frame()
    frame.insert(0, name, values)
    found = identifier_columns(frame)
    assert [f.column for f in found] == [name]
    assert reason in found[0].reason
    assert identifier_columns(frame, keep=[name]) == []  # data.keep wins


def test_real_features_are_kept_even_when_unique_or_named_like_an_index() -> None:
    frame = _frame()
    rng = np.random.default_rng(4)
    frame["weight"] = rng.normal(70, 10, ROWS)  # distinct measurements on every row
    frame["index"] = rng.integers(0, 50, ROWS)  # a feature named index, with repeats
    frame["shuffled"] = rng.choice(10_000, ROWS, replace=False)  # distinct, unordered, gappy
    frame["sparse"] = np.where(rng.random(ROWS) < 0.5, np.nan, rng.normal(size=ROWS))
    assert identifier_columns(frame) == []
    assert identifier_columns(frame.head(10).assign(n=range(10))) == []  # too few rows


def test_one_feature_that_is_the_target_in_another_form_is_a_leak() -> None:
    rng = np.random.default_rng(5)
    frame = _frame()
    price = 4000 * frame["carat"] + rng.normal(0, 300, ROWS)
    frame["price_eur"] = price * 0.93  # the target converted: a leak
    train, test = frame.iloc[:240], frame.iloc[240:]
    leaks = single_feature_leaks(
        Labeled(train, price.iloc[:240]), Labeled(test, price.iloc[240:]), regression=True
    )
    assert [leak.column for leak in leaks] == ["price_eur"]
    assert leaks[0].metric == "r2" and leaks[0].score > 0.99
    assert "price_eur" in leaks[0].message() and "data.schema.drop" in leaks[0].message()


def test_a_category_that_names_the_label_is_a_leak_on_a_rare_class() -> None:
    rng = np.random.default_rng(6)
    frame = _frame()
    label = pd.Series(np.where(rng.random(ROWS) < 0.05, "default", "ok"))
    frame["collections_status"] = np.where(label == "default", "sent", "none")
    train, test = frame.iloc[:200], frame.iloc[200:]
    leaks = single_feature_leaks(
        Labeled(train, label.iloc[:200]), Labeled(test, label.iloc[200:]), regression=False
    )
    assert [leak.column for leak in leaks] == ["collections_status"]
    assert leaks[0].metric == "balanced_accuracy"


def test_a_split_by_time_trains_on_the_past_and_tests_on_the_future() -> None:
    rng = np.random.default_rng(7)
    days = pd.Series(pd.date_range("2024-01-01", periods=ROWS, freq="D").astype(str))
    shuffled = days.iloc[rng.permutation(ROWS)].reset_index(drop=True)
    split = split_indices(ROWS, SplitConfig(by="day"), times=shuffled)
    when = pd.to_datetime(shuffled)
    assert when.iloc[split.train].max() < when.iloc[split.valid].min()
    assert when.iloc[split.valid].max() < when.iloc[split.test].min()
    assert (len(split.train), len(split.valid), len(split.test)) == (240, 30, 30)
    numbers = pd.Series(rng.permutation(ROWS).astype(float))
    by_number = split_indices(ROWS, SplitConfig(by="t"), times=numbers)
    assert numbers.iloc[by_number.test].min() == 270


def test_a_split_by_time_names_rows_without_a_time() -> None:
    times = pd.Series(["2024-01-01", "not a date", None] + ["2024-02-01"] * 50)
    with pytest.raises(DataError, match=r"2 row\(s\) have no time in 'when'"):
        split_indices(len(times), SplitConfig(by="when"), times=times)


def test_k_folds_test_every_row_once_and_keep_each_class_share() -> None:
    labels = pd.Series(["rare"] * 15 + ["common"] * 285)
    tested: list[int] = []
    for fold in range(5):
        split = split_indices(ROWS, SplitConfig(folds=5, fold=fold), labels)
        parts = [set(split.train), set(split.valid), set(split.test)]
        assert set().union(*parts) == set(range(ROWS)) and sum(map(len, parts)) == ROWS
        assert (labels.iloc[split.test] == "rare").sum() == 3  # stratified: 15 / 5
        tested += list(split.test)
    assert sorted(tested) == list(range(ROWS))
    with pytest.raises(ValueError, match="fold 5 is not one of the 5 folds"):
        SplitConfig(folds=5, fold=5)
