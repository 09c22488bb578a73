"""KMeans(trace=True): the per-iteration record that learners plot and the CLI animates."""

import numpy as np
import pytest

from conftest import photo_pixels
from exactness import U, centers_tolerance, lloyd_tolerances, sum_error
from kmeans import KMeans, reference

pytestmark = pytest.mark.exactness


@pytest.fixture(scope="module")
def traced():
    X = photo_pixels("flower.jpg")[::9]
    w = np.random.default_rng(0).integers(1, 4, len(X)).astype(float)
    return X, w, KMeans(6, random_state=0, trace=True).fit(X, sample_weight=w)


def test_trace_rows_follow_the_fit(traced):
    X, _, km = traced
    trace = km.trace_
    assert trace["iteration"].tolist() == list(range(km.n_iter_ + 1))
    assert trace["centers"].shape == (km.n_iter_ + 1, 6, 3)
    assert np.array_equal(trace["centers"][-1], km.cluster_centers_)
    assert np.isnan(trace["inertia"][0]) and trace["n_changed"][0] == 0
    # Lloyd's inertia never increases from one iteration to the next, up to the rounding of two
    # computed values: each term's ((D + 2)u) and the sum's (sum_error(n))
    rounding = 2 * (sum_error(len(X)) + (X.shape[1] + 2) * U)
    assert np.all(np.diff(trace["inertia"][1:]) <= rounding * trace["inertia"][1:-1])


def test_replaying_the_trace_through_reference_gives_the_next_row(traced):
    X, w, km = traced
    trace = km.trace_
    for t in range(km.n_iter_):
        labels = np.full(len(X), -1, dtype=np.int64)
        sum_x, nk, inertia, _ = reference.lloyd_step(X, w, trace["centers"][t], labels)
        new_centers = reference.update_centers(X, w, trace["centers"][t], labels, sum_x, nk)
        # reference vs kernel: the same sums in another order, from the same labels
        assert np.all(np.abs(new_centers - trace["centers"][t + 1]) <= centers_tolerance(X, w, labels, new_centers))
        _, _, inertia_tol, _ = lloyd_tolerances(X, w, labels, trace["centers"][t])
        assert abs(inertia - trace["inertia"][t + 1]) <= inertia_tol
        labels_next, _ = reference.assign_labels(X, w, trace["centers"][t + 1])
        assert trace["n_changed"][t + 1] == w[labels != labels_next].sum()


def test_tracing_does_not_change_the_fit(traced):
    X, w, km = traced
    plain = KMeans(6, random_state=0).fit(X, sample_weight=w)
    assert np.array_equal(plain.cluster_centers_, km.cluster_centers_) and not hasattr(plain, "trace_")
