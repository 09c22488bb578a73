r"""Choosing the number of components and the covariance type by an information criterion.

`select_model` fits one `GaussianMixture` per (covariance type, k) and scores
each on the data it was fitted to:

.. math::
    \mathrm{BIC} = -2 \log L + p \log N, \qquad
    \mathrm{AIC} = -2 \log L + 2p, \qquad
    \mathrm{ICL} = \mathrm{BIC} - 2 \sum_n w_n \sum_k \gamma_{nk} \log \gamma_{nk}

with :math:`\log L = \sum_n w_n \log p(x_n)`, :math:`N = \sum_n w_n` (so a
colour counted w times weighs as w pixels, and the result equals the fit on
every pixel) and p from ``GaussianMixture._n_parameters``. ICL (Biernacki,
Celeux & Govaert 2000) adds the entropy of the responsibilities, which
penalises overlapping components. Lower is better.

Work reused between neighbouring k (``warm_start=True``, the default): for
each covariance type the first k tried starts from the estimator's own init
(k-means); each later k starts from the fit of the k before it
(`split_start`), its widest components each split in two along their
principal axis, and runs EM to the same ``tol`` from there. Such a row is the
EM fit from that start, not the one ``GaussianMixture(k).fit`` gives from
k-means: another local optimum, usually as good and reached in far fewer
iterations. Its ``warm_started`` flag says so. ``warm_start=False`` fits every
row from its own k-means start, as a user's own ``GaussianMixture(k).fit``
would.

The covariance types are independent of each other, so their chains of fits
can run at the same time, one Python thread each (the kernels release the
GIL), each kernel on one numba thread, rather than one chain after another with
every kernel split over all threads. A chain left alone takes the threads the
finished ones gave back. The rows are the same bit for bit: no kernel's result
depends on its thread count. This pays only when the OpenMP runtime's threads
sleep between kernels (``OMP_WAIT_POLICY=PASSIVE``, which the ``emseg`` command
sets): numba runs a one-thread kernel on a team of all its threads, the others
masked, and GNU OpenMP's default keeps them spinning, so two chains at once
keep four threads busy on two cores. On china.jpg's 96,615 colours, k = 2..16,
the four types, quiet 2-core machine (`benchmarks/selection.py`, medians of
3, before round three's faster passes): one type after another 3.76 s (spinning)
or 3.84 s (asleep); at the same time 3.23 s asleep, but 4.72 s spinning (now
2.00 / 2.29 / 1.90 / 2.73 s). So by default the types run at the same time only
when ``OMP_WAIT_POLICY`` is PASSIVE.
"""

import contextvars
import os
import threading
from concurrent.futures import ThreadPoolExecutor

import numba
import numpy as np

from kmeans.estimator import distinct_weighted_rows
from kmeans.shared import check_int, check_sample_weight, check_samples, convergence_warnings_ignored

from .estimator import MAX_DISTINCT_FRACTION, GaussianMixture
from .reference import COVARIANCE_TYPES

CRITERIA = ("bic", "aic", "icl")
HALF_NORMAL_MEAN = np.sqrt(2 / np.pi)  # the mean of |z| for a standard normal z


def information_criterion(model, X, sample_weight, criterion):
    """BIC, AIC or ICL of a fitted mixture on weighted data (lower is better)."""
    sample_weight = np.ones(len(X)) if sample_weight is None else np.asarray(sample_weight, dtype=np.float64)
    return _score(model, X, sample_weight, criterion)[1]


def _score(model, X, sample_weight, criterion):
    """(weighted log-likelihood, criterion) of a fitted mixture: one pass over X, two for ICL."""
    # NumPy's pairwise sum adds in an order fixed by its C loop, so the same sum for any thread count,
    # which a BLAS dot is not; math.fsum (exact) took 6 ms on china.jpg's 96,615 colours, 60 times a search
    log_lik = float(np.sum(sample_weight * model.score_samples(X)))
    n_parameters = model._n_parameters()
    if criterion == "aic":
        return log_lik, -2 * log_lik + 2 * n_parameters
    bic = -2 * log_lik + n_parameters * np.log(float(sample_weight.sum()))
    if criterion == "bic":
        return log_lik, bic
    resp = model.predict_proba(X)
    # γ log γ is 0 where γ is 0 (its limit)
    entropy = -float(np.sum(sample_weight * np.where(resp > 0, resp * np.log(np.where(resp > 0, resp, 1.0)), 0.0).sum(axis=1)))
    return log_lik, bic + 2 * entropy


