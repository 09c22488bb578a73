"""Dask: mixtures and k-means on dask arrays, and `emseg batch`, on a real LocalCluster of two worker processes."""

import os
import signal
import subprocess
import sys

import numpy as np
import pytest
from numpy.testing import assert_allclose

from conftest import make_blobs
from em import GaussianMixture, _kernels, reference
from kmeans import KMeans

da = pytest.importorskip("dask.array")
distributed = pytest.importorskip("distributed")

# Same start, same kernels; only the order of the additions differs (per block,
# then across blocks), which moves the last digits, far below 1e-9.
RTOL = 1e-9

pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")  # tol=0 runs to max_iter


@pytest.fixture(scope="module")
def client():
    """Two worker processes, one thread each, on the loopback interface only."""
    cluster = distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None, host="127.0.0.1",
        env={"NUMBA_NUM_THREADS": "1"},
    )
    with distributed.Client(cluster) as client:
        yield client
    cluster.close()


@pytest.fixture
def data():
    """Weighted blobs in 13 unequal row blocks."""
    X = make_blobs(n_samples=9000, n_features=3, n_centers=4, seed=1)
    sample_weight = np.random.default_rng(1).integers(1, 4, size=len(X)).astype(np.float64)
    chunks = (700,) * 12 + (9000 - 8400,)
    return X, sample_weight, da.from_array(X, chunks=(chunks, 3)), da.from_array(sample_weight, chunks=(chunks,))


def mixture_start(X):
    rows = [0, 2500, 5000, 7500]
    return dict(means_init=X[rows], weights_init=np.full(4, 0.25), precisions_init=np.ones((4, X.shape[1])))


def assert_same_mixture(got, want):
    for name in ("weights_", "means_", "covariances_"):
        assert_allclose(getattr(got, name), getattr(want, name), rtol=RTOL, err_msg=name)
    assert_allclose(got.lower_bounds_, want.lower_bounds_, rtol=RTOL)
    assert got.n_iter_ == want.n_iter_ and got.converged_ == want.converged_


# ------------------------------------------------------------------ kernels

def test_e_step_sums_add_up_over_blocks_and_match_the_reference(data):
    X, w, _, _ = data
    gm = GaussianMixture(4, random_state=0, max_iter=2).fit(X, sample_weight=w)
    params = (gm.means_, gm.precisions_, np.log(gm.weights_))
    whole = _kernels.e_step_sums(X, w, *params)
    halves = [_kernels.e_step_sums(X[part], w[part], *params) for part in (slice(0, 4000), slice(4000, None))]
    for got, want, ref in zip((a + b for a, b in zip(*halves)), whole, reference.e_step_sums(X, w, *params)):
        assert_allclose(got, want, rtol=1e-12)  # two partial sums against one: rounding only
        assert_allclose(want, ref, rtol=1e-10)  # kernel against reference, as in test_em_kernels
    stats = reference.scatter_about_new_means(*whole[:3], gm.means_)
    for got, want in zip(stats, reference.e_step_stats(X, w, *params)):
        assert_allclose(got, want, rtol=1e-10)


# ------------------------------------------------------------------ arrays

def test_mixture_on_a_dask_array_equals_the_in_memory_fit(client, data):
    X, w, X_dask, w_dask = data
    options = dict(max_iter=15, tol=0, **mixture_start(X))
    want = GaussianMixture(4, **options).fit(X, sample_weight=w)
    got = GaussianMixture(4, **options).fit(X_dask, sample_weight=w_dask)
    assert_same_mixture(got, want)
    labels = got.predict(X_dask)
    assert isinstance(labels, da.Array)
    assert np.array_equal(labels.compute(), want.predict(X))
    assert_allclose(got.predict_proba(X_dask).compute(), want.predict_proba(X), rtol=RTOL, atol=1e-300)
    assert_allclose(got.score_samples(X_dask).compute(), want.score_samples(X), rtol=RTOL)


