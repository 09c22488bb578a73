"""em/reference.py against scipy and the textbook formulas."""

import math

import numpy as np
import pytest
from numpy.testing import assert_allclose
from scipy.special import logsumexp
from scipy.stats import norm

import exactness
import oracles
from em import reference
from exactness import ULP, U, MixtureEvaluation, sum_error

pytestmark = pytest.mark.exactness


def random_params(rng, n_components, n_features):
    means = rng.normal(size=(n_components, n_features))
    variances = rng.uniform(0.2, 2.0, size=(n_components, n_features))
    weights = rng.dirichlet(np.ones(n_components))
    return weights, means, variances


@pytest.mark.parametrize("n_components, n_features", [(1, 1), (3, 2), (5, 3)], ids=["k1-d1", "k3-d2", "k5-d3"])
def test_log_gaussian_prob_matches_scipy_norm(rng, n_components, n_features):
    X = rng.normal(size=(40, n_features))
    _, means, variances = random_params(rng, n_components, n_features)
    got = reference.log_gaussian_prob(X, means, 1.0 / variances)
    # a diagonal Gaussian is a product of 1-D normals: the log-density is their sum
    want = norm.logpdf(X[:, None, :], loc=means[None], scale=np.sqrt(variances)[None]).sum(axis=2)
    # two correct evaluations of one formula (weights of 1 leave log π = 0 out of the bound)
    bound = MixtureEvaluation(X, np.ones(n_components), means, variances).term_bound
    assert np.all(np.abs(got - want) <= bound)


def test_log_gaussian_prob_spherical_matches_scipy_norm(rng):
    X = rng.normal(size=(40, 3))
    _, means, variances = random_params(rng, 4, 3)
    variance = variances[:, 0]  # one variance per component
    got = reference.log_gaussian_prob_spherical(X, means, 1.0 / variance)
    want = norm.logpdf(X[:, None, :], loc=means[None], scale=np.sqrt(variance)[None, :, None]).sum(axis=2)
    # the diagonal case with the variance repeated over the features: its bound, as above
    bound = MixtureEvaluation(X, np.ones(4), means, np.repeat(variance[:, None], 3, axis=1)).term_bound
    assert np.all(np.abs(got - want) <= bound)


@pytest.mark.parametrize("tied", [False, True], ids=["full", "tied"])
def test_log_gaussian_prob_full_and_tied_match_the_textbook_formula_in_high_precision(rng, tied):
    """-½(D log 2π + (x - μ)ᵀ U Uᵀ (x - μ)) + Σ log U_dd evaluated in 60 digits from the very float64
    U, X and μ given: only the float64 evaluation's own rounding separates the two, and
    FullMixtureEvaluation bounds that (for two float64 evaluations, so with room to spare)."""
    import mpmath  # a test dependency (pyproject.toml)

    n_components, n_features = 3, 3
    X = rng.normal(size=(30, n_features)) * 4
    means = rng.normal(size=(n_components, n_features))
    A = rng.normal(size=(1 if tied else n_components, n_features, n_features))
    covariances = 0.3 * np.eye(n_features) + A @ np.swapaxes(A, 1, 2)
    factors = np.broadcast_to(exactness.upper_factors(covariances), (n_components, n_features, n_features))
    if tied:
        got = reference.log_gaussian_prob_tied(X, means, factors[0])
    else:
        got = reference.log_gaussian_prob_full(X, means, factors)
    want = np.empty_like(got)
    with mpmath.workdps(60):
        for k in range(n_components):
            U = mpmath.matrix(factors[k].tolist())
            log_det = sum(mpmath.log(U[d, d]) for d in range(n_features))
            for n in range(len(X)):
                y = mpmath.matrix([X[n].tolist()]) - mpmath.matrix([means[k].tolist()])
                z = y * U
                maha = sum(z[0, e] ** 2 for e in range(n_features))
                want[n, k] = float(-(n_features * mpmath.log(2 * mpmath.pi) + maha) / 2 + log_det)
    evaluation = exactness.FullMixtureEvaluation(X, np.ones(n_components), means, covariances, factors=factors)
    assert np.all(np.abs(got - want) <= evaluation.term_bound)


