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

No work is reused between neighbouring k: every fit starts from its own
k-means start, as a user's own ``GaussianMixture(k).fit`` would, so every row
of the table is the fit the user would get. (Warm starts by splitting a
component would save time but make row k depend on row k - 1.)
"""

import warnings

import numpy as np
from sklearn.exceptions import ConvergenceWarning

from .estimator import GaussianMixture
from .reference import COVARIANCE_TYPES

CRITERIA = ("bic", "aic", "icl")


def information_criterion(model, X, sample_weight, criterion):
    """BIC, AIC or ICL of a fitted mixture on weighted data (lower is better)."""
    sample_weight = np.ones(len(X)) if sample_weight is None else np.asarray(sample_weight, dtype=np.float64)
    total = float(sample_weight.sum())
    log_lik = float(sample_weight @ model.score_samples(X))
    n_parameters = model._n_parameters()
    if criterion == "aic":
        return -2 * log_lik + 2 * n_parameters
    bic = -2 * log_lik + n_parameters * np.log(total)
    if criterion == "bic":
        return bic
    resp = model.predict_proba(X)
    # γ log γ is 0 where γ is 0 (its limit)
    entropy = -float(sample_weight @ np.where(resp > 0, resp * np.log(np.where(resp > 0, resp, 1.0)), 0.0).sum(axis=1))
    return bic + 2 * entropy


def select_model(X, k_range, covariance_types=("diag",), criterion="bic", sample_weight=None, **params):
    """Fit a mixture for every (covariance type, k) and return the table of criteria and the best model.

    Parameters
    ----------
    X : array-like of shape (n_samples, n_features)
    k_range : iterable of int
        Numbers of components to try.
    covariance_types : iterable of {'diag', 'full', 'tied', 'spherical'}, default=('diag',)
    criterion : {'bic', 'aic', 'icl'}, default='bic'
    sample_weight : array-like of shape (n_samples,), default=None
    **params
        Passed to every `GaussianMixture` (``random_state``, ``tol``, ...).

    Returns
    -------
    table : list of dict
        One row per fit: covariance_type, k, n_parameters, log_likelihood, the
        criterion's value, n_iter and converged, in the order tried.
    best : GaussianMixture
        The fit with the lowest criterion (the first of equal ones).
    """
    if criterion not in CRITERIA:
        raise ValueError(f"criterion={criterion!r} is not one of {CRITERIA}.")
    covariance_types = tuple(covariance_types)
    for covariance_type in covariance_types:
        if covariance_type not in COVARIANCE_TYPES:
            raise ValueError(f"covariance_type={covariance_type!r} is not one of {COVARIANCE_TYPES}.")
    X = np.ascontiguousarray(X, dtype=np.float64)
    k_range = [int(k) for k in k_range]
    if not k_range:
        raise ValueError("k_range is empty; give at least one number of components.")
    weight = np.ones(len(X)) if sample_weight is None else np.asarray(sample_weight, dtype=np.float64)
    table, best, best_value = [], None, np.inf
    for covariance_type in covariance_types:
        for k in k_range:
            model = GaussianMixture(k, covariance_type=covariance_type, **params)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", ConvergenceWarning)  # reported in the table's 'converged'
                model.fit(X, sample_weight=sample_weight)
            value = information_criterion(model, X, weight, criterion)
            table.append(dict(covariance_type=covariance_type, k=k, n_parameters=model._n_parameters(),
                              log_likelihood=float(weight @ model.score_samples(X)), **{criterion: value},
                              n_iter=model.n_iter_, converged=model.converged_))
            if value < best_value:
                best, best_value = model, value
    return table, best