@pytest.mark.parametrize("init_params", ["kmeans", "k-means++", "random_from_data"])
def test_mixture_initialised_on_a_dask_array_equals_the_in_memory_fit(client, data, init_params):
    # at most SAMPLE_SIZE rows: the sample is the whole array and the seed draws the same start
    X, w, X_dask, w_dask = data
    want = GaussianMixture(4, init_params=init_params, random_state=0).fit(X, sample_weight=w)
    got = GaussianMixture(4, init_params=init_params, random_state=0).fit(X_dask, sample_weight=w_dask)
    assert_same_mixture(got, want)


def test_kmeans_on_a_dask_array_equals_the_in_memory_fit(client, data):
    X, w, X_dask, w_dask = data
    init = X[[0, 1, 2, 3]]  # a poor start, so that Lloyd runs several iterations
    want = KMeans(4, init=init, tol=0).fit(X, sample_weight=w)
    got = KMeans(4, init=init, tol=0).fit(X_dask, sample_weight=w_dask)
    assert got.n_iter_ == want.n_iter_ > 2
    assert np.array_equal(got.labels_.compute(), want.labels_)
    assert_allclose(got.cluster_centers_, want.cluster_centers_, rtol=RTOL)
    assert_allclose(got.inertia_, want.inertia_, rtol=RTOL)
    seeded = KMeans(4, random_state=3).fit(X_dask, sample_weight=w_dask)
    assert np.array_equal(seeded.predict(X_dask).compute(), KMeans(4, random_state=3).fit(X, sample_weight=w).labels_)


def test_kmeans_on_a_dask_array_relocates_an_empty_cluster_as_in_memory(client, data):
    X, w, X_dask, w_dask = data
    init = np.vstack([X[[0, 1, 2]], [[100.0, 100.0, 100.0]]])  # nothing is nearest the last centre
    want = KMeans(4, init=init, tol=0).fit(X, sample_weight=w)
    got = KMeans(4, init=init, tol=0).fit(X_dask, sample_weight=w_dask)
    assert np.array_equal(got.labels_.compute(), want.labels_)
    assert_allclose(got.cluster_centers_, want.cluster_centers_, rtol=RTOL)


def test_a_worker_killed_mid_fit_does_not_change_the_result(client, data):
    X, w, X_dask, w_dask = data
    options = dict(max_iter=8, tol=0, **mixture_start(X))
    want = GaussianMixture(4, **options).fit(X, sample_weight=w)
    before = client.run(os.getpid)
    killed = []

    def kill_one_worker(n_iter, lower_bound):
        if n_iter == 3:
            address, pid = sorted(before.items())[0]
            os.kill(pid, signal.SIGKILL)  # its nanny starts a new worker; dask reruns the lost tasks
            killed.append(address)

    got = GaussianMixture(4, callback=kill_one_worker, **options).fit(X_dask, sample_weight=w_dask)
    client.wait_for_workers(2, timeout=60)
    assert killed and killed[0] not in client.run(os.getpid)
    assert_same_mixture(got, want)


def test_bad_dask_input_gives_a_clear_error(client, data):
    X, w, X_dask, w_dask = data
    with pytest.raises(ValueError, match="NaN or inf in 1 row"):
        GaussianMixture(2).fit(da.from_array(np.vstack([X, [[np.nan, 0.0, 0.0]]]), chunks=(1000, 3)))
    with pytest.raises(ValueError, match="init_params='random'"):
        GaussianMixture(2, init_params="random").fit(X_dask)
    with pytest.raises(ValueError, match="trace=True"):
        KMeans(2, trace=True).fit(X_dask)
    with pytest.raises(ValueError, match="sample_weight has 1 negative"):
        KMeans(2).fit(X_dask, sample_weight=da.from_array(np.r_[-1.0, w[1:]], chunks=1000))


def test_importing_the_library_and_the_command_line_does_not_import_dask():
    code = "import sys, cli, em, kmeans; assert not [m for m in sys.modules if m.startswith('dask')]"
    subprocess.run([sys.executable, "-c", code], check=True)
