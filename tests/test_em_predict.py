"""predict through the colour table (`_kernels._predict_colors`) gives the per-row labels (`_kernels._predict`) bit for bit.

A label depends only on a row's values, and the table's labels are computed
by the same block function as the per-row path's, so the two must agree
exactly, ties and rounding included: any other arithmetic would show on the
near-ties image below, where a one-ulp change of the means moves labels.
"""

import numpy as np
import pytest

from em import GaussianMixture, _kernels, reference
from em.estimator import evaluation_precisions
from em.reference import precisions_cholesky
from conftest import photo_pixels

pytestmark = pytest.mark.exactness

TYPES = ("diag", "spherical", "full", "tied")


def typed_params(covariance_type, means, covariances, weights):
    """(means, precisions, log_weights) as the kernels take them for ``covariance_type``."""
    factors = precisions_cholesky(covariances, covariance_type)
    plain = covariances if covariance_type in ("diag", "spherical") else None
    return means, evaluation_precisions(covariance_type, plain, factors, means.shape), np.log(weights)


def random_covariances(covariance_type, n_components, rng):
    """Covariances of a type on the scale of pixel values (standard deviations of about 5 to 40)."""
    if covariance_type == "diag":
        return rng.uniform(30.0, 900.0, (n_components, 3))
    if covariance_type == "spherical":
        return rng.uniform(30.0, 900.0, n_components)
    A = rng.normal(scale=10.0, size=(n_components, 3, 3))
    full = A @ np.swapaxes(A, 1, 2) + 30.0 * np.eye(3)
    return full if covariance_type == "full" else full[0]


def per_row(X, params):
    labels = np.empty(len(X), dtype=np.int64)
    _kernels._predict(X, *params, labels)
    return labels


def through_table(X, params):
    """The colour-table labels, and whether every value was a whole number in 0..255."""
    labels = np.empty(len(X), dtype=np.int64)
    whole = _kernels._predict_colors(X, *params, np.full(1 << 24, _kernels.ABSENT, dtype=np.uint8), labels)
    return labels, whole


def near_ties(covariance_type):
    """Pixels on the planes where two components tie, and the two pairs of components.

    Each pair has the same weight and covariance (red uncorrelated with green
    and blue), and means at c ∓ 0.1 in red around a whole red value c: a
    third of the pixels lie on a plane where the pair ties to the last bit.
    """
    rng = np.random.default_rng(5)
    n = 60_000
    red = rng.choice([99.0, 100.0, 101.0, 179.0, 180.0, 181.0], n)
    X = np.column_stack([red, rng.integers(0, 256, (n, 2))]).astype(np.float64)
    means = np.array([[99.9, 90.0, 140.0], [100.1, 90.0, 140.0], [179.9, 160.0, 60.0], [180.1, 160.0, 60.0]])
    one = np.array([[40.0, 0.0, 0.0], [0.0, 900.0, 300.0], [0.0, 300.0, 700.0]])
    covariances = {"diag": np.repeat([[40.0, 900.0, 700.0], [60.0, 500.0, 800.0]], 2, axis=0),
                   "spherical": np.repeat([300.0, 500.0], 2),
                   "full": np.stack([one, one, one * 1.5, one * 1.5]),
                   "tied": one}[covariance_type]
    return X, typed_params(covariance_type, means, covariances, np.full(4, 0.25))


@pytest.mark.parametrize("covariance_type", TYPES)
@pytest.mark.parametrize("photo", ["china.jpg", "flower.jpg"])
def test_colour_table_gives_the_per_row_labels_on_photos(photo, covariance_type):
    X = photo_pixels(photo)
    rng = np.random.default_rng(1)
    means = X[rng.choice(len(X), 10, replace=False)] + rng.uniform(-0.5, 0.5, (10, 3))
    params = typed_params(covariance_type, means, random_covariances(covariance_type, 10, rng),
                          rng.dirichlet(np.ones(10)))
    labels, whole = through_table(X, params)
    assert whole
    assert np.array_equal(labels, per_row(X, params))
    assert len(np.unique(labels)) > 3  # a real segmentation, not one label everywhere


@pytest.mark.parametrize("covariance_type", TYPES)
def test_colour_table_gives_the_per_row_labels_at_near_ties(covariance_type):
    X, params = near_ties(covariance_type)
    lp = np.sort(reference.weighted_log_prob(X, *params), axis=1)
    gap = (lp[:, -1] - lp[:, -2]) / np.abs(lp[:, -1])
    assert np.mean(gap < 1e-14) > 0.2  # the image is made of ties: a third of its rows
    want = per_row(X, params)
    means, *rest = params
    nudged = means.copy()
    nudged[1::2] = np.nextafter(means[1::2], -np.inf)  # each pair's second mean one ulp nearer its tie plane
    # the test can fail: labels here turn on the last bit, so other arithmetic would change them
    assert np.any(per_row(X, (nudged, *rest)) != want)
    labels, whole = through_table(X, params)
    assert whole
    assert np.array_equal(labels, want)


def with_value(X, row, column, value, dtype=np.float64):
    X = X.copy()
    X[row, column] = value
    return np.ascontiguousarray(X, dtype=dtype)


def diag_params(X):
    rng = np.random.default_rng(2)
    return typed_params("diag", X[rng.choice(len(X), 6, replace=False)] + 0.25,
                        random_covariances("diag", 6, rng), np.full(6, 1 / 6))


@pytest.mark.parametrize("value", [0.5, -1.0, 256.0, 254.75, 1e300], ids=["half", "negative", "256", "fraction", "huge"])
def test_other_values_fall_back_to_the_per_row_labels(value, monkeypatch):
    monkeypatch.setattr(_kernels, "COLOR_MIN_SAMPLES", 0)  # china.jpg is smaller than the table pays for
    X = photo_pixels("china.jpg")
    params = diag_params(X)
    for row in (0, len(X) - 1):  # the first chunk, and the last
        bad = with_value(X, row, 2, value)
        assert not through_table(bad, params)[1]
        assert np.array_equal(_kernels.predict(bad, *params), per_row(bad, params))


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_negative_zero_and_float32_pixels_take_the_table(monkeypatch):
    monkeypatch.setattr(_kernels, "COLOR_MIN_SAMPLES", 0)
    X = photo_pixels("china.jpg")
    params = diag_params(X)
    signed = np.where(X == 0.0, -0.0, X)  # -0.0 is the whole number 0: same key, same label
    assert np.signbit(signed).any()
    labels, whole = through_table(signed, params)
    assert whole and np.array_equal(labels, per_row(X, params))
    model = GaussianMixture(4, max_iter=3, random_state=0).fit(X[::40])
    want = model.predict(X)
    assert np.array_equal(model.predict(X.astype(np.float32)), want)  # the same whole numbers in float32
    scaled = (X / 255.0).astype(np.float32)  # not whole numbers: the per-row path, on the float64 values
    model.fit(scaled[::40])
    assert np.array_equal(model.predict(scaled), per_row(scaled.astype(np.float64), typed_params(
        "diag", model.means_, model.covariances_, model.weights_)))
