"""KMeans on dask arrays, and the block-wise reduction that the mixture shares.

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

This module imports dask; the estimators import it only when given a dask array.
"""

import functools

import dask
import dask.array as da
import numpy as np
from sklearn.utils import check_random_state

from . import _kernels, reference
from .estimator import _check_n_clusters, _Run, is_dask_array

SAMPLE_SIZE = 100_000  # rows drawn to seed k-means++ on a dask array
ENGINES = {"numba": _kernels, "reference": reference}


# ------------------------------------------------------------ shared with em

def check_arrays(X, sample_weight):
    """X as float64 with one chunk across the columns, and weights chunked as its rows.

    Parameters
    ----------
    X : dask array of shape (n_samples, n_features)
    sample_weight : dask array, array-like of shape (n_samples,) or None

    Returns
    -------
    X : dask array of shape (n_samples, n_features), float64
    sample_weight : dask array of shape (n_samples,), float64
    """
    if X.ndim != 2:
        raise ValueError(f"X must be 2-D, got a dask array of shape {X.shape}.")
    if X.dtype.kind not in "iuf":
        raise TypeError(f"X must be numeric; got a dask array of dtype {X.dtype}.")
    if any(np.isnan(size) for size in X.chunks[0]):
        raise ValueError("X has unknown chunk sizes; call X.compute_chunk_sizes() first.")
    X = X.astype(np.float64).rechunk({1: -1})
    if sample_weight is None:
        return X, da.ones(X.shape[0], chunks=(X.chunks[0],))
    if not is_dask_array(sample_weight):
        sample_weight = da.from_array(np.asarray(sample_weight))
    if sample_weight.shape != (X.shape[0],):
        raise ValueError(f"sample_weight has shape {sample_weight.shape}; expected ({X.shape[0]},), one weight per row of X.")
    return X, sample_weight.astype(np.float64).rechunk((X.chunks[0],))


def row_blocks(X, sample_weight):
    """The (X block, weight block) pairs as delayed objects, in row order."""
    return list(zip(X.to_delayed().ravel(), sample_weight.to_delayed().ravel()))


def reduce_blocks(function, blocks, *args):
    """``function(x, w, *args)`` on every block, on the workers; the outputs summed in block order.

    ``function`` returns a tuple of arrays or numbers. The sum runs on the
    client from the first block to the last, so the result does not depend on
    which worker finished first.
    """
    tasks = [dask.delayed(function, pure=True)(x, w, *args) for x, w in blocks]
    parts = dask.compute(*tasks, scheduler=_scheduler())
    return tuple(functools.reduce(np.add, column) for column in zip(*parts))


def _scheduler():
    """None (the configured one, such as a dask.distributed Client), else one block at a time.

    The numba kernels are parallel already; dask's thread pool would call them
    from several threads at once, which numba's default threading layer forbids.
    """
    return None if dask.config.get("scheduler", None) else "sync"


def data_summary(blocks):
    """Rows with NaN or inf, positive weights, bad weights, total weight, over all blocks."""
    n_nonfinite, n_positive, n_bad_weights, total_weight = reduce_blocks(_summary_block, blocks)
    return int(n_nonfinite), int(n_positive), int(n_bad_weights), float(total_weight)


def _summary_block(X, sample_weight):
    bad_weights = ~np.isfinite(sample_weight) | (sample_weight < 0)
    return (np.count_nonzero(~np.isfinite(X).all(axis=1)), np.count_nonzero(sample_weight > 0),
            np.count_nonzero(bad_weights), sample_weight.sum())


def check_data(blocks, n_components, name):
    """Raise ValueError for NaN or inf in X, bad weights, or fewer positive weights than ``name``; return the total weight."""
    n_nonfinite, n_positive, n_bad_weights, total_weight = data_summary(blocks)
    if n_nonfinite:
        raise ValueError(f"X contains NaN or inf in {n_nonfinite} row(s); drop or impute them before calling fit.")
    if n_bad_weights:
        raise ValueError(f"sample_weight has {n_bad_weights} negative, NaN or inf value(s); weights must be finite and >= 0.")
    if n_components > n_positive:
        raise ValueError(
            f"{name}={n_components} exceeds the {n_positive} samples with positive weight; "
            "use fewer or give more samples a positive sample_weight."
        )
    return total_weight


