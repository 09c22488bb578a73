"""em.GaussianMixture with covariance_type 'full', 'tied' and 'spherical' against scikit-learn.

The diagonal model has its own, longer file (test_em_estimator.py). Here every
comparison with scikit-learn uses the bounds of tests/exactness.py for the
type (`FullMixtureEvaluation`, `full_step_error`, `typed_fit_tolerances`).
"""

import warnings

import numpy as np
import pytest
from sklearn.exceptions import ConvergenceWarning
from sklearn.mixture import GaussianMixture as SkGaussianMixture
from sklearn.utils.estimator_checks import parametrize_with_checks

from em import GaussianMixture, _kernels, reference
from conftest import make_blobs, photo_pixels
from exactness import (EXP_FLUSH, U, assert_labels_agree, assert_same_typed_mixture, evaluation_of, model_params,
                       full_statistics_tolerances, sum_error, typed_differences, typed_fit_tolerances, upper_factors)

TYPES = ("full", "tied", "spherical")


def typed_start(X, n_components, covariance_type, seed=0):
    """weights_init, means_init and precisions_init of the type, off the data grid, shared by both fits."""
    rng = np.random.default_rng(seed)
    n_features = X.shape[1]
    means = X[rng.choice(len(X), n_components, replace=False)] + rng.uniform(0.1, 0.9, (n_components, n_features))
    scale = X.var(axis=0).mean()
    if covariance_type in ("full", "tied"):
        A = rng.normal(size=(n_components, n_features, n_features)) * 0.3
        covariances = scale * (0.2 * np.eye(n_features) + A @ np.swapaxes(A, 1, 2) / n_features)
        covariances = covariances[0] if covariance_type == "tied" else covariances
        precisions = np.linalg.inv(covariances)
        precisions = (precisions + np.swapaxes(precisions, -1, -2)) / 2  # exactly symmetric, as the check wants
    else:
        precisions = 1.0 / (scale * rng.uniform(0.1, 0.5, n_components))
    return dict(weights_init=np.full(n_components, 1.0 / n_components), means_init=means, precisions_init=precisions)


def start_params(start, covariance_type):
    """(weights, means, covariances) of a ``typed_start``; for full/tied also the factors scikit-learn uses."""
    precisions = start["precisions_init"]
    if covariance_type in ("full", "tied"):
        return start["weights_init"], start["means_init"], np.linalg.inv(precisions)
    return start["weights_init"], start["means_init"], 1.0 / precisions


def fit_both(X, n_components, covariance_type, engine="numba", **params):
    start = typed_start(X, n_components, covariance_type)
    common = dict(covariance_type=covariance_type, **start, **params)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        ours = GaussianMixture(n_components, engine=engine, **common).fit(X)
        theirs = SkGaussianMixture(n_components, **common).fit(X)
    return ours, theirs, start_params(start, covariance_type)


def with_parameters_of(theirs):
    ours = GaussianMixture(theirs.n_components, covariance_type=theirs.covariance_type)
    for name in ("weights_", "means_", "covariances_", "precisions_", "precisions_cholesky_", "n_features_in_"):
        setattr(ours, name, getattr(theirs, name))
    return ours


def assert_same_evaluation(ours, theirs, X):
    """score_samples, predict_proba and predict within the type's oracle bounds (drift propagated if any)."""
    covariance_type = theirs.covariance_type
    changes = tuple(a - b for a, b in zip(model_params(ours), model_params(theirs)))
    same = all(not np.any(change) for change in changes)
    factors = theirs.precisions_cholesky_ if covariance_type in ("full", "tied") else None
    evaluation = evaluation_of(X, covariance_type, *model_params(theirs), factors=factors,
                               parameter_changes=None if same else changes)
    want = theirs.score_samples(X)
    exact = evaluation_of(X, covariance_type, *model_params(theirs), factors=factors)
    assert np.all(np.abs(exact.log_norm - want) <= exact.score_bound)  # the oracle and scikit-learn
    assert np.all(np.abs(ours.score_samples(X) - want) <= evaluation.score_bound)
    assert np.all(np.abs(ours.predict_proba(X) - theirs.predict_proba(X)) <= evaluation.proba_bound + EXP_FLUSH)
    return assert_labels_agree(ours.predict(X), theirs.predict(X), evaluation.weighted_log_prob, evaluation.term_bound)