def test_e_step_is_bayes_rule_in_log_space(rng):
    X = rng.normal(size=(50, 2))
    weights, means, variances = random_params(rng, 4, 2)
    log_resp, log_norm = reference.e_step(X, means, 1.0 / variances, np.log(weights))
    joint = norm.logpdf(X[:, None, :], loc=means[None], scale=np.sqrt(variances)[None]).sum(axis=2) + np.log(weights)
    evaluation = MixtureEvaluation(X, weights, means, variances)
    assert np.all(np.abs(log_norm - logsumexp(joint, axis=1)) <= evaluation.score_bound)
    want_resp = joint - logsumexp(joint, axis=1)[:, None]
    # log γ = a - log p: both parts' bounds, and the subtraction's rounding on each side
    bound = evaluation.term_bound + evaluation.score_bound[:, None] + 2 * U * np.abs(want_resp)
    assert np.all(np.abs(log_resp - want_resp) <= bound)
    # Σ exp(a - log p) = 1 up to: log p's own rounding (K terms, exp and log within ULP, u|log p|), the
    # subtractions (u|log γ|, at most u log K in the γ-weighted sum), each exp (ULP), the K - 1 additions
    K = len(weights)
    assert np.all(np.abs(np.exp(log_resp).sum(axis=1) - 1.0) <= 2 * U * (K + ULP * (2 + np.log(K)) + np.abs(log_norm)))


def test_e_step_survives_far_away_samples():
    # every density underflows to 0 in linear space; the log-sum-exp keeps all of it finite
    X = np.array([[1e4, -1e4]])
    means = np.zeros((2, 2))
    precisions = np.ones((2, 2))
    log_resp, log_norm = reference.e_step(X, means, precisions, np.log([0.5, 0.5]))
    assert np.isfinite(log_norm).all() and np.isfinite(log_resp).all()
    assert_allclose(np.exp(log_resp), 0.5)


def test_sufficient_statistics_and_m_step_follow_the_formulas(rng):
    X = rng.normal(size=(60, 3))
    weights, means, variances = random_params(rng, 3, 3)
    sample_weight = rng.uniform(0.5, 2.0, size=60)
    log_resp, _ = reference.e_step(X, means, 1.0 / variances, np.log(weights))
    nk, sum_x, sum_xx = reference.sufficient_statistics(X, log_resp, sample_weight)
    new_weights, new_means, new_variances = reference.m_step(nk, sum_x, sum_xx, reg_covar=1e-3)
    resp = np.exp(log_resp) * sample_weight[:, None]
    # the same sums of 60 terms in two orders: each within sum_error(60) of Σ|terms|, on each side,
    # absolute since a mean can be near 0; quotients and the + reg_covar add a few u
    sums = 2 * sum_error(60) + 4 * U
    for k in range(3):
        want_mean = np.average(X, axis=0, weights=resp[:, k])
        want_var = np.average((X - want_mean) ** 2, axis=0, weights=resp[:, k]) + 1e-3
        assert np.all(np.abs(new_means[k] - want_mean) <= sums * np.average(np.abs(X), axis=0, weights=resp[:, k]))
        assert np.all(np.abs(new_variances[k] - want_var) <= sums * want_var)
    assert np.all(np.abs(new_weights - resp.sum(axis=0) / resp.sum()) <= sums * new_weights)
    assert abs(new_weights.sum() - 1.0) <= 2 * 3 * U  # K quotients by one sum, added again: 2K roundings


def test_variance_of_a_flat_float32_region_does_not_cancel():
    # scikit-learn issue #30382: E[x²] - μ² of a constant 0.7 loses every digit; the scatter is exactly 0
    X = np.full((1000, 3), np.float32(0.7), dtype=np.float32).astype(np.float64)
    log_resp = np.zeros((1000, 1))
    nk, sum_x, sum_xx = reference.sufficient_statistics(X, log_resp, np.ones(1000))
    _, _, variances = reference.m_step(nk, sum_x, sum_xx, reg_covar=1e-6)
    # x - mean is at most (n + 1)·u·0.7 (the mean's rounding), so the scatter is below
    # ((n + 1) u 0.7)² ≈ 6e-27 and vanishes against u·1e-6: only the final additions round
    assert_allclose(variances, 1e-6, rtol=2 * U)


