"""kmeans.KMeans against scikit-learn's KMeans: same start, same numbers."""

import doctest
import functools
import warnings

import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal
from scipy.spatial.distance import cdist
from sklearn.cluster import KMeans as SkKMeans
from sklearn.cluster import kmeans_plusplus as sk_kmeans_plusplus
from sklearn.exceptions import ConvergenceWarning, NotFittedError
from sklearn.metrics import adjusted_rand_score
from sklearn.utils.estimator_checks import (check_clusterer_compute_labels_predict, check_clustering,
                                            check_sample_weight_equivalence_on_dense_data, parametrize_with_checks)

import em.estimator
import kmeans._kernels
import kmeans.estimator
import kmeans.shared
import oracles
from em import GaussianMixture
from kmeans import KMeans, kmeans_plusplus
from kmeans.shared import check_sample_weight, distinct_rows, integer_range
from conftest import make_blobs, photo_pixels
from exactness import U, assert_same_kmeans, near_ties, squared_distance_bound, sum_error

pytestmark = [pytest.mark.exactness, pytest.mark.usefixtures("one_thread_per_library")]


def shared_init(X, n_clusters, seed=0):
    """Initial centres next to data points but off the 1/255 grid, given to both implementations.

    On the grid, some pixels would be exactly halfway between two centres, and
    the two distance formulas can break such ties differently.
    """
    rng = np.random.default_rng(seed)
    return X[rng.choice(len(X), n_clusters, replace=False)] + rng.uniform(0.1, 0.9, (n_clusters, X.shape[1]))


def photo_subsample(name, n_samples=20_000):
    X = photo_pixels(name)
    return X[np.random.default_rng(0).choice(len(X), n_samples, replace=False)]


def distinct_colors(X):
    colors, counts = np.unique(X, axis=0, return_counts=True)
    return colors, counts.astype(np.float64)


# ---------------------------------------------------------------- scikit-learn's numbers


@pytest.fixture(scope="module", params=["china.jpg", "flower.jpg"], ids=["china", "flower"])
def photo_fits(request):
    """Ours and scikit-learn's KMeans on all pixels of a real photo, k=10, from the same init array."""
    X = photo_pixels(request.param)
    init = shared_init(X, 10, seed=1)
    return X, KMeans(10, init=init).fit(X), SkKMeans(10, init=init).fit(X)


def test_same_numbers_as_sklearn_on_real_photos(photo_fits):
    X, ours, theirs = photo_fits
    assert_same_kmeans(ours, theirs, X)


def test_labels_are_the_final_assignment(photo_fits):
    X, ours, _ = photo_fits
    # scipy's nearest final centre, wherever rounding cannot decide otherwise (bound in oracles.py)
    want_labels, decided, want_inertia, inertia_error = oracles.nearest_centres(X, ours.cluster_centers_)
    assert decided.mean() > 0.99  # the check covers nearly every pixel
    assert_array_equal(ours.labels_[decided], want_labels[decided])
    assert ours.labels_.dtype == np.int64
    # Σ min_k d over 273,280 pixels: the probabilistic summation bound (λ = 7) of oracles.py
    assert abs(ours.inertia_ - want_inertia) <= inertia_error
    assert abs(-ours.score(X) - want_inertia) <= inertia_error


def sklearn_tol(X, sample_weight, tol=1e-4):
    """The tol that gives scikit-learn our absolute tolerance: it scales tol by the unweighted variance."""
    mean = np.average(X, axis=0, weights=sample_weight)
    weighted_variance = np.average((X - mean) ** 2, axis=0, weights=sample_weight)
    return tol * weighted_variance.mean() / X.var(axis=0).mean()


@pytest.mark.parametrize("n_features", [1, 2, 3, 5])
def test_same_numbers_as_sklearn_on_blobs(n_features):
    X = make_blobs(n_samples=3000, n_features=n_features, n_centers=5, seed=n_features)
    init = shared_init(X, 5, seed=n_features)
    assert_same_kmeans(KMeans(5, init=init).fit(X), SkKMeans(5, init=init).fit(X), X)


@pytest.mark.parametrize("init", ["array", "k-means++"])
def test_same_numbers_as_sklearn_with_weights(init):
    X = make_blobs(n_samples=3000, n_features=3, n_centers=5, seed=16)
    sample_weight = np.random.default_rng(16).uniform(0.2, 3.0, len(X))
    init = shared_init(X, 5, seed=16) if init == "array" else init
    ours = KMeans(5, init=init, random_state=0).fit(X, sample_weight=sample_weight)
    theirs = SkKMeans(5, init=init, random_state=0, tol=sklearn_tol(X, sample_weight))
    assert_same_kmeans(ours, theirs.fit(X, sample_weight=sample_weight), X, sample_weight)


