"""kmeans._kernels against kmeans.reference on identical inputs, and thread-count independence."""


import numpy as np
import pytest
from numpy.testing import assert_array_equal

from kmeans import _kernels, reference
from conftest import make_blobs
from exactness import U, assert_labels_agree, lloyd_tolerances, sum_error

pytestmark = pytest.mark.exactness

# Shapes around the kernels' edges: fewer samples than one block, a partial last
# block and chunk, several chunks; one feature, the RGB fast path (3), and others;
# odd and even numbers of centres (the nearest-centre loop alternates two rows).
SHAPES = [(7, 3, 6), (1000, 1, 5), (5000, 2, 6), (5000, 3, 7), (4099, 5, 6)]
SHAPE_IDS = [f"{n}x{d}-k{k}" for n, d, k in SHAPES]


def make_problem(n_samples, n_features, n_clusters=6, seed=0):
    """Blobs, weights with zeros, centres off the data, and a nearest-centre distance for k-means++."""
    rng = np.random.default_rng(seed)
    X = make_blobs(n_samples=n_samples, n_features=n_features, n_centers=4, seed=seed)
    sample_weight = rng.uniform(0.5, 3.0, size=n_samples)
    sample_weight[rng.random(n_samples) < 0.1] = 0.0
    centers = X[rng.choice(n_samples, n_clusters, replace=n_samples < n_clusters)] + rng.normal(size=(n_clusters, n_features))
    closest_dist_sq = reference.squared_distances(X, centers[:1])[:, 0]
    return X, sample_weight, centers, closest_dist_sq


@pytest.fixture(params=SHAPES, ids=SHAPE_IDS)
def problem(request):
    return make_problem(*request.param)


def step_from_random_labels(step, X, sample_weight, centers):
    """``step`` from random previous labels; returns the new labels and what the step returned."""
    labels = np.random.default_rng(1).integers(-1, len(centers), len(X))
    return labels, step(X, sample_weight, centers, labels)


def test_lloyd_step_matches_reference(problem):
    X, sample_weight, centers, _ = problem
    labels, (sum_x, nk, inertia, n_changed) = step_from_random_labels(_kernels.lloyd_step, X, sample_weight, centers)
    want_labels, (want_sum_x, want_nk, want_inertia, want_changed) = step_from_random_labels(
        reference.lloyd_step, X, sample_weight, centers)
    assert labels.dtype == np.int64
    assert_same_step(X, sample_weight, centers, (labels, sum_x, nk, inertia), (want_labels, want_sum_x, want_nk, want_inertia))
    assert n_changed == want_changed  # no near-tie moved a label (checked just above), so the counts are exact
    assert _kernels.lloyd_step(X, sample_weight, centers, labels)[3] == 0


def assert_same_step(X, sample_weight, centers, got, want):
    """Labels where no tie is within rounding, and the sums within their summation bounds (tests/exactness.py)."""
    labels, sum_x, nk, inertia = got
    want_labels, want_sum_x, want_nk, want_inertia = want
    sum_x_tol, nk_tol, inertia_tol, distance_bound = lloyd_tolerances(X, sample_weight, want_labels, centers)
    d2 = ((X[:, None, :] - centers[None]) ** 2).sum(axis=2)
    assert assert_labels_agree(labels, want_labels, -d2, distance_bound) == 0  # random data: no near-ties
    assert np.all(np.abs(sum_x - want_sum_x) <= sum_x_tol)
    assert np.all(np.abs(nk - want_nk) <= nk_tol)
    assert abs(inertia - want_inertia) <= inertia_tol


def test_assign_labels_matches_reference(problem):
    X, sample_weight, centers, _ = problem
    labels, inertia = _kernels.assign_labels(X, sample_weight, centers)
    want_labels, want_inertia = reference.assign_labels(X, sample_weight, centers)
    _, _, inertia_tol, distance_bound = lloyd_tolerances(X, sample_weight, want_labels, centers)
    assert assert_labels_agree(labels, want_labels, -reference.squared_distances(X, centers), distance_bound) == 0
    assert abs(inertia - want_inertia) <= inertia_tol  # chunked sums vs one dot product


def test_squared_distances_match_reference(problem):
    X, _, centers, _ = problem
    # both add D squared differences: (D + 2)u of the distance each, whatever the order
    want = reference.squared_distances(X, centers)
    assert np.all(np.abs(_kernels.squared_distances(X, centers) - want) <= 2 * (X.shape[1] + 2) * U * want)


@pytest.mark.parametrize("first", [False, True], ids=["later-centre", "first-centre"])
def test_evaluate_candidates_matches_reference(problem, first):
    X, sample_weight, centers, closest_dist_sq = problem
    if first:
        closest_dist_sq = np.full(len(X), np.inf)  # how k-means++ evaluates its first centre
    closest_with, potentials = _kernels.evaluate_candidates(X, sample_weight, closest_dist_sq, centers[1:])
    want_closest_with, want_potentials = reference.evaluate_candidates(X, sample_weight, closest_dist_sq, centers[1:])
    # the same squares, (D + 2)u each side; the potentials are their weighted sums over n samples
    distance_tol = 2 * (X.shape[1] + 2) * U * want_closest_with
    assert np.all(np.abs(closest_with - want_closest_with) <= distance_tol)
    potential_tol = 2 * sum_error(len(X)) * want_potentials + distance_tol @ sample_weight
    assert np.all(np.abs(potentials - want_potentials) <= potential_tol)


