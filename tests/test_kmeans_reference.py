"""kmeans.reference against the textbook: each step recomputed with scipy or explicit loops."""

import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal
from scipy.spatial.distance import cdist

import oracles
from kmeans import reference
from conftest import make_blobs
from exactness import U, assert_labels_agree, lloyd_tolerances, sum_error

pytestmark = pytest.mark.exactness


@pytest.fixture
def problem(rng):
    """Blobs, positive weights with a few zeros, and centres off the data."""
    X = make_blobs(n_samples=300, n_features=3, n_centers=4, seed=1)
    sample_weight = rng.uniform(0.5, 2.0, size=len(X))
    sample_weight[::17] = 0.0
    centers = X[rng.choice(len(X), 4, replace=False)] + rng.uniform(-0.5, 0.5, size=(4, 3))
    return X, sample_weight, centers


def test_squared_distances_match_scipy(problem):
    X, _, centers = problem
    # two ways to sum D squared differences: (D + 2)u of the distance each
    want = cdist(X, centers, "sqeuclidean")
    assert np.all(np.abs(reference.squared_distances(X, centers) - want) <= 2 * (X.shape[1] + 2) * U * want)


def test_assign_labels_is_nearest_centre_and_weighted_inertia(problem):
    X, sample_weight, centers = problem
    labels, inertia = reference.assign_labels(X, sample_weight, centers)
    sq_dist = cdist(X, centers, "sqeuclidean")
    _, _, inertia_tol, distance_bound = lloyd_tolerances(X, sample_weight, sq_dist.argmin(axis=1), centers)
    assert assert_labels_agree(labels, sq_dist.argmin(axis=1), -sq_dist, distance_bound) == 0
    assert labels.dtype == np.int64
    # the same products summed in another order
    assert abs(inertia - np.sum(sample_weight * sq_dist.min(axis=1))) <= inertia_tol


def test_assign_labels_breaks_ties_towards_the_lowest_index():
    X = np.array([[0.0], [1.0], [2.0]])
    centers = np.array([[1.5], [0.5], [0.5]])  # x=1 is halfway between centres 0 and 1; centres 1 and 2 coincide
    labels, _ = reference.assign_labels(X, np.ones(3), centers)
    assert_array_equal(labels, [1, 0, 0])


def first_step(X, sample_weight, centers):
    """`reference.lloyd_step` from no labels; returns the new labels with its sums and inertia."""
    labels = np.full(len(X), -1, dtype=np.int64)
    sum_x, nk, inertia, n_changed = reference.lloyd_step(X, sample_weight, centers, labels)
    assert n_changed == len(X)
    return labels, sum_x, nk, inertia


def test_lloyd_step_sums_each_cluster(problem):
    X, sample_weight, centers = problem
    labels, sum_x, nk, inertia = first_step(X, sample_weight, centers)
    # the labels it sums by are scipy's nearest centres wherever rounding cannot flip them (oracles.py)
    want_labels, decided, want_inertia, inertia_error = oracles.nearest_centres(X, centers, sample_weight)
    assert decided.mean() > 0.99  # the check covers nearly every sample
    assert_array_equal(labels[decided], want_labels[decided])
    for k in range(len(centers)):
        members = labels == k
        # the same terms, summed by np.add.at and by NumPy's pairwise sum: sum_error(n_k) of Σ|terms| each
        sums = 2 * sum_error(np.count_nonzero(members))
        assert abs(nk[k] - sample_weight[members].sum()) <= sums * sample_weight[members].sum()
        want = (sample_weight[members, None] * X[members]).sum(axis=0)
        assert np.all(np.abs(sum_x[k] - want) <= sums * (sample_weight[members] @ np.abs(X[members])))
    # Σ w·min_k d against scipy's distances added by fsum, within the bound derived in oracles.py
    assert abs(inertia - want_inertia) <= inertia_error


def test_lloyd_step_counts_the_labels_that_change(problem):
    X, sample_weight, centers = problem
    labels, *_ = first_step(X, sample_weight, centers)
    previous = labels.copy()
    previous[::7] = (previous[::7] + 1) % len(centers)  # as if every 7th sample had been elsewhere
    assert reference.lloyd_step(X, sample_weight, centers, previous)[3] == len(X[::7])
    assert_array_equal(previous, labels)
    assert reference.lloyd_step(X, sample_weight, centers, previous)[3] == 0


def test_evaluate_candidates_follows_the_formula(problem, rng):
    X, sample_weight, centers = problem
    closest_dist_sq = cdist(X, centers[:2], "sqeuclidean").min(axis=1)
    candidates = X[rng.choice(len(X), 5, replace=False)]
    closest_dist_sq_with, potentials = reference.evaluate_candidates(X, sample_weight, closest_dist_sq, candidates)
    for t, y in enumerate(candidates):
        want = np.minimum(closest_dist_sq, ((X - y) ** 2).sum(axis=1))
        distance_tol = 2 * (X.shape[1] + 2) * U * want  # cdist and a sum of squares: (D + 2)u each
        assert np.all(np.abs(closest_dist_sq_with[t] - want) <= distance_tol)
        # the same terms in another order: the sum's rounding and the terms'
        potential_tol = 2 * sum_error(len(X)) * (sample_weight @ want) + sample_weight @ distance_tol
        assert abs(potentials[t] - np.sum(sample_weight * want)) <= potential_tol