@pytest.mark.parametrize("name, seed", [("china.jpg", 3), ("flower.jpg", 4)], ids=["china-3", "flower-4"])
def test_same_seed_gives_sklearns_labels(name, seed):
    """k-means++ from the same integer seed: same seeds drawn, same iterations, same labels.

    The seeds are pixels, on the 1/255 grid, so a pixel can be exactly halfway
    between two of them. Our distances are exact there and the tie goes to the
    lower index; scikit-learn's expanded ||c||² - 2x·c breaks it by rounding,
    which differs between BLAS kernels, and the paths may part from there. For
    seeds 0-5 at k=10 such ties number 1 to 59 of 20,000 pixels; these two
    seeds have none, which the first assertion checks (it is a property of the
    data and the exactly drawn seeds, the same on every machine).
    """
    X = photo_subsample(name)
    seeds, _ = kmeans_plusplus(X, 10, random_state=seed)
    bound, d2 = squared_distance_bound(X, seeds)
    assert not near_ties(-d2, bound)[1].any()
    ours = KMeans(10, random_state=seed).fit(X)
    theirs = SkKMeans(10, random_state=seed).fit(X)
    assert_same_kmeans(ours, theirs, X)


def test_kmeans_plusplus_median_inertia_within_one_percent_of_sklearn():
    X = photo_subsample("china.jpg")
    ours = [KMeans(8, random_state=seed).fit(X).inertia_ for seed in range(5)]
    theirs = [SkKMeans(8, random_state=seed).fit(X).inertia_ for seed in range(5)]
    # the bar; the same seeds give the same runs, so the medians agree far closer
    assert abs(np.median(ours) / np.median(theirs) - 1) < 0.01


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_kmeans_plusplus_draws_the_rows_sklearn_draws(seed):
    X = photo_subsample("flower.jpg")
    sample_weight = np.random.default_rng(seed).integers(1, 5, len(X)).astype(np.float64)
    centers, indices = kmeans_plusplus(X, 12, sample_weight=sample_weight, random_state=seed)
    sk_centers, sk_indices = sk_kmeans_plusplus(X, 12, sample_weight=sample_weight, random_state=seed)
    assert_array_equal(indices, sk_indices)
    assert_array_equal(centers, sk_centers)


def test_random_state_instance_is_drawn_from_as_sklearn_does():
    """The Gaussian mixture's inits: KMeans(n_init=1) and kmeans_plusplus drawing from one RandomState.

    Our fit on the distinct colours weighted by their counts is scikit-learn's fit on
    the colours repeated (copies next to each other, so the same points are drawn).
    """
    colors, counts = distinct_colors(photo_subsample("china.jpg", 50_000))
    seeds, _ = kmeans_plusplus(colors, 6, sample_weight=counts, random_state=np.random.RandomState(7))
    bound, d2 = squared_distance_bound(colors, seeds)
    assert not near_ties(-d2, bound)[1].any()  # no halfway ties at the seeds (see test_same_seed_gives_sklearns_labels)
    ours_rs, theirs_rs = np.random.RandomState(7), np.random.RandomState(7)
    ours = KMeans(6, n_init=1, random_state=ours_rs).fit(colors, sample_weight=counts)
    pixels = colors.repeat(counts.astype(int), axis=0)
    theirs = SkKMeans(6, n_init=1, random_state=theirs_rs).fit(pixels)
    ours.labels_ = ours.labels_.repeat(counts.astype(int))  # a colour's label is its pixels' label
    assert_same_kmeans(ours, theirs, pixels)
    _, indices = kmeans_plusplus(colors, 6, sample_weight=counts, random_state=ours_rs)
    _, sk_indices = sk_kmeans_plusplus(colors, 6, sample_weight=counts, random_state=theirs_rs)
    assert_array_equal(indices, sk_indices)
    assert ours_rs.uniform() == theirs_rs.uniform()  # both generators advanced by the same draws


@pytest.mark.parametrize("params", [dict(init="random"), dict(n_init=4)], ids=["random-init", "n_init=4"])
def test_best_of_several_runs_is_sklearns(params):
    X = make_blobs(n_samples=2000, n_features=3, n_centers=6, spread=1.0, seed=3)
    ours = KMeans(6, random_state=0, **params).fit(X)
    theirs = SkKMeans(6, random_state=0, **params).fit(X)
    assert_same_kmeans(ours, theirs, X)


