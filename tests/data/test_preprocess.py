from __future__ import annotations

import numpy as np
import pandas as pd
from hypothesis import example, given, settings
from hypothesis import strategies as st

from dnnops.config import PreprocessingConfig
from dnnops.data.dataset import Dataset
from dnnops.data.preprocess import apply_preprocessing, fit_preprocessor, typical_row
from dnnops.data.schema import infer_schema
from tests.data.conftest import people_frame


def _fitted(numeric: str = "standardize"):  # type: ignore[no-untyped-def]
    frame = people_frame()
    dataset = Dataset(frame.drop(columns=["label"]), frame["label"], None, "t")
    schema = infer_schema(dataset, target_name="label")
    return frame, schema, fit_preprocessor(dataset, schema, PreprocessingConfig(numeric=numeric))


def test_the_json_round_trip_gives_the_same_transform() -> None:
    frame, _, pre = _fitted()
    restored = type(pre).model_validate_json(pre.model_dump_json())
    features = frame.drop(columns=["label"])
    assert np.array_equal(
        apply_preprocessing(pre, features), apply_preprocessing(restored, features)
    )


def test_unseen_category_and_missing_values_are_safe() -> None:
    frame, _, pre = _fitted()
    row = frame.drop(columns=["label"]).head(1).copy()
    row["city"] = "Atlantis"
    row["score"] = np.nan
    out = apply_preprocessing(pre, row)
    assert np.isfinite(out).all()
    city_block = out[0, 2:5]  # age, height, then the three city columns
    assert city_block.tolist() == [0.0, 0.0, 0.0]


def test_scale_mode_keeps_pixels_comparable() -> None:
    pixels = pd.DataFrame({"a": [0.0, 8.0, 16.0], "b": [0.0, 4.0, 2.0]})
    dataset = Dataset(pixels, pd.Series([0, 1, 0]), None, "t")
    schema = infer_schema(dataset)
    pre = fit_preprocessor(dataset, schema, PreprocessingConfig(numeric="scale"))
    assert apply_preprocessing(pre, pixels).tolist() == [[0.0, 0.0], [0.5, 0.25], [1.0, 0.125]]


@settings(max_examples=40, deadline=None)
@given(st.lists(st.floats(-1e6, 1e6, allow_nan=False), min_size=2, max_size=50))
def test_standardized_training_columns_have_zero_mean(values: list[float]) -> None:
    frame = pd.DataFrame({"v": values})
    dataset = Dataset(frame, pd.Series([i % 2 for i in range(len(values))]), None, "t")
    pre = fit_preprocessor(dataset, infer_schema(dataset), PreprocessingConfig())
    out = apply_preprocessing(pre, frame)
    assert np.isfinite(out).all()
    assert abs(float(out.astype("float64").mean())) < 1e-3 * max(1.0, float(np.abs(out).max()))


@given(st.lists(st.floats(-1e6, 1e6, allow_nan=False), min_size=1, max_size=300))
@example([547312.0, -821665.0, -821665.0, -821665.0, -821665.0, -821665.0])
def test_profiles_match_numpy_percentiles_and_a_direct_count(
    values: list[float],
) -> None:
    from dnnops.data.profile import PERCENTILES, numeric_profile

    x = np.asarray(values, dtype="float64")
    profile = numeric_profile("x", x)
    assert profile.percentiles is not None and profile.bin_edges is not None
    # interpolating between two values of size M rounds at a few ulp of M, whatever the
    # result's own size (-278.8 between -821665 and 547312 is off by 1.3e-9)
    scale = float(np.abs(x).max())
    expected = np.percentile(x, PERCENTILES)
    assert np.allclose(profile.percentiles, expected, rtol=1e-12, atol=1e-9 + 1e-14 * scale)
    direct = np.bincount(
        np.searchsorted(profile.bin_edges, x, side="right"), minlength=len(profile.bin_edges) + 1
    )
    assert profile.bin_counts == direct.tolist()


def test_an_identifier_like_category_is_hashed_not_one_hot_encoded() -> None:
    rng = np.random.default_rng(0)
    zips = [f"{z:05d}" for z in rng.integers(10_000, 99_999, 800)]
    frame = pd.DataFrame({"zip": zips, "amount": rng.normal(size=800)})
    frame.loc[::50, "zip"] = None
    dataset = Dataset(frame, pd.Series(rng.integers(0, 2, 800)), None, "t")
    schema = infer_schema(dataset)
    pre = fit_preprocessor(dataset, schema, PreprocessingConfig(hash_buckets=32))
    assert pre.input_shape == [33]  # 32 buckets and one number, not ~800 one-hot inputs
    many = apply_preprocessing(pre, frame)
    assert (many[:, :32].sum(axis=1) == np.where(frame["zip"].isna(), 0, 1)).all()
    for row in (1, 2, 3):  # one request's rows land where the batch's did
        alone = apply_preprocessing(pre, frame.iloc[[row]])
        assert np.array_equal(alone[0], many[row])
    unseen = apply_preprocessing(pre, pd.DataFrame({"zip": ["00000"], "amount": [0.0]}))
    assert unseen[0, :32].sum() == 1  # an unseen value still has a bucket
    restored = type(pre).model_validate_json(pre.model_dump_json())
    assert np.array_equal(apply_preprocessing(restored, frame), many)
    few = fit_preprocessor(dataset, schema, PreprocessingConfig(one_hot_max=1000))
    assert few.input_shape[0] > 700  # below the limit: one-hot as before


def test_numbers_with_bins_add_a_piecewise_linear_encoding_fitted_on_training_values() -> None:
    rng = np.random.default_rng(1)
    hours = rng.integers(0, 24, 1000).astype("float64")
    hours[::40] = np.nan
    frame = pd.DataFrame({"hour": hours, "holiday": rng.integers(0, 2, 1000).astype("float64")})
    dataset = Dataset(frame, pd.Series(rng.integers(0, 2, 1000)), None, "t")
    schema = infer_schema(dataset)
    pre = fit_preprocessor(dataset, schema, PreprocessingConfig(numeric_bins=4))
    [hour, holiday] = pre.columns
    assert holiday.bins is None  # two values: nothing to bend
    assert hour.bins is not None and len(hour.bins) == 5
    assert pre.input_shape == [1 + 4 + 1]
    encoded = apply_preprocessing(pre, frame)
    bins = encoded[:, 1:5]
    assert ((bins >= 0) & (bins <= 1)).all()
    order = np.argsort(np.nan_to_num(hours, nan=hour.fill), kind="stable")
    assert (np.diff(bins[order].sum(axis=1)) >= -1e-6).all()  # monotone in the hour
    assert np.array_equal(bins[hours == 0].max(axis=0), np.zeros(4))
    assert np.array_equal(bins[hours == 23].min(axis=0), np.ones(4))
    gap = apply_preprocessing(pre, pd.DataFrame({"hour": [np.nan], "holiday": [0.0]}))
    filled = apply_preprocessing(pre, pd.DataFrame({"hour": [hour.fill], "holiday": [0.0]}))
    assert np.array_equal(gap, filled)  # a missing number is the training mean, binned too
    means = pd.DataFrame({"hour": [hour.fill], "holiday": [holiday.fill]})
    assert np.array_equal(typical_row(pre), apply_preprocessing(pre, means)[0])
    restored = type(pre).model_validate_json(pre.model_dump_json())
    assert np.array_equal(apply_preprocessing(restored, frame), encoded)
    for row in (0, 1, 2):  # one request's rows land where the batch's did
        assert np.array_equal(apply_preprocessing(pre, frame.iloc[[row]])[0], encoded[row])
