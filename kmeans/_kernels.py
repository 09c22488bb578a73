"""Numba versions of the steps in `kmeans.reference`: same names, same arguments.

Parallel by chunks. Each public kernel cuts the samples into chunks of
``CHUNK_SIZE``; the number of chunks depends only on ``n_samples``. A
``prange`` over chunk indices hands each chunk to a plain (serial) function
that writes only that chunk's rows: its labels, its row of the per-chunk sums.
Chunks are handed to the threads one at a time (`shared.dynamic_chunks`).
After the parallel loop the rows are summed in chunk order. The result is
therefore bit-identical for any number of threads.

Vectorised within a chunk. Samples are copied in blocks of ``BLOCK_SIZE`` to a
feature-major buffer; then, for each centre, a loop over the block's samples
computes the squared distances and keeps the running minimum. That loop over
samples is the innermost one, so LLVM vectorises it. Three features (RGB) get
their own fixed-size path; any other number of features takes the general one.

To debug, call ``kernel.py_func(...)`` or run with ``NUMBA_DISABLE_JIT=1``.
"""

import numpy as np
from numba import njit, prange

from .shared import chunk_bounds, count_chunks, dynamic_chunks

# fastmath stays off so results match the reference; set cache=False here if
# cached parallel functions ever crash (seen on some numba versions).
JIT_OPTIONS = dict(cache=True, fastmath=False)

# samples per parallel chunk: fixed by the data size, never by the thread count
CHUNK_SIZE = 2048
# samples per vectorised inner loop; the block's buffers (5 KB for RGB) stay in L1
BLOCK_SIZE = 128
# rows per parallel chunk of `first_rows_reaching`'s running sum
SEARCH_CHUNK = 1 << 15


# ---------------------------------------------------------------- blocks


@njit(**JIT_OPTIONS)
def _load_block(X, start, stop, x_block):
    """Copy samples ``start..stop-1`` of X into ``x_block[:, :stop - start]``, feature-major."""
    if X.shape[1] == 3:  # RGB: no inner loop
        for j in range(stop - start):
            x_block[0, j] = X[start + j, 0]
            x_block[1, j] = X[start + j, 1]
            x_block[2, j] = X[start + j, 2]
        return
    for j in range(stop - start):
        for d in range(X.shape[1]):
            x_block[d, j] = X[start + j, d]


@njit(**JIT_OPTIONS)
def _block_sq_dist(x_block, m, center, dist):
    """``dist[j] = ||x_j - center||²`` for the first ``m`` samples of the block.

    Both paths add the squared differences in feature order, so they round
    identically.
    """
    if x_block.shape[0] == 3:  # RGB: fixed-size arithmetic
        x0, x1, x2 = x_block[0], x_block[1], x_block[2]
        c0, c1, c2 = center[0], center[1], center[2]
        for j in range(m):
            t0 = x0[j] - c0
            t1 = x1[j] - c1
            t2 = x2[j] - c2
            dist[j] = t0 * t0 + t1 * t1 + t2 * t2
        return
    for j in range(m):
        dist[j] = 0.0
    for d in range(x_block.shape[0]):
        x_d, c_d = x_block[d], center[d]
        for j in range(m):
            t = x_d[j] - c_d
            dist[j] += t * t


