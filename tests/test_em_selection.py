"""em.select_model: warm starts by splitting a component, against fits that each start from k-means."""

import subprocess
import sys
from pathlib import Path

import numba
import numpy as np
import pytest
import threadpoolctl
from exactness import U, sum_error
from sklearn.datasets import load_sample_image

from em import GaussianMixture, select_model
from em.reference import COVARIANCE_TYPES
from em.selection import HALF_NORMAL_MEAN, split_start
from segment import image


def china_colors():
    """china.jpg at 128 pixels wide: 7,399 distinct colours with their counts."""
    picture = image.thumbnail(image.Picture(load_sample_image("china.jpg")), 128)
    return picture.in_space("rgb"), picture.distinct[1]


@pytest.mark.parametrize("data", ["blobs", "china"])
def test_warm_started_selection_picks_the_model_independent_fits_pick(blobs, data):
    """Each warm-started row is another local optimum than the k-means start's, so the two tables differ;
    on these data both pick the same best model (blobs: their true k). They need not always: on china.jpg
    at 64 pixels wide the warm start picks full k=10 and the independent fits full k=8."""
    X, weights = (blobs(n_samples=1000, n_centers=4, seed=1), None) if data == "blobs" else china_colors()
    k_range = range(2, 7) if data == "blobs" else range(6, 11)
    warm_table, warm = select_model(X, k_range, COVARIANCE_TYPES, sample_weight=weights, random_state=0)
    cold_table, cold = select_model(X, k_range, COVARIANCE_TYPES, sample_weight=weights, random_state=0,
                                    warm_start=False)
    assert (warm.covariance_type, warm.n_components) == (cold.covariance_type, cold.n_components)
    if data == "blobs":
        assert warm.n_components == 4
    first = {row["covariance_type"]: row["k"] for row in reversed(warm_table)}
    assert all(row["warm_started"] == (row["k"] != first[row["covariance_type"]]) for row in warm_table)
    assert not any(row["warm_started"] for row in cold_table)


def test_the_table_holds_the_criterion_the_estimator_computes(blobs):
    X = blobs(n_samples=800, seed=2)
    table, best = select_model(X, [2, 3, 4, 5], ("full",), random_state=0)
    row = next(row for row in table if row["k"] == best.n_components)
    # the same n values of log p summed in two orders (a dot product, a mean times n), times 2,
    # plus the rounding of n times the mean and of adding p log n
    log_p = best.score_samples(X)
    bound = 2 * 2 * sum_error(len(X)) * np.abs(log_p).sum() + 4 * U * abs(row["bic"])
    assert abs(row["bic"] - best.bic(X)) <= bound


def fitted(covariance_type, weights, means, covariances):
    model = GaussianMixture(len(weights), covariance_type=covariance_type)
    model._set_params(np.array(weights), np.array(means), np.array(covariances))
    return model


def test_split_start_halves_the_widest_component_along_its_principal_axis():
    axis = np.array([1.0, 1.0, 0.0]) / np.sqrt(2)
    wide = np.eye(3) + 8 * np.outer(axis, axis)  # eigenvalue 9 along axis, 1 across it
    model = fitted("full", [0.6, 0.4], [[0.0, 0, 0], [10.0, 10, 10]], [np.eye(3) * 2, wide])
    start = split_start(model, 3)
    # 0.4 * 9 > 0.6 * 2: component 1 is split, by the mean of a half-normal along its axis
    step = HALF_NORMAL_MEAN * 3.0 * axis
    # eigh is backward stable: its eigenvector is within a few u·‖Σ‖/gap = u·9/8 of the axis, times |step| < 3
    tolerance = 100 * U * 10
    means = start["means_init"]
    assert np.allclose(means[0], 0.0, rtol=0, atol=tolerance)
    # the eigenvector's sign is LAPACK's choice: the two halves may come out in either order
    halves = sorted([means[1], means[2]], key=lambda mean: mean[0])
    np.testing.assert_allclose(halves, [10 - step, 10 + step], rtol=0, atol=tolerance)
    np.testing.assert_array_equal(start["weights_init"], [0.6, 0.2, 0.2])
    np.testing.assert_array_equal(start["precisions_init"][2], model.precisions_[1])


@pytest.mark.parametrize("covariance_type", ["diag", "spherical", "tied"])
def test_split_start_keeps_the_shape_of_each_covariance_type(covariance_type):
    covariances = {"diag": [[1.0, 4, 1], [1, 1, 1]], "spherical": [4.0, 1],
                   "tied": [[1.0, 0, 0], [0, 4, 0], [0, 0, 1]]}[covariance_type]
    model = fitted(covariance_type, [0.5, 0.5], [[0.0, 0, 0], [10.0, 0, 0]], covariances)
    start = split_start(model, 3)
    GaussianMixture(3, covariance_type=covariance_type, **start)._check_params()  # shapes a mixture accepts
    assert start["precisions_init"].shape == ((3, 3) if covariance_type == "tied" else (3, *model.precisions_.shape[1:]))
    moved = start["means_init"][[0, 2]]  # component 0, at the origin, is the wider in each case
    # along feature 1, the axis of variance 4; a spherical component has no principal axis: along some feature
    feature = np.argmax(np.abs(moved[0])) if covariance_type == "spherical" else 1
    np.testing.assert_allclose(np.abs(moved[:, feature]), HALF_NORMAL_MEAN * 2.0, rtol=4 * U)  # sqrt, 2 products
    assert np.all(np.delete(moved, feature, axis=1) == 0)