def test_empty_cluster_relocation_matches_sklearn():
    X = make_blobs(n_samples=1000, n_features=2, n_centers=3, seed=4)
    init = np.vstack([shared_init(X, 3, seed=4), [[100.0, 100.0]]])  # the last centre attracts nothing
    ours, theirs = KMeans(4, init=init).fit(X), SkKMeans(4, init=init).fit(X)
    assert_same_kmeans(ours, theirs, X)


def test_reference_engine_gives_the_same_fit():
    X = make_blobs(n_samples=2000, n_features=3, n_centers=5, seed=5)
    fast = KMeans(5, random_state=0).fit(X)
    slow = KMeans(5, random_state=0, engine="reference").fit(X)
    assert_same_kmeans(slow, fast, X)  # two correct implementations: the bounds against scikit-learn hold


# ---------------------------------------------------------------- sample weights


def test_integer_weights_equal_repeated_rows():
    X = make_blobs(n_samples=500, n_features=3, n_centers=4, seed=6)
    sample_weight = np.random.default_rng(6).integers(1, 5, len(X))
    X_repeated = np.repeat(X, sample_weight, axis=0)  # copies next to each other: k-means++ draws the same points
    for init in [shared_init(X, 4, seed=6), "k-means++"]:
        weighted = KMeans(4, init=init, random_state=0).fit(X, sample_weight=sample_weight)
        repeated = KMeans(4, init=init, random_state=0).fit(X_repeated)
        weighted.labels_ = weighted.labels_.repeat(sample_weight)
        # w·x against x + x + ...: the same sums in another order, as between two implementations
        assert_same_kmeans(weighted, repeated, X_repeated)


def test_zero_weight_equals_removal():
    X = make_blobs(n_samples=500, n_features=3, n_centers=4, seed=7)
    rng = np.random.default_rng(7)
    n_total = len(X) + 40
    kept = np.sort(rng.choice(n_total, len(X), replace=False))  # the rows keep their order: same draws
    X_with = rng.uniform(-50, 50, size=(n_total, 3))  # outliers that would pull centres if they counted
    X_with[kept] = X
    sample_weight = np.zeros(n_total)
    sample_weight[kept] = 1.0
    for init in [shared_init(X, 4, seed=7), "k-means++"]:
        alone = KMeans(4, init=init, random_state=0).fit(X)
        among = KMeans(4, init=init, random_state=0).fit(X_with, sample_weight=sample_weight)
        among.labels_ = among.labels_[kept]
        # the sums run over blocks that now hold other rows: another order, rounding only
        assert_same_kmeans(among, alone, X)


def test_distinct_colours_with_counts_equal_all_pixels():
    """The image pipeline fits the distinct colours weighted by their counts instead of every pixel."""
    X = photo_pixels("china.jpg")
    colors, counts = distinct_colors(X)
    init = shared_init(X, 10, seed=3)
    by_color = KMeans(10, init=init).fit(colors, sample_weight=counts)
    by_pixel = KMeans(10, init=init).fit(X)
    by_color.labels_ = by_color.predict(X)
    assert_same_kmeans(by_color, by_pixel, X)  # sums of 273k terms, regrouped by colour: another order


# ---------------------------------------------------------------- steps on the distinct rows

def fit_both_ways(monkeypatch, make, X, sample_weight=None):
    """``make().fit`` with Lloyd's steps on the distinct rows, then with the steps forced onto every row."""
    collapsed = make().fit(X, sample_weight=sample_weight)
    with monkeypatch.context() as patch:
        for module in (kmeans.estimator, em.estimator):  # KMeans's limit, and the mixture's own
            patch.setattr(module, "MAX_DISTINCT_FRACTION", 0.0)  # no set of distinct rows is small enough
        every_row = make().fit(X, sample_weight=sample_weight)
    return collapsed, every_row


def flower_with_far_centre():
    """flower.jpg's pixels and an init whose last centre is far from every pixel: its cluster empties at once.

    Five pixels painted magenta become the pixels farthest from their centres, so the
    empty cluster takes a colour that five pixels share.
    """
    X = photo_pixels("flower.jpg").copy()
    X[[0, 1000, 2000, 3000, 4000]] = [255.0, 0.0, 255.0]
    return X, np.vstack([shared_init(X, 7, seed=9), [[1000.0, 1000.0, 1000.0]]])