def split_start(model, k):
    r"""Start parameters for k components from a fitted mixture of fewer: its widest components split in two.

    The k − K components with the largest :math:`\pi_k \lambda_k`, λ the
    largest eigenvalue of the component's covariance and v its unit
    eigenvector, are each replaced by two at :math:`\mu \pm \sqrt{2\lambda/\pi}\, v`
    (the means of the two halves of a Gaussian cut through its centre across
    v), each with half the weight and the component's own precision. A
    spherical component has no principal axis: it is split along one of the features.

    Parameters
    ----------
    model : GaussianMixture
        Fitted, with K components, K < k <= 2K.
    k : int

    Returns
    -------
    dict
        ``weights_init``, ``means_init`` and ``precisions_init`` for a `GaussianMixture` of k components.
    """
    weights, means = model.weights_, model.means_
    n_components = len(means)
    # each component's covariance matrix, (K, D, D)
    covariances = np.array([np.diag(np.broadcast_to(c, means.shape[1])) if np.ndim(c) < 2 else c
                            for c in model._component_covariances()])
    eigenvalues, eigenvectors = np.linalg.eigh(covariances)  # ascending: the last is the principal axis
    split = np.argsort(-(weights * eigenvalues[:, -1]), kind="stable")[: k - n_components]
    step = HALF_NORMAL_MEAN * np.sqrt(eigenvalues[split, -1])[:, None] * eigenvectors[split, :, -1]
    halved = weights.copy()
    halved[split] /= 2
    moved = means.copy()
    moved[split] -= step
    precisions = model.precisions_
    if model.covariance_type != "tied":  # one shared precision stays one
        precisions = np.concatenate([precisions, precisions[split]])
    return dict(weights_init=np.concatenate([halved, halved[split]]),
                means_init=np.concatenate([moved, means[split] + step]), precisions_init=precisions)