def sample_rows(X, sample_weight, random_state, size=SAMPLE_SIZE):
    """A uniform sample of the rows, as NumPy arrays; all rows, with no draw, when there are at most ``size``."""
    if X.shape[0] <= size:
        return np.ascontiguousarray(X.compute()), np.ascontiguousarray(sample_weight.compute())
    rows = np.unique(random_state.randint(0, X.shape[0], size=size))  # sorted, so dask reads each block once
    X_sample, w_sample = dask.compute(X[rows], sample_weight[rows])
    return np.ascontiguousarray(X_sample), np.ascontiguousarray(w_sample)


# ------------------------------------------------------------------ KMeans

def fit_kmeans(kmeans, X, sample_weight):
    """`KMeans.fit` for a dask array: Lloyd's iterations as block-wise sums, reduced on the client."""
    if kmeans.trace:
        raise ValueError("trace=True needs every label at every iteration; fit a NumPy array to trace.")
    X, sample_weight = check_arrays(X, sample_weight)
    kmeans.n_features_in_ = X.shape[1]
    blocks = row_blocks(X, sample_weight)
    total_weight = check_data(blocks, kmeans.n_clusters, "n_clusters")
    steps, init, n_init = kmeans._check_params(X)
    random_state = check_random_state(kmeans.random_state)
    tol = _tolerance(blocks, total_weight, kmeans.tol)
    best = None
    for _ in range(n_init):
        if isinstance(init, str):
            X_sample, w_sample = sample_rows(X, sample_weight, random_state)
            _check_n_clusters(kmeans.n_clusters, w_sample)
            centers = kmeans._init_centers(X_sample, init, w_sample, random_state, steps)
        else:
            centers = init
        run = lloyd(blocks, centers, kmeans.max_iter, tol, kmeans.engine, kmeans.verbose, kmeans.callback)
        if best is None or run.inertia < best.inertia:
            best = run
    kmeans.cluster_centers_, kmeans.inertia_, kmeans.n_iter_ = best.centers, best.inertia, best.n_iter
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

    Returns a run with ``labels=None``: the labels stay on the workers.
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
    return _Run(centers, None, float(inertia), n_iter, None)


def _lloyd_block(X, sample_weight, centers, engine):
    """One block's share of a Lloyd step: centre sums, cluster weights, inertia, positive-weight members."""
    X, sample_weight = np.ascontiguousarray(X), np.ascontiguousarray(sample_weight)
    labels = np.empty(len(X), dtype=np.int64)  # no convergence test on labels here: they are never gathered
    sum_x, nk, inertia, _ = ENGINES[engine].lloyd_step(X, sample_weight, centers, labels)
    n_members = np.bincount(labels[sample_weight > 0], minlength=len(centers))
    return sum_x, nk, inertia, n_members


def _inertia_block(X, sample_weight, centers, engine):
    return (ENGINES[engine].assign_labels(np.ascontiguousarray(X), np.ascontiguousarray(sample_weight), centers)[1],)


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
    tasks = [dask.delayed(_farthest_block, pure=True)(x, w, centers, n_empty, engine) for x, w in blocks]
    parts = dask.compute(*tasks, scheduler=_scheduler())
    X_far, w_far, labels_far = (np.concatenate(column) for column in zip(*parts))
    return reference.update_centers(X_far, w_far, centers, labels_far, sum_x, nk, n_members=n_members)


def _farthest_block(X, sample_weight, centers, n_far, engine):
    """The block's ``n_far`` positive-weight samples farthest from their centres: rows, weights, labels."""
    X, sample_weight = np.ascontiguousarray(X), np.ascontiguousarray(sample_weight)
    labels, _ = ENGINES[engine].assign_labels(X, sample_weight, centers)
    rows = reference.farthest_samples(X, sample_weight, centers, labels, min(n_far, len(X)))
    rows = rows[sample_weight[rows] > 0]
    return X[rows], sample_weight[rows], labels[rows]


def predict(centers, X, engine):
    """Nearest centre of each row of a dask array, as a dask array of int64."""
    X = check_arrays(X, None)[0]
    return X.map_blocks(_predict_block, centers, engine, drop_axis=1, dtype=np.int64)


def _predict_block(X, centers, engine):
    X = np.ascontiguousarray(X)
    return ENGINES[engine].assign_labels(X, np.ones(len(X)), centers)[0]