@pytest.mark.parametrize("case", ["china", "flower", "china-weighted", "flower-empty-cluster", "reference-engine"])
def test_steps_on_distinct_rows_give_the_fit_on_every_row_exactly(monkeypatch, case):
    """Integer pixels and weights: every sum is exact, so the two ways agree to the last bit, not to rounding.

    Different labels, sums or stopping decisions would change the centres by far more than one ulp.
    """
    X, sample_weight = photo_pixels("flower.jpg" if "flower" in case else "china.jpg"), None
    make = lambda: KMeans(10, random_state=0)
    if case == "china-weighted":
        sample_weight = np.random.default_rng(2).integers(0, 4, len(X)).astype(np.float64)  # zeros included
    if case == "flower-empty-cluster":  # the relocation takes one magenta pixel, not all five
        X, init = flower_with_far_centre()
        make = lambda: KMeans(8, init=init, max_iter=1)  # the centres right after the relocation
    if case == "reference-engine":  # plain NumPy is slow: every 16th pixel, on a coarser grid so colours repeat
        X = X[::16] // 8 * 8
        make = lambda: KMeans(10, random_state=0, engine="reference")
    assert kmeans.estimator.distinct_weighted_rows(X, check_sample_weight(sample_weight, len(X))) is not None
    collapsed, every_row = fit_both_ways(monkeypatch, make, X, sample_weight)
    assert collapsed.n_iter_ == every_row.n_iter_
    assert np.array_equal(collapsed.labels_, every_row.labels_)
    assert np.array_equal(collapsed.cluster_centers_, every_row.cluster_centers_)
    assert collapsed.inertia_ == every_row.inertia_


@pytest.mark.parametrize("weights", ["unit", "integer"])
def test_kmeans_plusplus_on_distinct_rows_draws_the_same_rows(weights):
    X = photo_pixels("china.jpg")
    sample_weight = np.ones(len(X)) if weights == "unit" else np.random.default_rng(4).integers(0, 4, len(X)) * 1.0
    rows = kmeans.estimator.distinct_weighted_rows(X, sample_weight)
    assert rows is not None and kmeans.estimator._exact_potentials(rows)
    draw = lambda rows: kmeans.estimator._kmeans_plusplus(X, 12, sample_weight, np.random.RandomState(5),
                                                         kmeans._kernels, rows)[1]
    assert_array_equal(draw(rows), draw(None))
    # and the rows scikit-learn draws (it is handed the same weights; its potentials are not exact, but far from ties)
    assert_array_equal(draw(rows), sk_kmeans_plusplus(X, 12, sample_weight=sample_weight, random_state=5)[1])


def test_kmeans_plusplus_keeps_every_row_when_the_potentials_could_round():
    X = np.array([[0.0], [2.0**20], [0.0], [2.0**20]] * 4)
    rows = kmeans.estimator.distinct_weighted_rows(X, np.full(len(X), 2.0**12))  # span 2**40 times 2**16 = 2**56
    assert rows is not None and not kmeans.estimator._exact_potentials(rows)


def test_the_mixtures_kmeans_start_is_unchanged(monkeypatch):
    X = photo_pixels("flower.jpg")
    assert kmeans.estimator.distinct_weighted_rows(X, np.ones(len(X))) is not None
    collapsed, every_row = fit_both_ways(monkeypatch, lambda: GaussianMixture(6, random_state=0, max_iter=0), X)
    # the k-means labels are the same, and the counts and sums of pixels under them are exact: the same
    # weights and means to the last bit
    for name in ["means_", "weights_"]:
        assert np.array_equal(getattr(collapsed, name), getattr(every_row, name))
    # the variances are sums of w (x - mean)² >= 0 over the rows or the distinct rows, each within
    # sum_error(n) of their value, then divided by N_k (the same rounding on both sides)
    assert_allclose(collapsed.covariances_, every_row.covariances_, rtol=2 * sum_error(len(X)) + 2 * U, atol=0)


def large_integers(scale, n_rows):
    """One feature taking the values 0, 1, 2 and 3 times ``scale``: few distinct rows, keys that fit."""
    return np.random.default_rng(0).integers(0, 4, (n_rows, 1)) * scale


