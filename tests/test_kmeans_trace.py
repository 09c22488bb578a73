"""KMeans(trace=True): the per-iteration record that learners plot and the CLI animates."""

import numpy as np
import pytest
from numpy.testing import assert_allclose

from conftest import photo_pixels
from kmeans import KMeans, reference

pytestmark = pytest.mark.exactness


@pytest.fixture(scope="module")
def traced():
    X = photo_pixels("flower.jpg")[::9]
    w = np.random.default_rng(0).integers(1, 4, len(X)).astype(float)
    return X, w, KMeans(6, random_state=0, trace=True).fit(X, sample_weight=w)


def test_trace_rows_follow_the_fit(traced):
    _, _, km = traced
    trace = km.trace_
    assert trace["iteration"].tolist() == list(range(km.n_iter_ + 1))
    assert trace["centers"].shape == (km.n_iter_ + 1, 6, 3)
    assert np.array_equal(trace["centers"][-1], km.cluster_centers_)
    assert np.isnan(trace["inertia"][0]) and trace["n_changed"][0] == 0
    # Lloyd's inertia never increases from one iteration to the next
    assert np.all(np.diff(trace["inertia"][1:]) <= 1e-9 * trace["inertia"][1:-1])


def test_replaying_the_trace_through_reference_gives_the_next_row(traced):
    X, w, km = traced
    trace = km.trace_
    for t in range(km.n_iter_):
        labels = np.full(len(X), -1, dtype=np.int64)
        sum_x, nk, inertia, _ = reference.lloyd_step(X, w, trace["centers"][t], labels)
        new_centers = reference.update_centers(X, w, trace["centers"][t], labels, sum_x, nk)
        # reference vs kernel: the same sums in another order
        assert_allclose(new_centers, trace["centers"][t + 1], rtol=1e-10)
        assert_allclose(inertia, trace["inertia"][t + 1], rtol=1e-10)
        labels_next, _ = reference.assign_labels(X, w, trace["centers"][t + 1])
        assert trace["n_changed"][t + 1] == w[labels != labels_next].sum()


def test_tracing_does_not_change_the_fit(traced):
    X, w, km = traced
    plain = KMeans(6, random_state=0).fit(X, sample_weight=w)
    assert np.array_equal(plain.cluster_centers_, km.cluster_centers_) and not hasattr(plain, "trace_")
