"""The parts of one Lloyd step on all pixels, one thread, against scikit-learn's Lloyd iteration.

Run from the repository root. Each part is the serial chunk function of
`kmeans._kernels` with the later parts left out, on all pixels as one chunk,
timed in CPU time (time.process_time), so a busy machine's waiting is not
counted; medians of 25 interleaved rounds. Prints nanoseconds per pixel.
"""
import sys, time
from pathlib import Path
import numpy as np
from numba import njit
from sklearn.cluster._k_means_lloyd import lloyd_iter_chunked_dense
from sklearn.datasets import load_sample_image
from threadpoolctl import threadpool_limits
sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from kmeans import _kernels as K

LOAD, NEAREST, LABELS, SUMS = 1, 2, 3, 4  # how far the step goes


@njit
def step_parts(X, sample_weight, centers, labels, sum_x, nk, upto):
    """`_kernels._lloyd_chunk` (RGB) stopped after part ``upto``."""
    x_block, dist = np.empty((3, K.BLOCK_SIZE)), np.empty(K.BLOCK_SIZE)
    min_dist, indices = np.empty(K.BLOCK_SIZE), np.empty((2, K.BLOCK_SIZE), dtype=np.int64)
    sum_x[:, :] = 0.0
    nk[:] = 0.0
    inertia, n_changed = 0.0, 0
    for start in range(0, X.shape[0], K.BLOCK_SIZE):
        stop = min(start + K.BLOCK_SIZE, X.shape[0])
        K._load_block(X, start, stop, x_block)
        if upto >= NEAREST:
            nearest = K._nearest_in_block(x_block, stop - start, centers, dist, min_dist, indices)
            for j in range(stop - start):
                k, w = nearest[j], sample_weight[start + j]
                if upto >= LABELS:
                    n_changed += labels[start + j] != k
                    labels[start + j] = k
                    inertia += w * min_dist[j]
                if upto >= SUMS:
                    nk[k] += w
                    sum_x[k, 0] += w * x_block[0, j]
                    sum_x[k, 1] += w * x_block[1, j]
                    sum_x[k, 2] += w * x_block[2, j]
    return inertia, n_changed


for name in ("china.jpg", "flower.jpg"):
    X = load_sample_image(name).reshape(-1, 3).astype(np.float64)
    n, w = len(X), np.ones(len(X))
    centers = X[np.random.default_rng(0).choice(n, 10)] + 0.37  # off the pixel grid: no exact ties
    labels, sum_x, nk = np.full(n, -1), np.empty((10, 3)), np.empty(10)
    sk_new, sk_w, sk_labels, sk_shift = np.empty_like(centers), np.empty(10), np.empty(n, np.int32), np.empty(10)
    runs = {f"up to part {p}": (lambda p=p: step_parts(X, w, centers, labels, sum_x, nk, p)) for p in (LOAD, NEAREST, LABELS, SUMS)}
    runs["scikit-learn lloyd_iter_chunked_dense"] = lambda: lloyd_iter_chunked_dense(
        X, w, centers, sk_new, sk_w, sk_labels, sk_shift, 1, True)
    times = {key: [] for key in runs}
    with threadpool_limits(1):
        for f in runs.values():
            f()
        for _ in range(25):
            for key, f in runs.items():
                start = time.process_time()
                f()
                times[key].append(time.process_time() - start)
    print(name, ", ".join(f"{key}: {np.median(t) / n * 1e9:.2f}" for key, t in times.items()), "ns per pixel (k=10)")