def test_evaluate_candidates_before_any_centre_gives_plain_distances(problem):
    X, sample_weight, centers = problem
    no_centre_yet = np.full(len(X), np.inf)
    closest_dist_sq_with, potentials = reference.evaluate_candidates(X, sample_weight, no_centre_yet, centers[:1])
    # scipy's squared distances: each evaluation within (D + 2)·U relative of the exact d (oracles.py)
    want = cdist(X, centers[:1], "sqeuclidean")[:, 0]
    assert np.all(np.abs(closest_dist_sq_with[0] - want) <= 2 * (X.shape[1] + 2) * oracles.U * want)
    # the potential is Σ w·d: the inertia of one centre
    _, _, want_potential, potential_error = oracles.nearest_centres(X, centers[:1], sample_weight)
    assert abs(potentials[0] - want_potential) <= potential_error


def test_update_centers_is_the_weighted_mean(problem):
    X, sample_weight, centers = problem
    labels, sum_x, nk, _ = first_step(X, sample_weight, centers)
    new_centers = reference.update_centers(X, sample_weight, centers, labels, sum_x, nk)
    for k in range(len(centers)):
        members = labels == k
        w = sample_weight[members]
        # np.average divides the same sums, added in another order: absolute, a centre can be near 0
        tol = 2 * sum_error(np.count_nonzero(members)) * (w @ np.abs(X[members])) / w.sum() + 2 * U * np.abs(new_centers[k])
        assert np.all(np.abs(new_centers[k] - np.average(X[members], axis=0, weights=w)) <= tol)


def test_lloyd_iterations_never_increase_the_inertia(problem):
    X, sample_weight, centers = problem
    inertias = []
    for _ in range(10):
        labels, sum_x, nk, inertia = first_step(X, sample_weight, centers)
        centers = reference.update_centers(X, sample_weight, centers, labels, sum_x, nk)
        inertias.append(inertia)
    # each step can only lower J; once the labels stop changing two computed values of J can be out of
    # order by their rounding: the terms' ((D + 2)u each) and the sum's (sum_error(n)), twice
    assert np.all(np.diff(inertias) <= 2 * (sum_error(len(X)) + (X.shape[1] + 2) * U) * inertias[0])


def test_empty_cluster_moves_exactly_onto_the_farthest_sample():
    X = np.array([[0.0, 0.0], [0.1, 0.0], [0.0, 0.1], [5.0, 5.0], [5.1, 5.0], [9.0, 9.0]])
    sample_weight = np.array([1.0, 1.0, 1.0, 1.0, 1.0, 3.0])
    centers = np.array([[0.0, 0.0], [5.0, 5.0], [-50.0, -50.0]])  # centre 2 attracts no sample
    labels, sum_x, nk, _ = first_step(X, sample_weight, centers)
    assert nk[2] == 0
    new_centers = reference.update_centers(X, sample_weight, centers, labels, sum_x, nk)
    # (9, 9) is farthest from its centre (5, 5): it becomes centre 2 exactly, and leaves cluster 1
    assert_array_equal(new_centers[2], [9.0, 9.0])
    # (Σ w x - w_far x_far) / (Σ w - w_far): 5 roundings of terms whose |values| add to 37.1 (x) and 5
    # (weights), over a remaining weight of 2
    assert_allclose(new_centers[1], [5.05, 5.0], rtol=0, atol=5 * U * (37.1 + 5 * 5.05) / 2)
    assert_allclose(new_centers[0], [1 / 30, 1 / 30], rtol=4 * U)  # three additions and a division


def test_zero_weight_samples_are_never_relocation_targets():
    X = np.array([[0.0], [2.0], [100.0]])
    sample_weight = np.array([1.0, 1.0, 0.0])  # the far point counts as removed
    centers = np.array([[0.5], [-50.0]])
    labels, sum_x, nk, _ = first_step(X, sample_weight, centers)
    new_centers = reference.update_centers(X, sample_weight, centers, labels, sum_x, nk)
    assert_array_equal(new_centers, [[0.0], [2.0]])  # x=2 is the farthest sample that has weight


def test_farthest_samples_pick_scikit_learns_samples_in_its_order(rng):
    X = rng.normal(size=(50, 2))
    centers = np.zeros((1, 2))
    labels = np.zeros(50, dtype=np.int64)
    sq_dist = (X**2).sum(axis=1)
    far = reference.farthest_samples(X, np.ones(50), centers, labels, 3)
    # scikit-learn's _relocate_empty_clusters_dense selection, verbatim
    assert_array_equal(far, np.argpartition(sq_dist, -3)[:-4:-1])
    assert set(far) == set(np.argsort(sq_dist)[-3:])


def test_no_relocation_when_every_sample_sits_on_its_centre():
    # 5 x (0, 0) and 10 x (1, 1) with 3 clusters: scikit-learn leaves centre 1 at the
    # unnormalised sum (4, 4) here; we give it the heaviest cluster's centre, a data point
    X = np.array([[0.0, 0.0]] * 5 + [[1.0, 1.0]] * 10)
    sample_weight = np.ones(15)
    centers = np.array([[0.0, 0.0], [0.0, 0.0], [1.0, 1.0]])
    labels, sum_x, nk, _ = first_step(X, sample_weight, centers)
    assert_array_equal(nk, [5, 0, 10])
    new_centers = reference.update_centers(X, sample_weight, centers, labels, sum_x, nk)
    assert_array_equal(new_centers, [[0.0, 0.0], [1.0, 1.0], [1.0, 1.0]])
