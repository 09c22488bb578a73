"""The mixture on dask arrays, and image collections on a dask.distributed cluster.

Arrays
------
Each EM iteration runs the same numba kernel as the in-memory fit
(`_kernels.e_step_sums`) on every row block, on the workers. A block sends
back only N_k, Σ w γ x, Σ w γ (x - μ)² about the current means, and its
log-likelihood: K×D numbers. The client adds them in block order, turns the
scatter into the scatter about the new means (`reference.scatter_about_new_means`)
and runs the M-step. The data is never gathered to one machine.

Initialisation: 'kmeans' runs `kmeans.KMeans` on the dask array (k-means++ on
a uniform sample, then Lloyd's iterations on all rows, see
`kmeans.distributed`); 'k-means++' and 'random_from_data' pick their rows from
that sample. 'random' would draw a responsibility for every row and is refused.
Given ``weights_init``, ``means_init`` and ``precisions_init``, the start is
the in-memory one, and so is the fit, to rounding.

This module imports dask; the estimator imports it only when given a dask array.
"""

import contextlib
import warnings

import numpy as np
from sklearn.base import clone
from sklearn.exceptions import ConvergenceWarning

from kmeans import KMeans
from kmeans.distributed import ENGINES as KMEANS_ENGINES
from kmeans.distributed import check_arrays, check_data, reduce_blocks, row_blocks, sample_rows

from . import _kernels, image, reference

ENGINES = {"numba": _kernels, "reference": reference}


# ------------------------------------------------------------------ arrays

class BlockSteps:
    """The ``steps`` of `GaussianMixture._run_em`, computed block by block on the workers."""

    def __init__(self, engine):
        self.engine = engine

    def e_step_stats(self, X, sample_weight, means, precisions, log_weights):
        """`reference.e_step_stats` over every row of the dask arrays X and sample_weight."""
        blocks = row_blocks(X, sample_weight)
        nk, sum_x, sum_dd, log_lik = reduce_blocks(_e_step_block, blocks, means, precisions, log_weights, self.engine)
        return (*reference.scatter_about_new_means(nk, sum_x, sum_dd, means), float(log_lik))


def _e_step_block(X, sample_weight, means, precisions, log_weights, engine):
    """One block's sums: N_k, Σ w γ x, Σ w γ (x - μ)², Σ w log p(x)."""
    return ENGINES[engine].e_step_sums(np.ascontiguousarray(X), np.ascontiguousarray(sample_weight),
                                       means, precisions, log_weights)


def fit_mixture(mixture, X, sample_weight):
    """`GaussianMixture.fit` for a dask array; the parameters were validated by the caller."""
    if mixture.trace:
        raise ValueError("trace=True needs every label at every iteration; fit a NumPy array to trace.")
    if mixture.init_params == "random" and not _has_full_init(mixture):
        raise ValueError("init_params='random' draws a responsibility for every row; "
                         "with a dask array use 'kmeans', 'k-means++' or 'random_from_data'.")
    X, sample_weight = check_arrays(X, sample_weight)
    if X.shape[0] < 2:
        raise ValueError(f"X has {X.shape[0]} row(s); fitting a mixture needs at least 2.")
    mixture.n_features_in_ = X.shape[1]
    check_data(row_blocks(X, sample_weight), mixture.n_components, "n_components")
    return mixture._fit(BlockSteps(mixture.engine), X, sample_weight)


def _has_full_init(mixture):
    return all(value is not None for value in (mixture.weights_init, mixture.means_init, mixture.precisions_init))


def initial_statistics(mixture, X, sample_weight, random_state):
    """Sufficient statistics of the start named by ``init_params``, for dask arrays X and sample_weight."""
    if mixture.init_params != "kmeans":  # 'k-means++' or 'random_from_data': rows picked from a sample
        X_sample, w_sample = sample_rows(X, sample_weight, random_state)
        return mixture._initial_statistics(X_sample, w_sample, random_state)
    kmeans = KMeans(n_clusters=mixture.n_components, n_init=1, random_state=random_state, engine=mixture.engine)
    centers = kmeans.fit(X, sample_weight=sample_weight).cluster_centers_
    nk, sum_x, sum_dd = reduce_blocks(_hard_sums_block, row_blocks(X, sample_weight), centers, mixture.engine)
    return reference.scatter_about_new_means(nk, sum_x, sum_dd, centers)


def _hard_sums_block(X, sample_weight, centers, engine):
    """N_k, Σ w x and Σ w (x - c_k)² of the samples nearest each centre c_k."""
    X, sample_weight = np.ascontiguousarray(X), np.ascontiguousarray(sample_weight)
    labels, _ = KMEANS_ENGINES[engine].assign_labels(X, sample_weight, centers)
    n_components = len(centers)
    nk = np.bincount(labels, weights=sample_weight, minlength=n_components)
    sum_x = np.stack([np.bincount(labels, weights=sample_weight * column, minlength=n_components) for column in X.T], axis=1)
    deviations = (X - centers[labels]) ** 2
    sum_dd = np.stack([np.bincount(labels, weights=sample_weight * column, minlength=n_components)
                       for column in deviations.T], axis=1)
    return nk, sum_x, sum_dd