def test_e_step_stats_follows_the_formulas(rng):
    X = rng.normal(size=(30, 2))
    weights, means, variances = random_params(rng, 2, 2)
    sample_weight = rng.integers(1, 4, size=30).astype(float)
    nk, sum_x, sum_xx, log_lik = reference.e_step_stats(X, sample_weight, means, 1.0 / variances, np.log(weights))
    # oracle: scipy's densities, then the docstring's formulas with correctly rounded sums
    log_norm, resp, _, _, log_norm_error = oracles.mixture_log_density(X, weights, means, variances)
    wr = sample_weight[:, None] * resp
    want_nk = np.array([math.fsum(col) for col in wr.T]) + 10 * np.finfo(np.float64).eps  # N_k + 10ε, as documented
    want_sum_x = np.array([[math.fsum(wr[:, k] * X[:, d]) for d in range(2)] for k in range(2)])
    want_means = want_sum_x / want_nk[:, None]
    want_sum_xx = np.array([[math.fsum(wr[:, k] * (X[:, d] - want_means[k, d]) ** 2) for d in range(2)]
                            for k in range(2)])
    # Bounds (U = 2^-53, per-sample log-density bound e_n from oracles.py). One evaluation of
    # w·γ_nk = w·exp(l_nk - log p_n) is within rho = 3·e_n + 3U relative (the two logs, the
    # subtraction, exp and the product). nk, sum_x and sum_xx add N such terms (N·U more, relative
    # to Σ|terms|; sum_xx has one subtraction and a square more per term); both sides err, hence 2x.
    # An error Δm in the mean moves sum_xx only by nk·Δm²: Σ w·γ·(x - m) is 0 at the mean.
    n = len(X)
    rho = 3 * log_norm_error.max() + 3 * oracles.U
    nk_error = 2 * (rho + n * oracles.U) * want_nk
    sum_x_error = 2 * (rho + (n + 1) * oracles.U) * (wr.T @ np.abs(X))
    mean_error = (sum_x_error + np.abs(want_means) * nk_error[:, None]) / want_nk[:, None] + 2 * oracles.U * np.abs(want_means)
    sum_xx_error = 2 * (rho + (n + 4) * oracles.U) * want_sum_xx + want_nk[:, None] * mean_error**2
    assert np.all(np.abs(nk - want_nk) <= nk_error)
    assert np.all(np.abs(sum_x - want_sum_x) <= sum_x_error)
    assert np.all(np.abs(sum_xx - want_sum_xx) <= sum_xx_error)
    # Σ w·log p(x_n): each log p within e_n on both sides; N products and additions (N + 1)U,
    # the oracle's fsum 2U, relative to Σ w·|log p|
    log_lik_error = 2 * sample_weight @ log_norm_error + (n + 3) * oracles.U * (sample_weight @ np.abs(log_norm))
    assert abs(log_lik - oracles.fsum_weighted(sample_weight, log_norm)) <= log_lik_error


def test_predict_is_the_most_likely_component(rng):
    X = rng.normal(size=(80, 2))
    weights, means, variances = random_params(rng, 3, 2)
    labels = reference.predict(X, means, 1.0 / variances, np.log(weights))
    # oracle: the argmax of scipy's log π_k + log N(x | μ_k, σ²_k), where no rounding can flip it:
    # each side's l_nk is within joint_error of the exact value (oracles.py), so the best and the
    # runner-up can swap only if their margin is at most twice the sum of their two bounds
    _, _, joint, joint_error, _ = oracles.mixture_log_density(X, weights, means, variances)
    order = np.argsort(joint, axis=1)
    best, second = order[:, -1], order[:, -2]
    rows = np.arange(len(X))
    margin = joint[rows, best] - joint[rows, second]
    decided = margin > 2 * (joint_error[rows, best] + joint_error[rows, second])
    assert decided.mean() > 0.95  # the check covers nearly every sample
    assert np.array_equal(labels[decided], best[decided])


@pytest.mark.parametrize("n_features", [1, 3, 6])
def test_lower_triangular_inverse_matches_scipy(rng, n_features):
    """Forward substitution against scipy's triangular solve of L X = I, on a badly scaled L.

    Any backward-stable triangular inversion gives X with |X L - I| <= c_D u |X||L|,
    c_D = D + 1 (Higham, Accuracy and Stability, 2nd ed., Thm 8.5 and §14.2), so X is
    within c_D u |X||L||X| of the exact inverse, and the two results within twice that.
    """
    import scipy.linalg

    A = rng.standard_normal((n_features, n_features)) * np.logspace(0, 3, n_features)
    lower = np.linalg.cholesky(A @ A.T + np.eye(n_features))
    got = reference.lower_triangular_inverse(lower)
    want = scipy.linalg.solve_triangular(lower, np.eye(n_features), lower=True)
    bound = 2 * (n_features + 1) * U * (np.abs(want) @ np.abs(lower) @ np.abs(want))
    assert np.all(np.abs(got - want) <= bound)
    assert np.all(np.triu(got, 1) == 0)
