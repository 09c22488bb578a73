"""The mixture on dask arrays: EM's sums over row blocks, from arrays and parameters.

Each EM iteration runs the same numba kernel as the in-memory fit
(`_kernels.e_step_sums`) on every row block, on the workers. A block sends
back only N_k, Σ w γ x, Σ w γ (x - μ)² about the current means (the outer
products, for full and tied covariances), and its log-likelihood: K×D (K×D×D) numbers. The client adds them in block order, turns the
scatter into the scatter about the new means (`reference.scatter_about_new_means`)
and runs the M-step. The data is never gathered to one machine.

Initialisation: 'kmeans' runs `kmeans.KMeans` on the dask array (k-means++ on
a uniform sample, then Lloyd's iterations on all rows, see
`kmeans.distributed`); 'k-means++' and 'random_from_data' pick their rows from
a uniform sample (`kmeans.shared.sample_rows`). 'random' would draw a
responsibility for every row and is refused. Given ``weights_init``,
``means_init`` and ``precisions_init``, the start is the in-memory one, and so
is the fit, to rounding.

The estimator runs its own EM loop with `BlockSteps` in place of the kernels;
nothing here sees the estimator. Dask is imported by the `kmeans.shared`
functions called here, only when they run.
"""

import numpy as np

from kmeans import KMeans
from kmeans.distributed import predict_block
from kmeans.shared import check_arrays, check_data, cluster_sums, reduce_blocks, row_blocks, steps_for

from . import _kernels, reference


def _steps(engine):
    return steps_for(engine, _kernels, reference)


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
    return _steps(engine).e_step_sums(np.ascontiguousarray(X), np.ascontiguousarray(sample_weight),
                                       means, precisions, log_weights)


def check_fit_data(X, sample_weight, n_components, init_params, trace, full_init):
    """Dask arrays X and sample_weight checked and chunked for a fit, as `kmeans.shared.check_arrays` gives them.

    ``full_init`` is True when weights_init, means_init and precisions_init are all given.
    """
    if trace:
        raise ValueError("trace=True needs every label at every iteration; fit a NumPy array to trace.")
    if init_params == "random" and not full_init:
        raise ValueError("init_params='random' draws a responsibility for every row; "
                         "with a dask array use 'kmeans', 'k-means++' or 'random_from_data'.")
    X, sample_weight = check_arrays(X, sample_weight)
    if X.shape[0] < 2:
        raise ValueError(f"X has {X.shape[0]} row(s); fitting a mixture needs at least 2.")
    check_data(row_blocks(X, sample_weight), "n_components", n_components, X.shape[0])
    return X, sample_weight


def kmeans_statistics(X, sample_weight, n_components, random_state, engine, outer=False):
    """Sufficient statistics of the k-means start (init_params='kmeans') for dask arrays X and sample_weight.

    ``outer`` gives scatter matrices (full and tied covariances) instead of per-feature scatters.
    """
    kmeans = KMeans(n_clusters=n_components, n_init=1, random_state=random_state, engine=engine)
    centers = kmeans.fit(X, sample_weight=sample_weight).cluster_centers_
    nk, sum_x, sum_dd = reduce_blocks(_cluster_sums_block, row_blocks(X, sample_weight), centers, engine, outer)
    return reference.scatter_about_new_means(nk, sum_x, sum_dd, centers)


def _cluster_sums_block(X, sample_weight, centers, engine, outer):
    """N_k, Σ w x and Σ w (x - c_k)² (or the outer products) of the samples nearest each centre c_k."""
    X, sample_weight = np.ascontiguousarray(X), np.ascontiguousarray(sample_weight)
    return cluster_sums(X, sample_weight, predict_block(X, centers, engine), len(centers), about=centers,
                        outer=outer)


def model_call(method, X, means, precisions, log_weights, engine):
    """``predict``, ``predict_proba`` or ``score_samples`` of a dask array under fitted parameters, lazily."""
    X = check_arrays(X, None)[0]
    if X.shape[1] != means.shape[1]:
        raise ValueError(f"X has {X.shape[1]} features, but the mixture was fitted with {means.shape[1]}.")
    params = (means, precisions, log_weights, engine)
    if method == "predict_proba":
        return X.map_blocks(_call_block, method, *params, chunks=(X.chunks[0], (len(means),)), dtype=np.float64)
    dtype = np.int64 if method == "predict" else np.float64
    return X.map_blocks(_call_block, method, *params, drop_axis=1, dtype=dtype)


def _call_block(X, method, means, precisions, log_weights, engine):
    return getattr(_steps(engine), method)(np.ascontiguousarray(X), means, precisions, log_weights)
