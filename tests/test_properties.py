"""Properties that must hold for any input, checked with hypothesis."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from em import GaussianMixture, _kernels
from exactness import assert_same_mixture
from segment import image

pytestmark = pytest.mark.exactness

FAST = settings(max_examples=60, deadline=None)


@FAST
@given(arrays(np.float64, st.integers(1, 300), elements=st.floats(-708.0, 0.0)))
def test_exp_is_within_one_ulp_anywhere_below_zero(x):
    got = x.copy()
    _kernels._exp_nonpositive(got, np.empty_like(x), len(x))
    want = np.exp(x)
    assert np.all(np.abs(got - want) <= np.spacing(want))


@FAST
@given(arrays(np.uint8, st.tuples(st.integers(1, 12), st.integers(1, 12), st.just(3))))
def test_distinct_colours_rebuild_any_image(rgb):
    colors, counts, inverse = image.distinct_colors(rgb)
    assert np.array_equal(colors[inverse], rgb.reshape(-1, 3))
    assert counts.sum() == rgb.shape[0] * rgb.shape[1] and np.all(counts >= 1)


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")  # tol=0: fixed iterations
@settings(max_examples=15, deadline=None)
@given(st.lists(st.integers(0, 4), min_size=12, max_size=40).filter(lambda w: sum(1 for v in w if v) >= 3),
       st.integers(0, 2**16))
def test_integer_weights_are_repeated_rows(counts, seed):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(len(counts), 2)) * [1.0, 3.0]
    counts = np.array(counts)
    start = dict(weights_init=[0.5, 0.5], means_init=[[-1.0, 0.0], [1.0, 0.0]], precisions_init=np.ones((2, 2)),
                 max_iter=5, tol=0, reg_covar=1e-3)
    weighted = GaussianMixture(2, **start).fit(X, sample_weight=counts)
    repeated = GaussianMixture(2, **start).fit(np.repeat(X, counts, axis=0))
    # the same sums, added in another order: the bounds of two correct implementations
    start_params = (np.array(start["weights_init"]), np.array(start["means_init"]), 1.0 / start["precisions_init"])
    assert_same_mixture(weighted, repeated, np.repeat(X, counts, axis=0), start_params)
