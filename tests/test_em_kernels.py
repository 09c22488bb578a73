"""em/_kernels.py against em/reference.py on identical inputs."""


import numpy as np
import pytest
from numpy.testing import assert_allclose

from em import _kernels, reference
from conftest import make_blobs, photo_pixels

pytestmark = pytest.mark.exactness

# The kernel sums in another order (per chunk, per lane) and takes the scatter
# about the old means; over thousands of samples that moves the last 3-4 digits.
RTOL = 1e-10


def params_for(X, n_components, seed=0):
    rng = np.random.default_rng(seed)
    means = X[rng.choice(len(X), n_components, replace=False)] + 0.01
    variances = X.var(axis=0) * rng.uniform(0.05, 0.5, size=(n_components, X.shape[1])) + 1e-3
    weights = rng.dirichlet(np.ones(n_components))
    return means, 1.0 / variances, np.log(weights)


CASES = {
    "blobs-k4-d3": lambda: (make_blobs(3001, 3, 4), 4),
    "one-feature": lambda: (make_blobs(700, 1, 3), 3),
    "one-component": lambda: (make_blobs(300, 2, 2), 1),
    "five-features": lambda: (make_blobs(5000, 5, 6, seed=3), 6),
    "fewer-samples-than-a-block": lambda: (make_blobs(7, 3, 2), 3),
    "china-40k-k10": lambda: (photo_pixels("china.jpg")[::7], 10),
}


@pytest.fixture(params=list(CASES), ids=list(CASES))
def case(request):
    X, n_components = CASES[request.param]()
    return np.ascontiguousarray(X), params_for(X, n_components)


def test_e_step_stats_matches_reference(case):
    X, params = case
    sample_weight = np.random.default_rng(1).integers(0, 5, size=len(X)).astype(np.float64)
    got = _kernels.e_step_stats(X, sample_weight, *params)
    want = reference.e_step_stats(X, sample_weight, *params)
    for name, g, w in zip(("nk", "sum_x", "sum_xx", "log_lik"), got, want):
        # atol: a statistic of a component that owns nothing is ~1e-300 in one and 0 in the other
        assert_allclose(g, w, rtol=RTOL, atol=1e-12 * np.abs(w).max(), err_msg=name)


def test_e_step_matches_reference(case):
    X, params = case
    log_resp, log_norm = _kernels.e_step(X, *params)
    want_resp, want_norm = reference.e_step(X, *params)
    assert_allclose(log_norm, want_norm, rtol=RTOL)
    finite = np.isfinite(want_resp)
    assert np.array_equal(finite, np.isfinite(log_resp))
    assert_allclose(log_resp[finite], want_resp[finite], rtol=RTOL, atol=1e-9)  # atol: log γ near 0
    assert_allclose(_kernels.score_samples(X, *params), want_norm, rtol=RTOL)
    resp = _kernels.predict_proba(X, *params)
    assert_allclose(resp, np.exp(want_resp), rtol=1e-9, atol=1e-15)
    assert_allclose(resp.sum(axis=1), 1.0, rtol=1e-14)  # responsibilities sum to 1 per row


def test_predict_matches_reference(case):
    X, params = case
    assert np.array_equal(_kernels.predict(X, *params), reference.predict(X, *params))


def test_exp_is_within_one_ulp_of_numpy(rng):
    x = np.concatenate([-rng.exponential(40.0, 100_000), -rng.uniform(0, 1e-3, 1000), [0.0, -1e-300, -707.9]])
    got = x.copy()
    _kernels._exp_nonpositive(got, np.empty_like(x), len(x))
    want = np.exp(x)
    normal = x > -708
    assert np.all(np.abs(got[normal] - want[normal]) <= np.spacing(want[normal]))
    assert np.all(got[~normal] == 0.0)


def test_exp_of_minus_infinity_and_underflow_is_zero():
    x = np.array([-np.inf, -709.0, -1e308, 0.0])
    _kernels._exp_nonpositive(x, np.empty(4), 4)
    assert x.tolist() == [0.0, 0.0, 0.0, 1.0]