@pytest.mark.parametrize("n_features", [3, 4], ids=["rgb-path", "general-path"])
def test_ties_go_to_the_lowest_index(n_features):
    X = np.zeros((5, n_features))
    X[:, 0] = np.arange(5)
    centers = np.zeros((3, n_features))
    centers[:, 0] = [3.0, 1.0, 1.0]  # x=2 is halfway between centres 0 and 1; centres 1 and 2 coincide
    labels, _ = _kernels.assign_labels(X, np.ones(5), centers)
    assert_array_equal(labels, [1, 1, 0, 0, 0])
    step_labels, _ = step_from_random_labels(_kernels.lloyd_step, X, np.ones(5), centers)
    assert_array_equal(step_labels, [1, 1, 0, 0, 0])  # the same hand-worked answer: not assign_labels' own output


def test_kernel_bodies_as_plain_python_match_reference():
    """``py_func`` runs the kernel body in Python, as a NUMBA_DISABLE_JIT coverage run does."""
    X, sample_weight, centers, closest_dist_sq = make_problem(300, 3, n_clusters=3)
    labels, (sum_x, nk, inertia, n_changed) = step_from_random_labels(_kernels.lloyd_step.py_func, X, sample_weight, centers)
    want_labels, (want_sum_x, want_nk, want_inertia, want_changed) = step_from_random_labels(
        reference.lloyd_step, X, sample_weight, centers)
    assert_same_step(X, sample_weight, centers, (labels, sum_x, nk, inertia), (want_labels, want_sum_x, want_nk, want_inertia))
    assert n_changed == want_changed
    _, potentials = _kernels.evaluate_candidates.py_func(X, sample_weight, closest_dist_sq, centers)
    want_closest_with, want_potentials = reference.evaluate_candidates(X, sample_weight, closest_dist_sq, centers)
    potential_tol = 2 * sum_error(len(X)) * want_potentials + 4 * (X.shape[1] + 2) * U * want_closest_with @ sample_weight
    assert np.all(np.abs(potentials - want_potentials) <= potential_tol)


@pytest.mark.parametrize("weights", ["unit", "integer-with-zeros"])
def test_first_rows_reaching_matches_reference_on_exact_sums(weights):
    """Integer values and weights, as k-means++ on distinct rows has them: every running sum is exact in any
    order, so the chunked kernel must find the very rows of np.searchsorted(np.cumsum(...)). A target equal to a
    running sum, one at 0, the total and beyond it (n_samples) are included."""
    rng = np.random.default_rng(3)
    n_samples, n_distinct = 200_000, 5000  # several of the kernel's chunks
    inverse = rng.integers(0, n_distinct, n_samples)
    values = rng.integers(0, 3 * 255**2, n_distinct).astype(np.float64)
    sample_weight = np.ones(n_samples) if weights == "unit" else rng.integers(0, 4, n_samples).astype(np.float64)
    running = np.cumsum(sample_weight * values[inverse])
    targets = np.concatenate([rng.uniform(size=6) * running[-1], running[[0, 77_777, -1]], [0.0, running[-1] + 1]])
    want = reference.first_rows_reaching(inverse, sample_weight, values, targets)
    assert_array_equal(_kernels.first_rows_reaching(inverse, sample_weight, values, targets), want)
    assert want[6] == 0 and want[-1] == n_samples


@pytest.mark.parametrize("outer", [False, True], ids=["diagonal", "outer"])
@pytest.mark.parametrize("given_points", [False, True], ids=["about-means", "about-given-points"])
def test_cluster_sums_add_as_bincount_does(outer, given_points):
    """The loops add sample after sample, as np.bincount does: its sums, to the last bit."""
    from kmeans.shared import cluster_sums
    rng = np.random.default_rng(6)
    X, sample_weight = rng.normal(100.0, 40.0, (20_000, 3)), rng.integers(0, 5, 20_000) * 0.5
    labels, n_clusters = rng.integers(0, 7, 20_000), 8  # cluster 7 stays empty
    about = rng.normal(100.0, 40.0, (n_clusters, 3)) if given_points else None
    per_cluster = lambda values: np.bincount(labels, weights=sample_weight * values, minlength=n_clusters)
    nk = np.bincount(labels, weights=sample_weight, minlength=n_clusters)
    sum_x = np.stack([per_cluster(column) for column in X.T], axis=1)
    points = sum_x / (nk + 1e-10)[:, None] if about is None else about
    diff = X - points[labels]
    pairs = [(d, e) for d in range(3) for e in range(3)] if outer else [(d, d) for d in range(3)]
    want = np.stack([per_cluster(diff[:, d] * diff[:, e]) for d, e in pairs], axis=1).reshape(n_clusters, *(3, 3) if outer else (3,))
    got = cluster_sums(X, sample_weight, labels, n_clusters, about=about, nk_eps=1e-10, outer=outer)
    for g, w in zip(got, (nk, sum_x, want)):
        assert_array_equal(g, w)