def select_model(X, k_range, covariance_types=("diag",), criterion="bic", sample_weight=None, warm_start=True,
                 n_jobs=None, **params):
    """Fit a mixture for every (covariance type, k) and return the table of criteria and the best model.

    Parameters
    ----------
    X : array-like of shape (n_samples, n_features)
    k_range : iterable of int
        Numbers of components to try, in this order.
    covariance_types : iterable of {'diag', 'full', 'tied', 'spherical'}, default=('diag',)
    criterion : {'bic', 'aic', 'icl'}, default='bic'
    sample_weight : array-like of shape (n_samples,), default=None
    warm_start : bool, default=True
        Start each k from the fit of the k tried before it (of the same type),
        its widest components split (`split_start`), when that k was smaller
        and at least half of k; such a fit runs with ``n_init=1``. False fits
        every k from the estimator's own init.
    n_jobs : int, default=None
        How many covariance types are fitted at the same time. None: as many
        as numba has threads when ``OMP_WAIT_POLICY`` is PASSIVE, else one (see
        above; the variable as it is now: an OpenMP runtime loaded before it was
        set keeps the policy it read). A ``random_state`` that is a generator,
        not a seed, is drawn from in the order of the table, so it always fits
        one type at a time.
    **params
        Passed to every `GaussianMixture` (``random_state``, ``tol``, ...).

    Returns
    -------
    table : list of dict
        One row per fit: covariance_type, k, n_parameters, log_likelihood, the
        criterion's value, n_iter, converged and warm_started, in the order tried.
    best : GaussianMixture
        The fit with the lowest criterion (the first of equal ones).
    """
    if criterion not in CRITERIA:
        raise ValueError(f"criterion={criterion!r} is not one of {CRITERIA}.")
    covariance_types = tuple(covariance_types)
    for covariance_type in covariance_types:
        if covariance_type not in COVARIANCE_TYPES:
            raise ValueError(f"covariance_type={covariance_type!r} is not one of {COVARIANCE_TYPES}.")
    X = check_samples(X, "select_model")
    k_range = [int(k) for k in k_range]
    if not k_range:
        raise ValueError("k_range is empty; give at least one number of components.")
    weight = check_sample_weight(sample_weight, len(X))
    # found once for the 60-odd fits (distinct colours have none: 3.7 ms each to learn it on china.jpg's)
    distinct = distinct_weighted_rows(X, weight, MAX_DISTINCT_FRACTION)

    def chain(covariance_type, threads):
        """The rows of one covariance type, k after k, and its best fit."""
        rows, best, best_value, previous = [], None, np.inf, None
        for k in k_range:
            numba.set_num_threads(threads.share())
            warm = warm_start and previous is not None and previous.n_components < k <= 2 * previous.n_components
            start = dict(n_init=1, **split_start(previous, k)) if warm else {}
            model = GaussianMixture(k, covariance_type=covariance_type, **{**params, **start})
            model._fit_data(X, sample_weight, distinct)
            log_lik, value = _score(model, X, weight, criterion)
            rows.append(dict(covariance_type=covariance_type, k=k, n_parameters=model._n_parameters(),
                             log_likelihood=log_lik, **{criterion: value}, n_iter=model.n_iter_,
                             converged=model.converged_, warm_started=warm))
            if value < best_value:
                best, best_value = model, value
            previous = model
        threads.give_back()
        return rows, best, best_value

    if n_jobs is None:
        n_jobs = numba.get_num_threads() if os.environ.get("OMP_WAIT_POLICY", "").upper() == "PASSIVE" else 1
    check_int("n_jobs", n_jobs, minimum=1)
    seeded = params.get("random_state") is None or isinstance(params["random_state"], (int, np.integer))
    n_jobs = min(len(covariance_types), n_jobs) if seeded else 1
    if n_jobs > 1 and not _concurrent_kernels_safe():
        n_jobs = 1
    n_threads = numba.get_num_threads()
    threads = _ThreadShares(n_threads, n_jobs, len(covariance_types))
    try:
        with convergence_warnings_ignored():  # reported in the table's 'converged'
            if n_jobs == 1:
                chains = [chain(covariance_type, threads) for covariance_type in covariance_types]
            else:
                # each chain runs in a copy of this context, so it too ignores the warnings (a new thread
                # starts from an empty context) without a warnings filter of its own, which is not thread-safe
                contexts = [contextvars.copy_context() for _ in covariance_types]
                with ThreadPoolExecutor(n_jobs) as pool:
                    chains = list(pool.map(lambda context, covariance_type: context.run(chain, covariance_type, threads),
                                           contexts, covariance_types))
    finally:
        numba.set_num_threads(n_threads)  # one type after another sets it on this thread
    table = [row for rows, _, _ in chains for row in rows]
    # the first of equal criteria in the table's order, as one chain after another would find it
    _, best, _ = min(chains, key=lambda result: result[2])
    return table, best


class _ThreadShares:
    """Splits numba's threads between the chains running at once: a chain left alone gets them all."""

    def __init__(self, n_threads, n_jobs, n_chains):
        self.n_threads, self.n_jobs, self.remaining, self.lock = n_threads, n_jobs, n_chains, threading.Lock()

    def share(self):
        with self.lock:
            return max(1, self.n_threads // min(self.n_jobs, self.remaining))

    def give_back(self):
        with self.lock:
            self.remaining -= 1


def _concurrent_kernels_safe():
    """Whether parallel kernels may run from several Python threads at once: not under numba's workqueue layer."""
    numba.set_num_threads(numba.get_num_threads())  # launches numba's threads, so the layer is known
    return numba.threading_layer() != "workqueue"
