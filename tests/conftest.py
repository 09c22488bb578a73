"""Shared fixtures: seeded generators, synthetic blobs and the real photos bundled with scikit-learn."""

import functools
import json
import os

import numpy as np
import pytest
from hypothesis import settings
from PIL import Image
from sklearn.datasets import load_sample_image
from threadpoolctl import threadpool_limits

# The same examples on every run and every machine: a failure found once is found again,
# and a run never fails because it happened to draw a new example. No example database
# (it would replay examples found on this machine only) and no deadline (the first example
# compiles numba kernels, and CI machines differ in speed). `make test` selects it with
# --hypothesis-profile=emseg; it is also the default, so a bare pytest behaves the same.
settings.register_profile("emseg", derandomize=True, database=None, deadline=None)
settings.load_profile("emseg")


def pytest_configure(config):
    # the estimators give scikit-learn's interface without subclassing BaseEstimator, so that they need not
    # import it; parametrize_with_checks says so as it collects their checks (the clustering ones run by name)
    config.addinivalue_line(
        "filterwarnings", "ignore:Estimator (KMeans|GaussianMixture) does not inherit from `sklearn.base:UserWarning")


def pytest_sessionfinish(session):
    """Under `make exactness`, record which kernels this run really used, for tests/portability.py.

    Written at the end of the session, when numpy's and scipy's OpenBLAS and the
    OpenMP runtime are loaded, so threadpoolctl sees every pool the tests used.
    """
    path = os.environ.get("EMSEG_KERNELS_REPORT")
    if not path:
        return
    import numba
    import threadpoolctl
    from numba.core.registry import cpu_target

    try:
        from numpy._core import _multiarray_umath as umath
    except ImportError:  # NumPy 1.x
        from numpy.core import _multiarray_umath as umath
    _, numba_cpu, numba_features = cpu_target.target_context.codegen().magic_tuple()
    report = dict(
        threadpools=[{key: pool.get(key) for key in ("internal_api", "architecture", "num_threads", "filepath")}
                     for pool in threadpoolctl.threadpool_info()],
        numpy_features=sorted(name for name, enabled in umath.__cpu_features__.items() if enabled),
        numba_cpu=numba_cpu, numba_features=numba_features, numba_threads=numba.get_num_threads(),
    )
    with open(path, "w") as file:
        json.dump(report, file)


@pytest.fixture
def one_thread_per_library():
    """BLAS and OpenMP limited to one thread for the test, so scikit-learn adds in a fixed order.

    scikit-learn's KMeans merges per-thread partial sums in whatever order the
    threads finish, and its GaussianMixture's BLAS splits its dot products by
    thread count: with one thread its numbers are the same from run to run.
    Modules that compare numbers with scikit-learn opt in with
    ``pytestmark = pytest.mark.usefixtures("one_thread_per_library")``.
    """
    with threadpool_limits(limits=1):
        yield


@pytest.fixture
def rng():
    return np.random.default_rng(0)


def make_blobs(n_samples=600, n_features=3, n_centers=4, spread=0.3, seed=0):
    """Gaussian blobs with well-separated centres and unequal per-feature spreads."""
    rng = np.random.default_rng(seed)
    centers = rng.uniform(-5, 5, size=(n_centers, n_features))
    scales = spread * rng.uniform(0.5, 1.5, size=(n_centers, n_features))
    labels = rng.integers(n_centers, size=n_samples)
    return centers[labels] + scales[labels] * rng.standard_normal((n_samples, n_features))


@pytest.fixture
def blobs():
    """Factory: ``blobs(n_samples=..., n_features=..., n_centers=..., seed=...)``."""
    return make_blobs


@functools.lru_cache(maxsize=None)
def photo_pixels(name):
    """All pixels of a photo bundled with scikit-learn, as float64 in [0, 255], shape (n_pixels, 3).

    Cached and shared between tests: never modify it in place. (Not marked
    read-only: numba compiles a second set of kernels for read-only arrays.)
    """
    return load_sample_image(name).reshape(-1, 3).astype(np.float64)


@pytest.fixture(params=["china.jpg", "flower.jpg"], ids=["china", "flower"])
def photo(request):
    return photo_pixels(request.param)


def run_cli(capsys, *argv):
    """Run ``emseg ARGV...`` in-process: (exit code, stdout, stderr)."""
    import cli

    code = cli.main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def read_image(path):
    """The pixels of an image file as written, as an array."""
    with Image.open(path) as written:
        return np.asarray(written)


@pytest.fixture
def rgb_image_path(tmp_path):
    """A small RGB PNG with four flat quadrants plus noise, written to tmp_path."""
    rng = np.random.default_rng(0)
    image = np.zeros((24, 32, 3), dtype=np.float64)
    image[:12, :16] = (200, 30, 30)
    image[:12, 16:] = (30, 200, 30)
    image[12:, :16] = (30, 30, 200)
    image[12:, 16:] = (220, 220, 40)
    image += rng.normal(0, 6, size=image.shape)
    path = tmp_path / "small.png"
    Image.fromarray(np.clip(np.rint(image), 0, 255).astype(np.uint8)).save(path)
    return path