EVERY_ROW_CASES = {  # data that must keep the steps on every row, made when the test runs
    "not-integer": lambda: (photo_pixels("china.jpg") + 0.5, None),
    "huge-x": lambda: (large_integers(2**41, 2000), None),  # max|x| * sum(w) = 3 * 2**41 * 2000 > 2**53
    "huge-weights": lambda: (large_integers(2**30, 2000), np.full(2000, 5000.0)),  # 3 * 2**30 * 10**7 > 2**53
    "fractional-weights": lambda: (photo_pixels("china.jpg"), np.full(273_280, 1.5)),
    "all-distinct": lambda: (np.arange(3000.0).reshape(1000, 3), None),  # nothing to gain
    "colours": lambda: distinct_colors(photo_pixels("china.jpg")),  # the image pipeline's colours and counts
    "at-the-limit": lambda: (np.array([[0.0], [0.0], [2.0**20], [2.0**20]]), np.full(4, 2.0**31)),  # exactly 2**53
}


@pytest.mark.parametrize("case", EVERY_ROW_CASES)
def test_steps_run_on_every_row_unless_the_sums_are_exact_and_rows_repeat(case):
    X, sample_weight = EVERY_ROW_CASES[case]()
    assert kmeans.estimator.distinct_weighted_rows(X.astype(np.float64), check_sample_weight(sample_weight, len(X))) is None


def test_steps_run_on_distinct_rows_just_below_the_limit():
    X = np.array([[0.0], [0.0], [2.0**20], [2.0**20]])
    sample_weight = np.array([2.0**31, 2.0**31, 2.0**31, 2.0**31 - 1])  # sum(w) * max|x| = 2**53 - 2**20
    rows = kmeans.estimator.distinct_weighted_rows(X, sample_weight)
    assert np.array_equal(rows.X, [[0.0], [2.0**20]]) and np.array_equal(rows.sample_weight, [2.0**32, 2.0**32 - 1])
    assert np.array_equal(rows.X[rows.inverse], X)


def test_distinct_rows_of_any_integers_are_numpys():
    """Negative values and feature ranges that are not 256: the keys' packing, by sorting and by the bitmap."""
    X = np.random.default_rng(3).integers([-5, 0, -1000], [7, 3, 1000], size=(5000, 3)).astype(np.float64)
    low, high = integer_range(X)
    want_rows, want_inverse, want_counts = np.unique(X, axis=0, return_inverse=True, return_counts=True)
    for bitmap_keys in [0, 1 << 27]:  # sorting, then the bitmap
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(kmeans.shared, "MAX_BITMAP_KEYS", bitmap_keys)
            patch.setattr(kmeans.shared, "BITMAP_KEYS_PER_ROW", 1 << 27)
            rows, counts, inverse = distinct_rows(X, low.astype(np.int64), high - low + 1, max_distinct=len(want_rows))
            assert distinct_rows(X, low.astype(np.int64), high - low + 1, max_distinct=len(want_rows) - 1) is None
        assert np.array_equal(rows, want_rows) and np.array_equal(counts, want_counts)
        assert np.array_equal(inverse, want_inverse.ravel())
    assert integer_range(np.vstack([X, [[0.0, 0.0, 1e-9]]])) is None


@pytest.mark.parametrize("n_features", [3, 2, 4], ids=["rgb", "d2", "d4"])
def test_integer_range_finds_the_extremes_and_any_fraction(n_features):
    """The RGB loop and the general one: NumPy's extremes; a fraction, NaN or infinity anywhere answers None
    (200,000 rows: several chunks, the odd value in the last)."""
    X = np.random.default_rng(8).integers(-300, 300, size=(200_000, n_features)).astype(np.float64)
    low, high = integer_range(X)
    assert np.array_equal(low, X.min(axis=0)) and np.array_equal(high, X.max(axis=0))
    for odd in (0.5, np.nan, -1e-300):
        Y = X.copy()
        Y[-7, n_features - 1] = odd
        assert integer_range(Y) is None
    Y = X.copy()
    Y[3, 0] = np.inf  # an integer to the check; distinct_weighted_rows then refuses the range
    assert integer_range(Y)[1][0] == np.inf


# ---------------------------------------------------------------- scikit-learn's estimator checks

# scikit-learn's own KMeans(n_clusters=2, random_state=0) fails this check too (run on 1.9.1), and
# scikit-learn's suite expects it to: PER_ESTIMATOR_XFAIL_CHECKS, "replace by a statistical test,
# see meta-issue #16298".
SEEDS_DEPEND_ON_ROW_ORDER = (
    "k-means++ draws rows by position, exactly as scikit-learn does, so the shuffled weighted data and the "
    "repeated data start from different seeds; from a fixed init array the check passes "
    "(test_sklearn_sample_weight_check_passes_from_a_fixed_start); scikit-learn's KMeans fails it too "
    "(meta-issue #16298)"
)