def test_types_fitted_at_the_same_time_give_the_table_of_one_type_after_another():
    """Each covariance type's chain on its own thread (numba one thread each, then the last alone on all)
    must give the rows, to the last bit, and the best model that fitting the types one by one gives:
    no kernel's result depends on its thread count, and the log-likelihoods are correctly rounded sums."""
    X, weights = china_colors()
    n_threads = numba.get_num_threads()
    together, best_together = select_model(X, range(2, 7), COVARIANCE_TYPES, sample_weight=weights,
                                           random_state=0, n_jobs=2)
    assert numba.get_num_threads() == n_threads  # the caller's thread count is left as it was
    one_by_one, best_one_by_one = select_model(X, range(2, 7), COVARIANCE_TYPES, sample_weight=weights,
                                               random_state=0, n_jobs=1)
    assert together == one_by_one
    assert (best_together.covariance_type, best_together.n_components) == (
        best_one_by_one.covariance_type, best_one_by_one.n_components)
    np.testing.assert_array_equal(best_together.means_, best_one_by_one.means_)


def test_a_random_generator_is_drawn_from_in_the_order_of_the_table():
    """A RandomState shared by every fit is drawn from type after type, k after k, whatever n_jobs asks:
    the table equals fits made one by one in that order from one generator (run concurrently, the k-means
    starts would take their draws in whichever order the threads reached them)."""
    X, weights = china_colors()
    table, _ = select_model(X, [2, 3], COVARIANCE_TYPES, sample_weight=weights, warm_start=False,
                            random_state=np.random.RandomState(3), n_jobs=4)
    generator = np.random.RandomState(3)
    for row in table:
        model = GaussianMixture(row["k"], covariance_type=row["covariance_type"], random_state=generator)
        model.fit(X, sample_weight=weights)
        assert row["log_likelihood"] == np.sum(weights * model.score_samples(X))  # as select_model sums


def test_fits_on_other_threads_also_skip_the_warnings_they_would_build():
    """In a fresh process: fits that stop at max_iter, two types at the same time, neither warn nor import
    scikit-learn to build the warning (each thread runs in a copy of select_model's context)."""
    code = """
import sys, warnings
import numpy as np
from em import select_model
warnings.simplefilter("error")
X = np.random.default_rng(0).normal(size=(300, 2))
select_model(X, [2, 3], ("full", "diag"), max_iter=1, random_state=0, n_jobs=2)
print("sklearn" in sys.modules)
"""
    completed = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300,
                               cwd=Path(__file__).parents[1])
    assert completed.stdout.split() == ["False"], completed.stderr


def blas_thread_counts():
    return [pool["num_threads"] for pool in threadpoolctl.threadpool_info() if pool["user_api"] == "blas"]


def test_fits_that_overlap_give_back_the_blas_threads_they_limited():
    """Each fit holds BLAS at one thread. Two fits on two threads overlap as A starts, B starts, A ends,
    B ends: threadpoolctl's own limiters, each restoring what it saw, would leave one thread for good (B
    saw A's limit); the shared limit is taken by the first to start and given back by the last to end."""
    from em.estimator import _OneBlasThread

    if not blas_thread_counts():
        pytest.skip("no BLAS library that threadpoolctl can limit is loaded")
    with threadpoolctl.threadpool_limits(limits=2, user_api="blas"):
        before = blas_thread_counts()
        shared = _OneBlasThread()
        shared.__enter__()  # A starts
        assert set(blas_thread_counts()) == {1}
        shared.__enter__()  # B starts
        shared.__exit__(None, None, None)  # A ends
        assert set(blas_thread_counts()) == {1}  # B still runs
        shared.__exit__(None, None, None)  # B ends
        assert blas_thread_counts() == before
        # for contrast, the same interleaving of threadpoolctl's own limiters leaves one thread
        controller = threadpoolctl.ThreadpoolController()
        a_limit = controller.limit(limits=1, user_api="blas")
        b_limit = controller.limit(limits=1, user_api="blas")
        a_limit.restore_original_limits()
        b_limit.restore_original_limits()
        assert set(blas_thread_counts()) == {1}


@pytest.mark.parametrize("n_jobs", [0, -1, 1.5])
def test_n_jobs_is_a_positive_whole_number(n_jobs):
    X, weights = china_colors()
    with pytest.raises((ValueError, TypeError), match="n_jobs"):
        select_model(X, [2], ("diag",), sample_weight=weights, n_jobs=n_jobs)


@pytest.mark.parametrize("X, weights, message", [
    (np.zeros((0, 3)), None, "0 sample"), (np.zeros(5), None, "2D array"),
    (np.arange(30.0).reshape(10, 3), np.ones(7), "sample_weight has shape"),
])
def test_bad_data_gets_the_estimators_message(X, weights, message):
    with pytest.raises(ValueError, match=message):
        select_model(X, [2], sample_weight=weights)
