"""kmeans._kernels against kmeans.reference on identical inputs, and thread-count independence."""


import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal

from kmeans import _kernels, reference
from conftest import make_blobs

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
    assert_array_equal(labels, want_labels)  # random data: no sample within rounding of a tie
    assert n_changed == want_changed
    # same terms, summed per chunk instead of sequentially: last digits only
    assert_allclose(sum_x, want_sum_x, rtol=1e-10)
    assert_allclose(nk, want_nk, rtol=1e-10)
    assert_allclose(inertia, want_inertia, rtol=1e-10)
    assert _kernels.lloyd_step(X, sample_weight, centers, labels)[3] == 0


def test_assign_labels_matches_reference(problem):
    X, sample_weight, centers, _ = problem
    labels, inertia = _kernels.assign_labels(X, sample_weight, centers)
    want_labels, want_inertia = reference.assign_labels(X, sample_weight, centers)
    assert_array_equal(labels, want_labels)
    assert_allclose(inertia, want_inertia, rtol=1e-10)  # chunked vs one dot product


def test_squared_distances_match_reference(problem):
    X, _, centers, _ = problem
    # both add the squared differences in feature order: identical up to NumPy's reduction order
    assert_allclose(_kernels.squared_distances(X, centers), reference.squared_distances(X, centers), rtol=1e-12)


@pytest.mark.parametrize("first", [False, True], ids=["later-centre", "first-centre"])
def test_evaluate_candidates_matches_reference(problem, first):
    X, sample_weight, centers, closest_dist_sq = problem
    if first:
        closest_dist_sq = np.full(len(X), np.inf)  # how k-means++ evaluates its first centre
    closest_with, potentials = _kernels.evaluate_candidates(X, sample_weight, closest_dist_sq, centers[1:])
    want_closest_with, want_potentials = reference.evaluate_candidates(X, sample_weight, closest_dist_sq, centers[1:])
    assert_allclose(closest_with, want_closest_with, rtol=1e-12)  # the same squares, up to NumPy's reduction order
    assert_allclose(potentials, want_potentials, rtol=1e-10)  # chunked sums vs a matrix-vector product


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
    assert_array_equal(labels, want_labels)
    assert n_changed == want_changed
    assert_allclose(sum_x, want_sum_x, rtol=1e-10)  # same tolerance as the compiled kernel
    assert_allclose(nk, want_nk, rtol=1e-10)
    assert_allclose(inertia, want_inertia, rtol=1e-10)
    _, potentials = _kernels.evaluate_candidates.py_func(X, sample_weight, closest_dist_sq, centers)
    _, want_potentials = reference.evaluate_candidates(X, sample_weight, closest_dist_sq, centers)
    assert_allclose(potentials, want_potentials, rtol=1e-10)