@parametrize_with_checks(
    [KMeans(n_clusters=2, random_state=0), KMeans(n_clusters=2, random_state=0, engine="reference")],
    expected_failed_checks=lambda est: {"check_sample_weight_equivalence_on_dense_data": SEEDS_DEPEND_ON_ROW_ORDER},
    xfail_strict=True,  # a check that starts to pass is reported, so its entry is removed
)
def test_sklearn_estimator_checks(estimator, check):
    check(estimator)


@pytest.mark.parametrize("engine", ["numba", "reference"])
@pytest.mark.parametrize("check", [check_clustering, functools.partial(check_clustering, readonly_memmap=True),
                                   check_clusterer_compute_labels_predict],
                         ids=["clustering", "clustering_readonly_memmap", "compute_labels_predict"])
def test_sklearn_clustering_checks(engine, check):
    # parametrize_with_checks yields these only for subclasses of scikit-learn's ClusterMixin, which KMeans
    # is not (it does not import scikit-learn); they are the checks it yielded when KMeans was one
    check("KMeans", KMeans(n_clusters=2, random_state=0, engine=engine))


def test_scikit_learn_sees_a_clusterer_and_transformer_as_with_its_own_base_classes():
    """Tags, feature names out and set_output built without scikit-learn's mixins give what they gave."""
    from sklearn.base import BaseEstimator, ClassNamePrefixFeaturesOutMixin, ClusterMixin, TransformerMixin
    from sklearn.utils import get_tags

    class WithSklearnBases(ClassNamePrefixFeaturesOutMixin, TransformerMixin, ClusterMixin, BaseEstimator):
        pass

    assert get_tags(KMeans()) == get_tags(WithSklearnBases())
    X = make_blobs(n_samples=60, n_features=2, n_centers=3, seed=2)
    km = KMeans(3, random_state=0).fit(X)
    assert km.get_feature_names_out().tolist() == ["kmeans0", "kmeans1", "kmeans2"]
    assert km.set_output(transform="default") is km and type(km.transform(X)) is np.ndarray


@pytest.mark.parametrize("n_clusters", [2, 3, 4])
def test_sklearn_sample_weight_check_passes_from_a_fixed_start(n_clusters):
    # the check fits 15 rows of 30 uniform features; any fixed start inside that cube works
    init = np.random.default_rng(n_clusters).uniform(size=(n_clusters, 30))
    check_sample_weight_equivalence_on_dense_data("KMeans", KMeans(n_clusters, init=init))


# ---------------------------------------------------------------- methods and degenerate data


def test_transform_score_and_fit_predict():
    X = make_blobs(n_samples=400, n_features=2, n_centers=3, seed=8)
    sample_weight = np.random.default_rng(8).uniform(0.5, 2, len(X))
    km = KMeans(3, random_state=0)
    labels = km.fit_predict(X, sample_weight=sample_weight)
    want_labels, decided, want_inertia, inertia_error = oracles.nearest_centres(X, km.cluster_centers_, sample_weight)
    assert decided.mean() > 0.99
    assert_array_equal(labels[decided], want_labels[decided])  # scipy's nearest centres
    # √d: d within (D + 2)·U of exact (oracles.py), the square root halves that and adds U, so two
    # evaluations of a distance differ by at most (D + 4)·U relative
    distance_rtol = (X.shape[1] + 4) * oracles.U
    assert_allclose(km.transform(X), cdist(X, km.cluster_centers_), rtol=distance_rtol, atol=0)
    fitted = KMeans(3, random_state=0)
    distances = fitted.fit_transform(X, sample_weight=sample_weight)
    assert_allclose(distances, cdist(X, fitted.cluster_centers_), rtol=distance_rtol, atol=0)
    assert abs(-km.score(X, sample_weight=sample_weight) - want_inertia) <= inertia_error
    _, _, want_score, score_error = oracles.nearest_centres(X[:10], km.cluster_centers_)
    assert abs(-km.score(X[:10]) - want_score) <= score_error
    assert list(km.get_feature_names_out()) == ["kmeans0", "kmeans1", "kmeans2"]