def model_call(mixture, method, X):
    """``predict``, ``predict_proba`` or ``score_samples`` of a fitted mixture on a dask array, lazily."""
    X = check_arrays(X, None)[0]
    if X.shape[1] != mixture.n_features_in_:
        raise ValueError(f"X has {X.shape[1]} features, but the mixture was fitted with {mixture.n_features_in_}.")
    params = (mixture.means_, mixture.precisions_, np.log(mixture.weights_), mixture.engine)
    if method == "predict_proba":
        return X.map_blocks(_call_block, method, *params, chunks=(X.chunks[0], (mixture.n_components,)), dtype=np.float64)
    dtype = np.int64 if method == "predict" else np.float64
    return X.map_blocks(_call_block, method, *params, drop_axis=1, dtype=dtype)


def _call_block(X, method, means, precisions, log_weights, engine):
    return getattr(ENGINES[engine], method)(np.ascontiguousarray(X), means, precisions, log_weights)


# ------------------------------------------------------------- collections

N_KEYS = 1 << 24  # every RGB8 colour packed as r << 16 | g << 8 | b


def local_cluster(n_workers):
    """A LocalCluster on this machine: ``n_workers`` processes of one thread each, loopback only, no dashboard.

    The numba kernels use the cores a worker is given, so the cores are
    shared out between the workers.
    """
    import os

    from distributed import LocalCluster

    threads = max(1, (os.cpu_count() or 1) // n_workers)
    return LocalCluster(n_workers=n_workers, threads_per_worker=1, processes=True, dashboard_address=None,
                        host="127.0.0.1", env={"NUMBA_NUM_THREADS": str(threads)})


def color_histogram(path, max_pixels):
    """An image's colour histogram, on a worker: packed colour keys (uint32, sorted) and pixel counts (int64)."""
    picture = image.load(path, max_pixels=max_pixels)
    colors, counts, _ = picture.distinct
    keys = colors.astype(np.uint32) @ np.array([1 << 16, 1 << 8, 1], dtype=np.uint32)
    return keys, counts.astype(np.int64)


def paint_file(path, output, model, palette, max_pixels):
    """Paint one image with a fitted model, on a worker, and write it atomically; returns the path written."""
    picture = image.load(path, max_pixels=max_pixels)
    return str(image.save(output, image.paint(image.predict_labels(model, picture), palette), picture.alpha))


def fit_and_paint_file(path, output, model, max_pixels):
    """Fit ``model`` (unfitted) to one image, on a worker, paint it with its mean colours and write it."""
    picture = image.load(path, max_pixels=max_pixels)
    colors, _, _ = picture.distinct
    name = "n_components" if hasattr(model, "n_components") else "n_clusters"
    model = clone(model)
    model.set_params(**{name: min(getattr(model, name), max(len(colors), 1))})  # k at most the image's colours
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        labels = image.fit_labels(model, picture)
    return str(image.save(output, image.paint(labels, image.model_colors(model)), picture.alpha))


def shared_histogram(client, paths, max_pixels, on_done):
    """The colour histogram of every readable image in ``paths``, reduced as the workers finish.

    Returns
    -------
    colors : ndarray of shape (n_colors, 3), float64
        Sorted by packed key, as `image.distinct_colors` sorts them.
    counts : ndarray of shape (n_colors,), float64
    failures : dict
        path -> the error message, for the images that could not be read.
    """
    from distributed import as_completed

    totals = np.zeros(N_KEYS, dtype=np.int64)  # 128 MiB whatever the collection's size
    failures = {}
    futures = {client.submit(_reported, color_histogram, path, max_pixels, pure=False): path for path in paths}
    for future in as_completed(futures):
        ok, result = future.result()
        if ok:
            keys, counts = result
            totals[keys] += counts  # keys are distinct within one image; integer sums are exact in any order
        else:
            failures[futures[future]] = result
        on_done()
    keys = np.flatnonzero(totals)
    colors = np.stack([keys >> 16, (keys >> 8) & 255, keys & 255], axis=1).astype(np.float64)
    return colors, totals[keys].astype(np.float64), failures


def run_on_workers(client, function, paths, outputs, *args, on_done):
    """``function(path, output, *args)`` for each image on the workers; returns (paths written, failures)."""
    from distributed import as_completed

    futures = {client.submit(_reported, function, path, output, *args, pure=False): path
               for path, output in zip(paths, outputs)}
    written, failures = {}, {}
    for future in as_completed(futures):
        ok, result = future.result()
        (written if ok else failures)[futures[future]] = result
        on_done()
    return [written[path] for path in paths if path in written], failures


def _reported(function, path, *args):
    """(True, ``function(path, *args)``), or (False, the error message): a bad file is reported, not raised.

    Runs on the workers. Returning the failure rather than raising it keeps
    the workers' logs quiet; a worker that dies is still retried by dask.
    """
    try:
        return True, function(path, *args)
    except Exception as error:  # any failure of one file; the other files go on
        return False, _message(path, error)


def _message(path, error):
    """The error as one line that names the file."""
    message = str(error) or type(error).__name__
    return message if str(path) in message else f"{path}: {message}"


@contextlib.contextmanager
def connect(scheduler=None, n_workers=2):
    """A Client of the cluster at ``scheduler``, or of a new `local_cluster` of ``n_workers``, closed on exit."""
    from distributed import Client

    if scheduler:
        with Client(scheduler, timeout="20s") as client:
            yield client
    else:
        with local_cluster(n_workers) as cluster, Client(cluster) as client:
            yield client
