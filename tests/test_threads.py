"""Results are bit-identical whatever the number of threads: one subprocess per thread count."""

import os
import subprocess
import sys

import pytest

pytestmark = pytest.mark.exactness

SCRIPT = """
import hashlib, numba, numpy as np
from sklearn.datasets import load_sample_image
from em import GaussianMixture, _kernels as em_kernels
import kmeans.estimator
from kmeans import KMeans, _kernels as kmeans_kernels
X = load_sample_image("china.jpg").reshape(-1, 3)[::4].astype(np.float64)   # 9 EM chunks, 34 k-means chunks
weights = 1.0 + np.arange(len(X)) % 3
km = KMeans(n_clusters=8, random_state=0).fit(X, sample_weight=weights)     # k-means++ and Lloyd
pixels = load_sample_image("china.jpg").reshape(-1, 3).astype(np.float64)
pixel_weights = 1.0 + np.arange(len(pixels)) % 3
on_colours = KMeans(n_clusters=8, random_state=0).fit(pixels, sample_weight=pixel_weights)  # steps on distinct colours
gm = GaussianMixture(6, random_state=0, tol=1e-4).fit(X, sample_weight=weights)
full = GaussianMixture(6, covariance_type="full", random_state=0, tol=1e-4).fit(X, sample_weight=weights)
labels = km.labels_.copy()  # lloyd_step overwrites them with its own
em_kernels.COLOR_MIN_SAMPLES = 0  # predict through the colour table, which both threads fill, on this small X too
arrays = [km.cluster_centers_, km.labels_, km.inertia_, gm.means_, gm.covariances_, gm.weights_, gm.lower_bounds_,
          *kmeans.estimator.distinct_weighted_rows(pixels, pixel_weights),
          on_colours.cluster_centers_, on_colours.labels_, on_colours.inertia_,
          *kmeans_kernels.lloyd_step(X, weights, km.cluster_centers_ + 0.3, labels), labels,
          *em_kernels.e_step_sums(X, weights, gm.means_ + 0.3, gm.precisions_, np.log(gm.weights_)),
          em_kernels.predict_proba(X, gm.means_, gm.precisions_, np.log(gm.weights_)),
          em_kernels.predict(X, gm.means_, gm.precisions_, np.log(gm.weights_)),
          em_kernels.predict(X, full.means_, full.precisions_cholesky_, np.log(full.weights_)),
          full.means_, full.covariances_, full.lower_bounds_,
          *em_kernels.e_step_sums(X, weights, full.means_ + 0.3, full.precisions_cholesky_, np.log(full.weights_))]
digest = hashlib.sha256()
for array in arrays:
    digest.update(np.ascontiguousarray(array, dtype=np.float64).tobytes())
print(numba.get_num_threads(), km.n_iter_, on_colours.n_iter_, gm.n_iter_, full.n_iter_, digest.hexdigest())
"""


def start_with_threads(n_threads):
    env = dict(os.environ, NUMBA_NUM_THREADS=str(n_threads))
    return subprocess.Popen([sys.executable, "-c", SCRIPT], env=env, stdout=subprocess.PIPE, text=True)


def output_of(run):
    """What ``run`` printed, split in words; a child still running after 300 s is killed and fails the test.

    300 s: each child may compile every kernel cold (about 40 s here with an empty numba cache,
    as under `make exactness`'s generic-CPU configuration), two children share the cores, and a
    CI machine may be slower and busier.
    """
    try:
        return run.communicate(timeout=300)[0].split()
    except subprocess.TimeoutExpired:
        run.kill()
        run.communicate()
        raise


def test_fits_and_kernels_are_bit_identical_for_one_and_two_threads():
    runs = [start_with_threads(1), start_with_threads(2)]  # side by side: most of the time is imports
    try:
        one, two = output_of(runs[0]), output_of(runs[1])
    finally:
        for run in runs:
            if run.poll() is None:
                run.kill()
                run.communicate()
    assert [run.returncode for run in runs] == [0, 0]
    assert (one[0], two[0]) == ("1", "2")  # the setting took effect
    # same n_iter_ for both models, and the same bytes for every fitted array and kernel output
    assert one[1:] == two[1:]