@njit(**JIT_OPTIONS)
def _nearest_in_block(x_block, m, centers, dist, min_dist, indices):
    """Nearest centre of the first ``m`` samples of the block.

    Fills ``min_dist[:m]`` with the squared distance to the nearest centre and
    returns the row of ``indices`` (shape (2, BLOCK_SIZE)) that holds the
    index of that centre. Ties go to the lowest index (strict ``<``), as in
    scikit-learn. ``dist`` is scratch space.

    Each pass over the block reads the indices so far from one row and writes
    them to the other. Written in place, ``nearest[j] = k if ... else
    nearest[j]`` becomes a masked store (LLVM drops the store where nothing
    changes), which AMD Zen 3 runs slowly; written to the other row, it is a
    blend and a plain store.
    """
    nearest, updated = indices[0], indices[1]
    for j in range(m):
        min_dist[j] = np.inf
        nearest[j] = 0
    n_clusters = centers.shape[0]
    if x_block.shape[0] == 3:
        # RGB: the sums of _block_sq_dist stay in registers instead of dist[],
        # and each pass takes two centres, k and l, so the block is read half
        # as often. This loop is most of a Lloyd step's time.
        x0, x1, x2 = x_block[0], x_block[1], x_block[2]
        for k in range(0, n_clusters, 2):
            l = min(k + 1, n_clusters - 1)  # for an odd count, the last centre twice: a no-op
            a0, a1, a2 = centers[k, 0], centers[k, 1], centers[k, 2]
            b0, b1, b2 = centers[l, 0], centers[l, 1], centers[l, 2]
            for j in range(m):
                t0, t1, t2 = x0[j] - a0, x1[j] - a1, x2[j] - a2
                d_kj = t0 * t0 + t1 * t1 + t2 * t2
                t0, t1, t2 = x0[j] - b0, x1[j] - b1, x2[j] - b2
                d_lj = t0 * t0 + t1 * t1 + t2 * t2
                closest = min_dist[j]
                best = k if d_kj < closest else nearest[j]  # selects, so the loop vectorises
                closest = min(d_kj, closest)
                updated[j] = l if d_lj < closest else best
                min_dist[j] = min(d_lj, closest)
            nearest, updated = updated, nearest
        return nearest
    for k in range(n_clusters):
        _block_sq_dist(x_block, m, centers[k], dist)
        for j in range(m):
            closest = min_dist[j]
            updated[j] = k if dist[j] < closest else nearest[j]
            min_dist[j] = min(dist[j], closest)
        nearest, updated = updated, nearest
    return nearest


# ---------------------------------------------------------------- one chunk (serial)


@njit(**JIT_OPTIONS)
def _lloyd_chunk(X, sample_weight, centers, labels, sum_x, nk):
    """`lloyd_step` on one chunk: updates ``labels``, fills ``sum_x``, ``nk``; returns (inertia, labels changed)."""
    n_samples, n_features = X.shape
    x_block = np.empty((n_features, BLOCK_SIZE), dtype=np.float64)
    dist = np.empty(BLOCK_SIZE, dtype=np.float64)
    min_dist = np.empty(BLOCK_SIZE, dtype=np.float64)
    indices = np.empty((2, BLOCK_SIZE), dtype=np.int64)
    sum_x[:, :] = 0.0
    nk[:] = 0.0
    inertia = 0.0
    n_changed = 0
    for start in range(0, n_samples, BLOCK_SIZE):
        stop = min(start + BLOCK_SIZE, n_samples)
        _load_block(X, start, stop, x_block)
        nearest = _nearest_in_block(x_block, stop - start, centers, dist, min_dist, indices)
        for j in range(stop - start):
            k, w = nearest[j], sample_weight[start + j]
            n_changed += labels[start + j] != k
            labels[start + j] = k
            nk[k] += w
            if n_features == 3:  # RGB: no inner loop
                sum_x[k, 0] += w * x_block[0, j]
                sum_x[k, 1] += w * x_block[1, j]
                sum_x[k, 2] += w * x_block[2, j]
            else:
                for d in range(n_features):
                    sum_x[k, d] += w * x_block[d, j]
            inertia += w * min_dist[j]
    return inertia, n_changed


@njit(**JIT_OPTIONS)
def _assign_chunk(X, sample_weight, centers, labels):
    """`assign_labels` on one chunk: fills ``labels``; returns the inertia."""
    n_samples, n_features = X.shape
    x_block = np.empty((n_features, BLOCK_SIZE), dtype=np.float64)
    dist = np.empty(BLOCK_SIZE, dtype=np.float64)
    min_dist = np.empty(BLOCK_SIZE, dtype=np.float64)
    indices = np.empty((2, BLOCK_SIZE), dtype=np.int64)
    inertia = 0.0
    for start in range(0, n_samples, BLOCK_SIZE):
        stop = min(start + BLOCK_SIZE, n_samples)
        _load_block(X, start, stop, x_block)
        nearest = _nearest_in_block(x_block, stop - start, centers, dist, min_dist, indices)
        for j in range(stop - start):
            labels[start + j] = nearest[j]
            inertia += sample_weight[start + j] * min_dist[j]
    return inertia