# ------------------------------------------------------------------ same start, same numbers

@pytest.mark.parametrize("covariance_type", TYPES)
@pytest.mark.parametrize("engine", ["numba", "reference"])
def test_same_numbers_as_sklearn_on_blobs(covariance_type, engine):
    X = make_blobs(1500, 3, 4)
    ours, theirs, start = fit_both(X, 4, covariance_type, engine=engine, tol=1e-6, max_iter=200)
    assert_same_typed_mixture(ours, theirs, X, start)
    assert_same_evaluation(ours, theirs, X)


@pytest.mark.parametrize("covariance_type", TYPES)
def test_same_numbers_as_sklearn_on_a_subsampled_photo(covariance_type):
    X = photo_pixels("flower.jpg")[::7]
    ours, theirs, start = fit_both(X, 6, covariance_type, max_iter=20, tol=1e-3)
    assert_same_typed_mixture(ours, theirs, X, start)
    assert_same_evaluation(ours, theirs, X)
    # bic and aic: -2 N score + p log N; N times the score's tolerance and a few roundings
    evaluation = evaluation_of(X, covariance_type, *model_params(theirs))
    score_tol = evaluation.score_bound.mean() + 2 * sum_error(len(X)) * np.abs(evaluation.log_norm).mean()
    drift = typed_fit_tolerances(X, np.ones(len(X)), covariance_type, [start, model_params(theirs)], theirs.n_iter_)[1]
    for criterion in ("bic", "aic"):
        want = getattr(theirs, criterion)(X)
        assert abs(getattr(ours, criterion)(X) - want) <= 2 * len(X) * (score_tol + drift) + 4 * U * abs(want)
    assert ours._n_parameters() == theirs._n_parameters()


@pytest.fixture(scope="module")
def china_full():
    """All pixels of china.jpg, full covariances, k=6: the type scikit-learn defaults to, on a whole photo."""
    X = photo_pixels("china.jpg")
    return X, *fit_both(X, 5, "full", max_iter=8, tol=1e-3)


def test_full_on_every_pixel_of_a_photo(china_full):
    X, ours, theirs, start = china_full
    tau, differences = assert_same_typed_mixture(ours, theirs, X, start)
    assert_same_evaluation(ours, theirs, X)


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
@pytest.mark.parametrize("covariance_type", ["full", "tied"])
def test_evaluation_matches_sklearn_on_the_same_parameters(covariance_type):
    X = photo_pixels("china.jpg")
    theirs = SkGaussianMixture(8, covariance_type=covariance_type, random_state=0, max_iter=10, tol=0).fit(X[::9])
    assert assert_same_evaluation(with_parameters_of(theirs), theirs, X[::3]) <= 10


@pytest.mark.parametrize("covariance_type, init_params", [
    ("full", "kmeans"), ("full", "k-means++"), ("full", "random"), ("full", "random_from_data"),
    ("tied", "k-means++"),  # scikit-learn's tied start sums XᵀX over every row, copied
    ("tied", "random"), ("spherical", "random_from_data"),
])
def test_every_init_draws_like_sklearn(covariance_type, init_params):
    X = make_blobs(500, 3, 4, seed=2)
    params = dict(n_components=4, covariance_type=covariance_type, init_params=init_params, random_state=3,
                  max_iter=300, tol=1e-6)
    ours = GaussianMixture(**params, trace=True).fit(X)
    theirs = SkGaussianMixture(**params).fit(X)
    start = tuple(ours.trace_[name][0] for name in ("weights", "means", "variances"))
    assert_same_typed_mixture(ours, theirs, X, start)


# ------------------------------------------------------------------ the bounds can fail

@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_a_wrong_formula_is_caught():
    """Evaluating Σ + 1e-6 I (reg_covar twice), or pooling the tied scatter wrongly, exceeds the bounds."""
    X = photo_pixels("china.jpg")[::23]
    theirs = SkGaussianMixture(6, covariance_type="full", random_state=0, max_iter=10, tol=0).fit(X)
    ours = with_parameters_of(theirs)
    ours.precisions_cholesky_ = upper_factors(theirs.covariances_ + 1e-6 * np.eye(3))
    with pytest.raises(AssertionError):
        assert_same_evaluation(ours, theirs, X)
    X = make_blobs(1500, 3, 4)
    _, theirs, start = fit_both(X, 4, "tied", tol=1e-6, max_iter=200)
    double_reg = GaussianMixture(4, covariance_type="tied", **typed_start(X, 4, "tied"), tol=1e-6, max_iter=200,
                                 reg_covar=2e-6).fit(X)
    tau, _ = typed_fit_tolerances(X, np.ones(len(X)), "tied", [start, model_params(theirs)], theirs.n_iter_)
    assert max(typed_differences(double_reg, theirs, "tied").values()) > tau


