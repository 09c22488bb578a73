"""em/_kernels.py against em/reference.py on identical inputs."""


import numpy as np
import pytest

from em import _kernels, reference
from conftest import make_blobs, photo_pixels
from exactness import EXP_FLUSH, U, MixtureEvaluation, assert_labels_agree, statistics_tolerances

pytestmark = pytest.mark.exactness

# The kernel sums in another order (per chunk, per lane), takes the scatter about the
# old means and has its own exp: two correct implementations, compared within the
# bounds of tests/exactness.py computed from each case's data and parameters.


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
    tolerances = statistics_tolerances(X, sample_weight, *mixture_params(params))
    for name, g, w in zip(("nk", "sum_x", "sum_xx", "log_lik"), got, want):
        assert np.all(np.abs(g - w) <= tolerances[name]), name


def test_e_step_matches_reference(case):
    X, params = case
    log_resp, log_norm = _kernels.e_step(X, *params)
    want_resp, want_norm = reference.e_step(X, *params)
    evaluation = MixtureEvaluation(X, *mixture_params(params))
    assert np.all(np.abs(log_norm - want_norm) <= evaluation.score_bound)
    assert np.all(np.abs(_kernels.score_samples(X, *params) - want_norm) <= evaluation.score_bound)
    finite = np.isfinite(want_resp)
    assert np.array_equal(finite, np.isfinite(log_resp))
    # log γ = a - log p: |Δa| + |Δ log p|, and the subtraction's rounding
    log_resp_bound = evaluation.term_bound + evaluation.score_bound[:, None] + 2 * U * np.abs(want_resp)
    assert np.all(np.abs(log_resp - want_resp)[finite] <= log_resp_bound[finite])
    resp = _kernels.predict_proba(X, *params)
    assert np.all(np.abs(resp - np.exp(want_resp)) <= evaluation.proba_bound + EXP_FLUSH)
    # each γ is a quotient by the row's sum (K - 1 roundings) with one rounding of its own, and
    # the K quotients are added here (K - 1 more): 2K u in all
    assert np.all(np.abs(resp.sum(axis=1) - 1.0) <= 2 * resp.shape[1] * U)


def test_predict_matches_reference(case):
    X, params = case
    evaluation = MixtureEvaluation(X, *mixture_params(params))
    assert_labels_agree(_kernels.predict(X, *params), reference.predict(X, *params),
                        evaluation.weighted_log_prob, evaluation.term_bound)


def mixture_params(params):
    """(weights, means, variances) from the kernels' (means, precisions, log_weights)."""
    means, precisions, log_weights = params
    return np.exp(log_weights), means, 1.0 / precisions


def test_exp_is_within_one_ulp(rng):
    # the oracle is exp to 113 bits (mpmath), rounded once to float64: the correctly rounded value,
    # the same on every machine, unlike NumPy's exp (libm or SIMD, each within its own few ulp)
    import mpmath  # a test dependency (pyproject.toml)
    x = np.concatenate([-rng.exponential(40.0, 20_000), -rng.uniform(0, 1e-3, 1000), [0.0, -1e-300, -707.9]])
    got = x.copy()
    _kernels._exp_nonpositive(got, np.empty_like(x), len(x))
    with mpmath.workprec(113):
        want = np.array([float(mpmath.exp(mpmath.mpf(v))) for v in x])
    normal = x > -708
    assert np.all(np.abs(got[normal] - want[normal]) <= np.spacing(want[normal]))
    assert np.all(got[~normal] == 0.0)


def test_exp_of_minus_infinity_and_underflow_is_zero():
    x = np.array([-np.inf, -709.0, -1e308, 0.0])
    _kernels._exp_nonpositive(x, np.empty(4), 4)
    assert x.tolist() == [0.0, 0.0, 0.0, 1.0]


def test_log_is_within_two_ulp_of_the_correctly_rounded_log(rng):
    # where the E-step calls it (sums of K terms, 1 <= x <= K), around 1 where log x is small, and far out
    import mpmath
    x = np.concatenate([rng.uniform(1.0, 17.0, 20_000), 1.0 + rng.uniform(-1e-6, 1e-6, 1000),
                        np.exp(rng.uniform(-700.0, 700.0, 5000)), [1.0, 2.0, np.sqrt(2.0), np.nextafter(np.sqrt(2.0), 2)]])
    got = x.copy()
    _kernels._log_nonnegative(got, np.empty_like(x), len(x))
    with mpmath.workprec(113):
        want = np.array([float(mpmath.log(mpmath.mpf(v))) for v in x])
    # 2 ulp: m - 1 is exact, m + 1 and the quotient s round once each (2u relative in s, hence in 2 atanh s),
    # the sum with e ln 2 once more; the series' remainder is below 3e-17 of the result
    assert np.all(np.abs(got - want) <= 2 * np.spacing(np.abs(want)))
    assert got[-4] == 0.0  # log 1 is exactly 0


def test_log_of_zero_infinity_and_nan():
    x = np.array([0.0, np.inf, np.nan, 5e-324])
    _kernels._log_nonnegative(x, np.empty(4), 4)
    assert x[0] == -np.inf and x[1] == np.inf and np.isnan(x[2]) and x[3] == -np.inf  # a subnormal counts as 0


def test_no_kernel_is_compiled_for_a_function_argument():
    """numba types a jitted function passed as an argument by its address in memory.

    Such a signature never matches the on-disk cache in a new process, so the
    kernel compiled again in every ``emseg`` run. The covariance form is
    chosen inside the kernels instead (`_kernels._block_log_prob`).
    """
    from numba import types
    from numba.core.registry import CPUDispatcher

    X = make_blobs(300, 3, 2)
    means, precisions, log_weights = params_for(X, 2)
    factors = np.array([np.diag(np.sqrt(p)) for p in precisions])
    for form in (precisions, factors):  # diagonal, then full (upper Cholesky factors)
        _kernels.predict(X, means, form, log_weights)
        _kernels.predict_proba(X, means, form, log_weights)
    dispatchers = [getattr(f, "__wrapped__", f) for f in vars(_kernels).values()]
    dispatchers = [d for d in dispatchers if isinstance(d, CPUDispatcher)]
    assert _kernels._predict.__wrapped__ in dispatchers
    bad = [(d.__name__, sig) for d in dispatchers for sig in d.signatures
           if any(isinstance(t, types.Dispatcher) for t in sig)]
    assert bad == []