@njit(**JIT_OPTIONS)
def _sq_dist_chunk(X, centers, sq_dist):
    """`squared_distances` on one chunk: fills ``sq_dist``."""
    n_samples, n_features = X.shape
    x_block = np.empty((n_features, BLOCK_SIZE), dtype=np.float64)
    dist = np.empty(BLOCK_SIZE, dtype=np.float64)
    for start in range(0, n_samples, BLOCK_SIZE):
        stop = min(start + BLOCK_SIZE, n_samples)
        _load_block(X, start, stop, x_block)
        for k in range(centers.shape[0]):
            _block_sq_dist(x_block, stop - start, centers[k], dist)
            for j in range(stop - start):
                sq_dist[start + j, k] = dist[j]


@njit(**JIT_OPTIONS)
def _candidates_chunk(X, sample_weight, closest_dist_sq, candidates, closest_dist_sq_with, potentials):
    """`evaluate_candidates` on one chunk: fills ``closest_dist_sq_with`` and ``potentials``."""
    n_samples, n_features = X.shape
    x_block = np.empty((n_features, BLOCK_SIZE), dtype=np.float64)
    dist = np.empty(BLOCK_SIZE, dtype=np.float64)
    potentials[:] = 0.0
    for start in range(0, n_samples, BLOCK_SIZE):
        stop = min(start + BLOCK_SIZE, n_samples)
        _load_block(X, start, stop, x_block)
        for t in range(candidates.shape[0]):
            _block_sq_dist(x_block, stop - start, candidates[t], dist)
            potential = 0.0  # a local sum: adding into potentials[t] would go through memory
            for j in range(stop - start):
                i = start + j
                closest = min(closest_dist_sq[i], dist[j])
                closest_dist_sq_with[t, i] = closest
                potential += sample_weight[i] * closest
            potentials[t] += potential


# ---------------------------------------------------------------- in chunk order


@njit(**JIT_OPTIONS)
def _sum_rows(per_chunk):
    """Sum the per-chunk rows (first axis) one after another, in chunk order.

    Kept out of the parallel kernels, where numba could turn a ``sum(axis=0)``
    into a parallel reduction whose rounding depends on the thread count.
    """
    total = per_chunk[0].copy()
    for c in range(1, per_chunk.shape[0]):
        total += per_chunk[c]
    return total


@njit(**JIT_OPTIONS)
def _sum_in_order(per_chunk):
    """Sum a 1-D array of per-chunk values sequentially, in chunk order."""
    total = 0.0
    for value in per_chunk:
        total += value
    return total


# ---------------------------------------------------------------- public kernels


@dynamic_chunks
@njit(parallel=True, **JIT_OPTIONS)
def lloyd_step(X, sample_weight, centers, labels):
    """Numba version of `reference.lloyd_step`: assign and sum in one pass.

    Parameters
    ----------
    X : ndarray of shape (n_samples, n_features)
    sample_weight : ndarray of shape (n_samples,)
    centers : ndarray of shape (n_clusters, n_features)
    labels : ndarray of shape (n_samples,), int64
        The previous labels (-1 before the first step), overwritten with the new ones.

    Returns
    -------
    sum_x : ndarray of shape (n_clusters, n_features)
    nk : ndarray of shape (n_clusters,)
    inertia : float
    n_changed : int
    """
    n_samples = X.shape[0]
    n_clusters, n_features = centers.shape
    n_chunks = count_chunks(n_samples, CHUNK_SIZE)
    # one row per chunk; np.empty, as np.zeros would add a parallel region per call
    sum_x = np.empty((n_chunks, n_clusters, n_features), dtype=np.float64)
    nk = np.empty((n_chunks, n_clusters), dtype=np.float64)
    inertia = np.empty(n_chunks, dtype=np.float64)
    n_changed = np.empty(n_chunks, dtype=np.int64)
    for c in prange(n_chunks):
        start, stop = chunk_bounds(c, n_samples, CHUNK_SIZE)
        inertia[c], n_changed[c] = _lloyd_chunk(
            X[start:stop], sample_weight[start:stop], centers, labels[start:stop], sum_x[c], nk[c]
        )
    return _sum_rows(sum_x), _sum_rows(nk), _sum_in_order(inertia), n_changed.sum()