# ------------------------------------------------------------------ kernels against the reference

@pytest.mark.parametrize("n_features", [1, 3, 5])
def test_full_kernel_matches_reference(n_features):
    X = np.ascontiguousarray(make_blobs(3001, n_features, 4, seed=n_features))
    rng = np.random.default_rng(1)
    means = X[rng.choice(len(X), 4, replace=False)] + 0.01
    A = rng.normal(size=(4, n_features, n_features))
    covariances = A @ np.swapaxes(A, 1, 2) * 0.2 + np.eye(n_features)
    weights = rng.dirichlet(np.ones(4))
    factors = upper_factors(covariances)
    w = rng.integers(0, 5, len(X)).astype(np.float64)
    args = (means, factors, np.log(weights))
    got = _kernels.e_step_stats(X, w, *args)
    want = reference.e_step_stats(X, w, *args)
    evaluation = evaluation_of(X, "full", weights, means, covariances, factors=factors)
    tolerances = full_statistics_tolerances(X, w, evaluation)
    for name, g, r in zip(("nk", "sum_x", "sum_xx", "log_lik"), got, want):
        assert np.all(np.abs(g - r) <= tolerances[name]), name
    assert np.all(np.abs(_kernels.score_samples(X, *args) - reference.score_samples(X, *args)) <= evaluation.score_bound)
    assert_labels_agree(_kernels.predict(X, *args), reference.predict(X, *args), evaluation.weighted_log_prob,
                        evaluation.term_bound)


# ------------------------------------------------------------------ everything else, for every type

@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
@pytest.mark.parametrize("covariance_type", TYPES)
def test_integer_weights_equal_repeated_rows(covariance_type, rng):
    X = make_blobs(300, 3, 3)
    counts = rng.integers(0, 4, size=len(X))
    start = typed_start(X, 3, covariance_type)
    params = dict(covariance_type=covariance_type, **start, tol=0, max_iter=20)
    weighted = GaussianMixture(3, **params).fit(X, sample_weight=counts)
    repeated = GaussianMixture(3, **params).fit(np.repeat(X, counts, axis=0))
    # two correct computations of the same sums in another order: the bounds against scikit-learn hold
    assert_same_typed_mixture(weighted, repeated, np.repeat(X, counts, axis=0), start_params(start, covariance_type))


@pytest.mark.parametrize("covariance_type", TYPES)
def test_warm_start_and_n_init(covariance_type):
    X = make_blobs(600, 2, 3)
    # seed 3: the best of the three starts ends above the others by more than 1 (full, diag, spherical) or
    # 7e-9 (tied), far beyond rounding. With seed 0 all three reach the same optimum, and which one is kept
    # (the first strictly greater lower bound) was decided by the last bit of each.
    params = dict(covariance_type=covariance_type, n_init=3, init_params="random_from_data", random_state=3,
                  max_iter=300)
    ours = GaussianMixture(3, trace=True, **params).fit(X)
    theirs = SkGaussianMixture(3, **params).fit(X)
    start = tuple(ours.trace_[name][0] for name in ("weights", "means", "variances"))
    assert_same_typed_mixture(ours, theirs, X, start)
    start = typed_start(X, 3, covariance_type)
    warm = dict(covariance_type=covariance_type, warm_start=True, max_iter=3, tol=1e-8, **start)
    ours, theirs = GaussianMixture(3, **warm), SkGaussianMixture(3, **warm)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        for _ in range(3):
            ours.fit(X)
            theirs.fit(X)
    assert_same_typed_mixture(ours, theirs, X, start_params(start, covariance_type), n_iter=9)


