"""Where the Lloyd kernel's time goes, one thread: the nearest-centre loop alone, and a whole step by data size.

Run from the repository root with NUMBA_NUM_THREADS=1. Prints nanoseconds per sample (min of 7 runs).
"""
import sys, time
from pathlib import Path
import numpy as np
from numba import njit
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from kmeans import _kernels
import photos

X_all = photos.mosaic().reshape(-1, 3).astype(np.float64)
centers = X_all[np.random.default_rng(0).choice(len(X_all), 10)] + 0.37


@njit
def nearest_only(x_block, centers, reps):
    """The nearest-centre loop on one block that stays in L1: its arithmetic, without memory traffic."""
    m = x_block.shape[1]
    dist, min_dist, indices = np.empty(m), np.empty(m), np.empty((2, m), dtype=np.int64)
    for _ in range(reps):
        _kernels._nearest_in_block(x_block, m, centers, dist, min_dist, indices)
    return min_dist[0]


def best(f, n=7):
    f()
    times = []
    for _ in range(n):
        start = time.perf_counter()
        f()
        times.append(time.perf_counter() - start)
    return min(times)


block = np.ascontiguousarray(X_all[:_kernels.BLOCK_SIZE].T)
reps = 20000
seconds = best(lambda: nearest_only(block, centers, reps))
print(f"nearest-centre loop in L1: {seconds / (reps * block.shape[1] * len(centers)) * 1e9:.2f} ns per sample and centre")
for n in (1_000_000, 4_000_000, 12_000_000):
    X = np.ascontiguousarray(X_all[:n])
    w, labels = np.ones(n), np.full(n, -1)
    step = best(lambda: _kernels.lloyd_step(X, w, centers, labels))
    assign = best(lambda: _kernels.assign_labels(X, w, centers))
    print(f"{n / 1e6:g} M samples: lloyd_step {step / n * 1e9:.1f} ns per sample, "
          f"assign_labels (new label array) {assign / n * 1e9:.1f} ns per sample")
