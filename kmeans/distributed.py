"""KMeans on dask arrays: Lloyd's iterations as sums over row blocks (`shared` holds the block plumbing).

Each Lloyd iteration runs the same kernel as the in-memory fit on every row
block, on the workers; a block sends back only its K×D sums (centre sums,
weights in each cluster, inertia). The client adds them in block order, so a
run is reproducible, and moves the centres. The data is never gathered.

Initialisation: 'k-means++' and 'random' run on a uniform sample of at most
``SAMPLE_SIZE`` rows (drawn with replacement, duplicates dropped), weighted by
``sample_weight``. When the array has no more rows than that, the sample is
the whole array and no draw is made, so the start is exactly the in-memory
one. An ``init`` array is used as is.

Differences from the in-memory fit, from rounding only: sums are added per
block and then across blocks, so centres can differ in the last digits; and
a run stops on the centre shift alone (when the labels do not change, the
shift is exactly 0, so it stops at the same iteration). Of ``n_init`` runs the
one with the lowest inertia is kept.

Dask is imported by the `shared` functions this module calls, only when it runs.
"""

import numpy as np

from . import _kernels, reference
from .shared import (check_arrays, check_data, check_k, check_random_state, map_blocks, reduce_blocks, row_blocks,
                     sample_rows, steps_for)


# ------------------------------------------------------------------ KMeans

def fit_kmeans(kmeans, X, sample_weight):
    """`KMeans.fit` for a dask array: Lloyd's iterations as block-wise sums, reduced on the client."""
    if kmeans.trace:
        raise ValueError("trace=True needs every label at every iteration; fit a NumPy array to trace.")
    X, sample_weight = check_arrays(X, sample_weight)
    kmeans.n_features_in_ = X.shape[1]
    blocks = row_blocks(X, sample_weight)
    total_weight = check_data(blocks, "n_clusters", kmeans.n_clusters, X.shape[0])
    steps, init, n_init = kmeans._check_params(X)
    random_state = check_random_state(kmeans.random_state)
    tol = _tolerance(blocks, total_weight, kmeans.tol)
    best = None
    for _ in range(n_init):
        if isinstance(init, str):
            X_sample, w_sample = sample_rows(X, sample_weight, random_state)
            check_k("n_clusters", kmeans.n_clusters, len(w_sample), np.count_nonzero(w_sample))
            centers = kmeans._init_centers(X_sample, init, w_sample, random_state, steps)
        else:
            centers = init
        centers, inertia, n_iter = lloyd(blocks, centers, kmeans.max_iter, tol, kmeans.engine, kmeans.verbose,
                                         kmeans.callback)
        if best is None or inertia < best[1]:
            best = centers, inertia, n_iter
    kmeans.cluster_centers_, kmeans.inertia_, kmeans.n_iter_ = best
    kmeans.labels_ = predict(kmeans.cluster_centers_, X, kmeans.engine)
    kmeans._n_features_out = kmeans.n_clusters
    return kmeans


def _tolerance(blocks, total_weight, tol):
    """`estimator._tolerance` in two passes over the blocks: the weighted mean, then the variances about it."""
    if tol == 0:
        return 0.0
    (sum_x,) = reduce_blocks(_weighted_sum_block, blocks)
    (sum_dd,) = reduce_blocks(_scatter_block, blocks, sum_x / total_weight)
    return float(np.mean(sum_dd / total_weight) * tol)


def _weighted_sum_block(X, sample_weight):
    return (sample_weight @ X,)


def _scatter_block(X, sample_weight, mean):
    return (sample_weight @ (X - mean) ** 2,)


def lloyd(blocks, centers, max_iter, tol, engine, verbose=0, callback=None):
    """Lloyd's algorithm from ``centers`` over row blocks; stops when the squared centre shift is at most ``tol``.

    Returns (centers, inertia, n_iter); the labels stay on the workers.
    """
    for n_iter in range(1, max_iter + 1):
        sum_x, nk, inertia, n_members = reduce_blocks(_lloyd_block, blocks, centers, engine)
        new_centers = _update_centers(blocks, centers, sum_x, nk, n_members, engine)
        center_shift_sq = ((new_centers - centers) ** 2).sum()
        centers = new_centers
        if verbose:
            print(f"Iteration {n_iter - 1}, inertia {inertia}.")
        if callback is not None:
            callback(n_iter, inertia)
        if center_shift_sq <= tol:
            break
    (inertia,) = reduce_blocks(_inertia_block, blocks, centers, engine)
    return centers, float(inertia), n_iter


def _lloyd_block(X, sample_weight, centers, engine):
    """One block's share of a Lloyd step: centre sums, cluster weights, inertia, positive-weight members."""
    X, sample_weight = np.ascontiguousarray(X), np.ascontiguousarray(sample_weight)
    labels = np.empty(len(X), dtype=np.int64)  # no convergence test on labels here: they are never gathered
    sum_x, nk, inertia, _ = _steps(engine).lloyd_step(X, sample_weight, centers, labels)
    n_members = np.bincount(labels[sample_weight > 0], minlength=len(centers))
    return sum_x, nk, inertia, n_members


def _inertia_block(X, sample_weight, centers, engine):
    return (_steps(engine).assign_labels(np.ascontiguousarray(X), np.ascontiguousarray(sample_weight), centers)[1],)


def _update_centers(blocks, centers, sum_x, nk, n_members, engine):
    """`reference.update_centers` when each block holds only some of the rows.

    An empty cluster takes one of the samples farthest from their centres.
    Each block sends its own ``n_empty`` farthest samples; the farthest overall
    are among them. Among exactly equal distances the pick may differ from the
    in-memory fit's.
    """
    n_empty = int(np.count_nonzero(nk == 0))
    if n_empty == 0:
        return sum_x / nk[:, None]
    parts = map_blocks(_farthest_block, blocks, centers, n_empty, engine)
    X_far, w_far, labels_far = (np.concatenate(column) for column in zip(*parts))
    return reference.update_centers(X_far, w_far, centers, labels_far, sum_x, nk, n_members=n_members)


def _farthest_block(X, sample_weight, centers, n_far, engine):
    """The block's ``n_far`` positive-weight samples farthest from their centres: rows, weights, labels."""
    X, sample_weight = np.ascontiguousarray(X), np.ascontiguousarray(sample_weight)
    labels, _ = _steps(engine).assign_labels(X, sample_weight, centers)
    rows = reference.farthest_samples(X, sample_weight, centers, labels, min(n_far, len(X)))
    rows = rows[sample_weight[rows] > 0]
    return X[rows], sample_weight[rows], labels[rows]


def _steps(engine):
    return steps_for(engine, _kernels, reference)


def predict(centers, X, engine):
    """Nearest centre of each row of a dask array, as a dask array of int64."""
    X = check_arrays(X, None)[0]
    return X.map_blocks(predict_block, centers, engine, drop_axis=1, dtype=np.int64)


def predict_block(X, centers, engine):
    """Nearest centre of each row of one NumPy block, int64; the mixture's k-means start uses it too."""
    X = np.ascontiguousarray(X)
    return _steps(engine).assign_labels(X, np.ones(len(X)), centers)[0]
