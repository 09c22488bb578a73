"""The floor of GMM predict on the 12 MP mosaic: read the float64 pixels once, write a new int64 label array once.

Run from the repository root, after benchmarks/photos.py has made
benchmarks/results/mosaic12.jpg. With 1 and then 2 numba threads, times, side
by side in rounds: a parallel sum over X (288 MB read), filling a fresh int64
array (96 MB written to pages the kernel has never touched, so every page
faults), filling the same array again (pages already mapped), and predict
(k = 10, diag) row by row and through its colour table. Wall and CPU time
(all threads), medians of 7.
"""
import sys, time
from pathlib import Path
import numba
import numpy as np
from numba import njit, prange
sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from em import _kernels
import photos

CHUNK = _kernels.CHUNK_SIZE


@njit(parallel=True)
def read_all(X):
    """Σ X by chunks: every byte of X read once."""
    n_chunks = (X.shape[0] + CHUNK - 1) // CHUNK
    sums = np.zeros(n_chunks)
    for c in prange(n_chunks):
        for i in range(c * CHUNK, min((c + 1) * CHUNK, X.shape[0])):
            sums[c] += X[i, 0] + X[i, 1] + X[i, 2]
    return sums.sum()


@njit(parallel=True)
def write_all(labels):
    """labels[i] = its chunk index: every byte written once."""
    n_chunks = (labels.shape[0] + CHUNK - 1) // CHUNK
    for c in prange(n_chunks):
        for i in range(c * CHUNK, min((c + 1) * CHUNK, labels.shape[0])):
            labels[i] = c
    return labels


rgb = photos.read_rgb(Path(__file__).resolve().parents[1] / "results" / "mosaic12.jpg")
X = rgb.reshape(-1, 3).astype(np.float64)
rng = np.random.default_rng(0)
means = X[rng.choice(len(X), 10)] + 0.37
precisions, log_weights = 1.0 / rng.uniform(100.0, 900.0, (10, 3)), np.log(np.full(10, 0.1))
reused = np.empty(len(X), dtype=np.int64)
runs = {
    "read X (288 MB)": lambda: read_all(X),
    "write new labels (96 MB, page faults)": lambda: write_all(np.empty(len(X), dtype=np.int64)),
    "write labels again (mapped pages)": lambda: write_all(reused),
    "predict, per row": lambda: _kernels._predict(X, means, precisions, log_weights, np.empty(len(X), dtype=np.int64)),
    "predict (the colour table)": lambda: _kernels.predict(X, means, precisions, log_weights),
}
print(f"X {X.shape} float64, {X.nbytes / 1e6:.0f} MB; load average {np.round(np.array(__import__('os').getloadavg()), 1)}")
for threads in (1, 2):
    numba.set_num_threads(threads)
    for f in runs.values():
        f()  # compile and warm
    wall, cpu = {key: [] for key in runs}, {key: [] for key in runs}
    for _ in range(7):
        for key, f in runs.items():
            w, c = time.perf_counter(), time.process_time()
            f()
            wall[key].append(time.perf_counter() - w)
            cpu[key].append(time.process_time() - c)
    for key in runs:
        print(f"{threads} thread(s)  {key:40s} wall {np.median(wall[key]) * 1e3:6.1f} ms  "
              f"CPU {np.median(cpu[key]) * 1e3:6.1f} ms")