def test_int_and_float32_input_are_fitted_in_float64():
    X = np.rint(make_blobs(n_samples=300, n_features=3, seed=9) * 10)
    init = shared_init(X, 3)
    as_float64 = KMeans(3, init=init).fit(X)
    for X_other in [X.astype(np.int32), X.astype(np.float32)]:
        km = KMeans(3, init=init).fit(X_other)
        assert km.cluster_centers_.dtype == np.float64
        assert_array_equal(km.cluster_centers_, as_float64.cluster_centers_)  # the values are exact in every dtype


def test_identical_points_warn_and_give_one_centre():
    X = np.tile([[3.0, -1.0, 2.0]], (20, 1))
    with pytest.warns(ConvergenceWarning, match=r"distinct clusters \(1\) found smaller than n_clusters \(3\)"):
        km = KMeans(3, random_state=0).fit(X)
    assert_array_equal(km.cluster_centers_, np.tile(X[0], (3, 1)))
    assert km.inertia_ == 0.0


def test_more_clusters_than_distinct_points_keeps_centres_on_data_points():
    # scikit-learn 1.9 gives cluster_centers_[1] == [4, 4] here (an unnormalised sum)
    X = np.array([[0.0, 0.0]] * 5 + [[1.0, 1.0]] * 10)
    init = np.array([[0.0, 0.0], [0.0, 0.0], [1.0, 1.0]])
    with pytest.warns(ConvergenceWarning, match=r"distinct clusters \(2\)"):
        km = KMeans(3, init=init, max_iter=1).fit(X)
    assert_array_equal(km.cluster_centers_, [[0.0, 0.0], [1.0, 1.0], [1.0, 1.0]])
    assert km.inertia_ == 0.0


def test_as_many_clusters_as_samples():
    X = make_blobs(n_samples=6, n_features=2, seed=10)
    km = KMeans(6, random_state=0).fit(X)
    assert sorted(km.labels_) == list(range(6))
    assert km.inertia_ == 0.0


def test_one_feature_matches_sklearn_from_the_same_seed():
    X = make_blobs(n_samples=500, n_features=1, n_centers=3, seed=11)
    assert_same_kmeans(KMeans(3, random_state=0).fit(X), SkKMeans(3, random_state=0).fit(X), X)


def test_labels_compare_up_to_permutation_across_seeds():
    X = make_blobs(n_samples=600, n_features=2, n_centers=3, spread=0.2, seed=12)
    first, second = KMeans(3, random_state=0).fit(X), KMeans(3, random_state=1).fit(X)
    assert adjusted_rand_score(first.labels_, second.labels_) == 1.0  # well separated: one optimum


def test_array_init_with_several_runs_warns_and_runs_once():
    X = make_blobs(n_samples=100, seed=13)
    with pytest.warns(RuntimeWarning, match="running one init instead of n_init=3"):
        KMeans(4, init=shared_init(X, 4), n_init=3).fit(X)


def test_verbose_prints_each_iteration(capsys):
    X = make_blobs(n_samples=200, seed=14)
    km = KMeans(4, random_state=0, verbose=1).fit(X)
    out = capsys.readouterr().out
    assert "Initialization complete" in out
    assert f"Iteration {km.n_iter_ - 1}, inertia" in out
    assert "Converged at iteration" in out


def test_callback_sees_every_iteration():
    X = make_blobs(n_samples=200, seed=14)
    calls = []
    km = KMeans(4, random_state=0, callback=lambda n_iter, inertia: calls.append((n_iter, inertia))).fit(X)
    assert [n_iter for n_iter, _ in calls] == list(range(1, km.n_iter_ + 1))
    inertias = [inertia for _, inertia in calls]
    # Lloyd never raises J; each computed J is off by its terms' rounding ((D + 2)u of each) and the
    # sum's (sum_error(n)), so two may be out of order by twice that
    rounding = 2 * (sum_error(len(X)) + (X.shape[1] + 2) * U)
    assert np.all(np.diff(inertias) <= rounding * inertias[0])
    assert inertias[-1] >= km.inertia_ * (1 - rounding)  # the last update step can only lower it further


def test_docstring_examples_run():
    failures, _ = doctest.testmod(kmeans.estimator, raise_on_error=False)
    assert failures == 0


# ---------------------------------------------------------------- bad input

X_GOOD = make_blobs(n_samples=6, n_features=3, seed=15)
X_NAN = X_GOOD.copy()
X_NAN[2, 1] = np.nan


