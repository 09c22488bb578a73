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

import numpy as np

from kmeans import KMeans
from kmeans.distributed import check_arrays, check_data, reduce_blocks, row_blocks, sample_rows

from . import _kernels, reference

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
    from kmeans.distributed import ENGINES as KMEANS_ENGINES

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