@pytest.mark.parametrize("covariance_type", TYPES)
def test_attributes_have_scikit_learns_shapes(covariance_type):
    X = make_blobs(300, 3, 4)
    ours = GaussianMixture(4, covariance_type=covariance_type, random_state=0).fit(X)
    theirs = SkGaussianMixture(4, covariance_type=covariance_type, random_state=0).fit(X)
    for name in ("weights_", "means_", "covariances_", "precisions_", "precisions_cholesky_"):
        assert getattr(ours, name).shape == getattr(theirs, name).shape, name
    # precisions_ is U Uᵀ of the factors, as scikit-learn forms it: D products of D terms, 2D u of |U||U|ᵀ
    U_ = ours.precisions_cholesky_
    if covariance_type in ("full", "tied"):
        inverse = np.linalg.inv(ours.covariances_)
        scale = np.abs(U_) @ np.swapaxes(np.abs(U_), -1, -2)
        # an inverse of Σ = L Lᵀ is within cond(Σ)·D·u of the truth (Higham, Thm 14.1): loose, a sanity check
        cond = np.linalg.cond(ours.covariances_)
        assert np.all(np.abs(ours.precisions_ - inverse) <= 8 * np.max(cond) * 3 * U * scale)


@pytest.mark.parametrize("covariance_type", TYPES)
def test_sample_draws_as_sklearn_does(covariance_type):
    X = make_blobs(500, 3, 3)
    theirs = SkGaussianMixture(3, covariance_type=covariance_type, random_state=7).fit(X)
    ours = with_parameters_of(theirs).set_params(random_state=7)
    # the same parameters, the same RNG calls in the same order: the very same numbers
    X_ours, y_ours = ours.sample(2000)
    X_theirs, y_theirs = theirs.sample(2000)
    assert np.array_equal(y_ours, y_theirs) and np.array_equal(X_ours, X_theirs)


def test_a_collapsed_component_is_named():
    # 30 identical points, and a cloud 100 standard deviations away: component 0 gets exactly the 30
    X = np.vstack([np.zeros((30, 3)), 100 + make_blobs(60, 3, 1)])
    start = dict(weights_init=[0.5, 0.5], means_init=[[0, 0, 0], [100, 100, 100]],
                 precisions_init=np.stack([np.eye(3)] * 2))
    with pytest.raises(ValueError, match="component 0 has an ill-defined empirical covariance"):
        GaussianMixture(2, covariance_type="full", reg_covar=0.0, **start).fit(X)
    # with reg_covar, the singular component is regularised and the fit goes on
    gm = GaussianMixture(2, covariance_type="full", **start).fit(X)
    assert np.all(np.linalg.eigvalsh(gm.covariances_) > 0)


@pytest.mark.parametrize("covariance_type", TYPES)
def test_float32_gives_the_float64_fit(covariance_type):
    X = make_blobs(300, 3, 2).astype(np.float32)
    a = GaussianMixture(2, covariance_type=covariance_type, random_state=0).fit(X)
    b = GaussianMixture(2, covariance_type=covariance_type, random_state=0).fit(X.astype(np.float64))
    assert np.array_equal(a.covariances_, b.covariances_)


def test_precisions_init_of_the_wrong_shape_is_refused():
    with pytest.raises(ValueError, match=r"precisions_init has shape \(2, 3\), expected \(2, 3, 3\)"):
        GaussianMixture(2, covariance_type="full", precisions_init=np.ones((2, 3))).fit(make_blobs(50, 3, 2))
    with pytest.raises(ValueError, match="covariance_type"):
        GaussianMixture(2, covariance_type="block").fit(make_blobs(50, 3, 2))


EXPECTED_FAILED_CHECKS = {
    "check_sample_weight_equivalence_on_dense_data": "start depends on row order; components come out permuted",
}


@parametrize_with_checks(
    [GaussianMixture(n_components=2, covariance_type=t, random_state=0) for t in TYPES],
    expected_failed_checks=lambda estimator: EXPECTED_FAILED_CHECKS,
)
def test_sklearn_estimator_checks(estimator, check):
    check(estimator)


@pytest.mark.parametrize("covariance_type", ["full", "tied"])
def test_a_covariance_that_overflows_is_refused(covariance_type):
    """Squares of 1e160 overflow to inf: refused, as scipy's Cholesky did, not factored into NaNs."""
    X = np.random.default_rng(0).normal(size=(300, 3)) * 1e160
    with pytest.raises(ValueError, match="ill-defined empirical covariance"):
        GaussianMixture(2, covariance_type=covariance_type, random_state=0, max_iter=5).fit(X)