@pytest.mark.parametrize(
    "params, X, sample_weight, error, match",
    [
        (dict(n_clusters=2), X_NAN, None, ValueError, r"X contains NaN or inf in 1 row"),
        (dict(n_clusters=0), X_GOOD, None, ValueError, r"n_clusters=0 must be >= 1"),
        (dict(n_clusters=2.5), X_GOOD, None, TypeError, r"n_clusters=2.5 must be an integer"),
        (dict(n_clusters=8), X_GOOD, None, ValueError, r"n_clusters=8 exceeds n_samples=6"),
        (dict(n_clusters=3), X_GOOD, [1, 1, 0, 0, 0, 0], ValueError, r"n_clusters=3 exceeds the 2 samples with positive weight"),
        (dict(n_clusters=2, init=np.zeros((2, 2))), X_GOOD, None, ValueError, r"init has shape \(2, 2\); expected .* \(2, 3\)"),
        (dict(n_clusters=2, init=np.zeros((3, 3))), X_GOOD, None, ValueError, r"init has shape \(3, 3\)"),
        (dict(n_clusters=2, init=np.full((2, 3), np.nan)), X_GOOD, None, ValueError, r"init contains NaN or inf"),
        (dict(n_clusters=2, init="kmeans"), X_GOOD, None, ValueError, r"init='kmeans' must be 'k-means\+\+', 'random'"),
        (dict(n_clusters=2, n_init=0), X_GOOD, None, ValueError, r"n_init=0 must be >= 1"),
        (dict(n_clusters=2, max_iter=0), X_GOOD, None, ValueError, r"max_iter=0 must be >= 1"),
        (dict(n_clusters=2, tol=-1.0), X_GOOD, None, ValueError, r"tol=-1.0 must be a number >= 0"),
        (dict(n_clusters=2, engine="cuda"), X_GOOD, None, ValueError, r"engine='cuda' is not one of \['numba', 'reference'\]"),
        (dict(n_clusters=2), X_GOOD, [1, 1, -1, 1, 1, 1], ValueError, r"sample_weight contains negative values \(min -1.0\)"),
        (dict(n_clusters=2), X_GOOD, [1, 1, np.inf, 1, 1, 1], ValueError, r"sample_weight contains NaN or inf"),
        (dict(n_clusters=2), X_GOOD, np.zeros(6), ValueError, r"sample_weight is zero everywhere"),
        (dict(n_clusters=2), X_GOOD, np.ones(4), ValueError, r"sample_weight has shape \(4,\); expected \(6,\)"),
    ],
    ids=[
        "nan-X", "zero-clusters", "float-clusters", "more-clusters-than-samples", "too-few-positive-weights",
        "init-features", "init-clusters", "init-nan", "init-name", "n_init", "max_iter", "tol", "engine",
        "negative-weight", "inf-weight", "zero-weights", "weight-length",
    ],
)  # fmt: skip
def test_bad_input_raises_a_clear_error(params, X, sample_weight, error, match):
    with pytest.raises(error, match=match):
        KMeans(**params).fit(X, sample_weight=sample_weight)


@pytest.mark.parametrize("method", ["predict", "transform", "score"])
def test_methods_before_fit_say_to_call_fit(method):
    with pytest.raises(NotFittedError, match=f"call fit before {method}"):
        getattr(KMeans(2), method)(X_GOOD)


def test_predict_checks_features_and_finite_values():
    km = KMeans(2, random_state=0).fit(X_GOOD)
    with pytest.raises(ValueError, match="X has 2 features, but KMeans is expecting 3 features"):
        km.predict(X_GOOD[:, :2])
    with pytest.raises(ValueError, match=r"X contains NaN or inf in 1 row\(s\); drop or impute them before calling predict"):
        km.predict(X_NAN)
    huge = np.abs(X_GOOD) * 1e306 + 1e307  # finite, but their sum overflows to inf: checked value by value, accepted
    with np.errstate(over="ignore"):
        assert not np.isfinite(huge.sum())
    assert km.predict(huge).shape == (len(huge),)
    with pytest.raises(ValueError, match=r"X contains NaN or inf in 2 row\(s\)"):
        km.predict(np.where(np.arange(len(huge))[:, None] % 3 == 0, -np.inf, huge))


def test_kmeans_plusplus_checks_its_input():
    with pytest.raises(ValueError, match=r"n_clusters=7 exceeds n_samples=6"):
        kmeans_plusplus(X_GOOD, 7)
    with pytest.raises(ValueError, match=r"X contains NaN or inf"):
        kmeans_plusplus(X_NAN, 2)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no warning on good input
        centers, indices = kmeans_plusplus(X_GOOD, 3, random_state=0)
    assert_array_equal(centers, X_GOOD[indices])