@dynamic_chunks
@njit(parallel=True, **JIT_OPTIONS)
def assign_labels(X, sample_weight, centers):
    """Numba version of `reference.assign_labels`.

    Parameters
    ----------
    X : ndarray of shape (n_samples, n_features)
    sample_weight : ndarray of shape (n_samples,)
    centers : ndarray of shape (n_clusters, n_features)

    Returns
    -------
    labels : ndarray of shape (n_samples,), int64
    inertia : float
    """
    n_samples = X.shape[0]
    n_chunks = count_chunks(n_samples, CHUNK_SIZE)
    labels = np.empty(n_samples, dtype=np.int64)
    inertia = np.empty(n_chunks, dtype=np.float64)
    for c in prange(n_chunks):
        start, stop = chunk_bounds(c, n_samples, CHUNK_SIZE)
        inertia[c] = _assign_chunk(X[start:stop], sample_weight[start:stop], centers, labels[start:stop])
    return labels, _sum_in_order(inertia)


@dynamic_chunks
@njit(parallel=True, **JIT_OPTIONS)
def squared_distances(X, centers):
    """Numba version of `reference.squared_distances`.

    Parameters
    ----------
    X : ndarray of shape (n_samples, n_features)
    centers : ndarray of shape (n_clusters, n_features)

    Returns
    -------
    sq_dist : ndarray of shape (n_samples, n_clusters)
    """
    n_samples = X.shape[0]
    n_chunks = count_chunks(n_samples, CHUNK_SIZE)
    sq_dist = np.empty((n_samples, centers.shape[0]), dtype=np.float64)
    for c in prange(n_chunks):
        start, stop = chunk_bounds(c, n_samples, CHUNK_SIZE)
        _sq_dist_chunk(X[start:stop], centers, sq_dist[start:stop])
    return sq_dist


@dynamic_chunks
@njit(parallel=True, **JIT_OPTIONS)
def evaluate_candidates(X, sample_weight, closest_dist_sq, candidates):
    """Numba version of `reference.evaluate_candidates`.

    Parameters
    ----------
    X : ndarray of shape (n_samples, n_features)
    sample_weight, closest_dist_sq : ndarray of shape (n_samples,)
    candidates : ndarray of shape (n_candidates, n_features)

    Returns
    -------
    closest_dist_sq_with : ndarray of shape (n_candidates, n_samples)
    potentials : ndarray of shape (n_candidates,)
    """
    n_samples = X.shape[0]
    n_candidates = candidates.shape[0]
    n_chunks = count_chunks(n_samples, CHUNK_SIZE)
    closest_dist_sq_with = np.empty((n_candidates, n_samples), dtype=np.float64)
    potentials = np.empty((n_chunks, n_candidates), dtype=np.float64)
    for c in prange(n_chunks):
        start, stop = chunk_bounds(c, n_samples, CHUNK_SIZE)
        _candidates_chunk(
            X[start:stop],
            sample_weight[start:stop],
            closest_dist_sq[start:stop],
            candidates,
            closest_dist_sq_with[:, start:stop],
            potentials[c],
        )
    return closest_dist_sq_with, _sum_rows(potentials)


@njit(parallel=True, **JIT_OPTIONS)
def first_rows_reaching(inverse, sample_weight, values, targets):
    """Numba version of `reference.first_rows_reaching`, for sums that are exact in any order.

    Each chunk of rows is summed in parallel, the chunk totals run up to find
    the chunk where each target is reached, and only that chunk is scanned row
    by row. This adds in another order than ``np.cumsum``; the two agree exactly
    when every partial sum is an integer below 2**53, as on the distinct rows
    of k-means++ (`estimator._exact_potentials`), where it is used.
    """
    n_samples = inverse.shape[0]
    n_chunks = count_chunks(n_samples, SEARCH_CHUNK)
    totals = np.empty(n_chunks, dtype=np.float64)
    for c in prange(n_chunks):
        start, stop = chunk_bounds(c, n_samples, SEARCH_CHUNK)
        total = 0.0
        for i in range(start, stop):
            total += sample_weight[i] * values[inverse[i]]
        totals[c] = total
    rows = np.full(targets.shape[0], n_samples, dtype=np.int64)
    for t in range(targets.shape[0]):
        before = 0.0  # the sum of the chunks before chunk c
        for c in range(n_chunks):
            if before + totals[c] >= targets[t]:
                start, stop = chunk_bounds(c, n_samples, SEARCH_CHUNK)
                for i in range(start, stop):
                    before += sample_weight[i] * values[inverse[i]]
                    if before >= targets[t]:
                        rows[t] = i
                        break
                break
            before += totals[c]
    return rows
