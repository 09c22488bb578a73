"""em/reference.py against scipy and the textbook formulas."""

import numpy as np
import pytest
from numpy.testing import assert_allclose
from scipy.special import logsumexp
from scipy.stats import norm

from em import reference

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
    assert_allclose(got, want, rtol=1e-12)  # same formula, rounding only


def test_e_step_is_bayes_rule_in_log_space(rng):
    X = rng.normal(size=(50, 2))
    weights, means, variances = random_params(rng, 4, 2)
    log_resp, log_norm = reference.e_step(X, means, 1.0 / variances, np.log(weights))
    joint = norm.logpdf(X[:, None, :], loc=means[None], scale=np.sqrt(variances)[None]).sum(axis=2) + np.log(weights)
    assert_allclose(log_norm, logsumexp(joint, axis=1), rtol=1e-12)
    assert_allclose(log_resp, joint - log_norm[:, None], rtol=1e-12, atol=1e-12)
    assert_allclose(np.exp(log_resp).sum(axis=1), 1.0, rtol=1e-14)  # responsibilities sum to 1 per row


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
    for k in range(3):
        want_mean = np.average(X, axis=0, weights=resp[:, k])
        want_var = np.average((X - want_mean) ** 2, axis=0, weights=resp[:, k]) + 1e-3
        assert_allclose(new_means[k], want_mean, rtol=1e-12)
        assert_allclose(new_variances[k], want_var, rtol=1e-12)
    assert_allclose(new_weights, resp.sum(axis=0) / resp.sum(), rtol=1e-12)
    assert_allclose(new_weights.sum(), 1.0, rtol=1e-15)


def test_variance_of_a_flat_float32_region_does_not_cancel():
    # scikit-learn issue #30382: E[x²] - μ² of a constant 0.7 loses every digit; the scatter is exactly 0
    X = np.full((1000, 3), np.float32(0.7), dtype=np.float32).astype(np.float64)
    log_resp = np.zeros((1000, 1))
    nk, sum_x, sum_xx = reference.sufficient_statistics(X, log_resp, np.ones(1000))
    _, _, variances = reference.m_step(nk, sum_x, sum_xx, reg_covar=1e-6)
    assert_allclose(variances, 1e-6, rtol=1e-9)


def test_e_step_stats_is_e_step_then_statistics(rng):
    X = rng.normal(size=(30, 2))
    weights, means, variances = random_params(rng, 2, 2)
    sample_weight = rng.integers(1, 4, size=30).astype(float)
    nk, sum_x, sum_xx, log_lik = reference.e_step_stats(X, sample_weight, means, 1.0 / variances, np.log(weights))
    log_resp, log_norm = reference.e_step(X, means, 1.0 / variances, np.log(weights))
    for got, want in zip((nk, sum_x, sum_xx), reference.sufficient_statistics(X, log_resp, sample_weight)):
        assert_allclose(got, want, rtol=1e-15)
    assert_allclose(log_lik, sample_weight @ log_norm, rtol=1e-15)


def test_predict_is_argmax_of_responsibilities(rng):
    X = rng.normal(size=(80, 2))
    weights, means, variances = random_params(rng, 3, 2)
    args = (X, means, 1.0 / variances, np.log(weights))
    assert np.array_equal(reference.predict(*args), reference.predict_proba(*args).argmax(axis=1))
