"""Independent oracles for emseg's numbers, each with the rounding bound of the comparison.

No function here calls emseg. Densities come from ``scipy.stats.norm`` and
``scipy.special.logsumexp``, squared distances from
``scipy.spatial.distance.cdist``, sums from ``math.fsum`` (correctly rounded).
Each function also returns how far a correct float64 implementation may lie
from the oracle, derived from the operations, never fitted to one machine:

The rounding model is tests/exactness.py's: ``U = 2**-53`` is the unit
roundoff (``+ - * / sqrt`` return the exact result times (1 + δ), |δ| ≤ U),
``exp`` and ``log`` are within ``ULP`` units in the last place, and a sum of n
terms in any order is within ``sum_error(n)``·Σ|terms| (Higham & Mary 2019),
or the deterministic (n - 1)·U·Σ|terms| (Higham 2002, eq. 4.4) when smaller.
"""

import math

import numpy as np
from scipy.spatial.distance import cdist
from scipy.special import logsumexp
from scipy.stats import norm

from exactness import ULP, U, sum_error


def sum_error_factor(n_terms):
    """How far, relative to Σ|terms|, a float64 sum of ``n_terms`` terms in any order may be off."""
    return min(n_terms * U, sum_error(n_terms))


def fsum_weighted(weights, values):
    """Σ w·v with each product rounded once and the sum correctly rounded: within 2U·Σ|w·v|."""
    return math.fsum(np.asarray(weights, dtype=np.float64) * np.asarray(values, dtype=np.float64))


# ------------------------------------------------------------------ Gaussian mixtures

def mixture_log_density(X, weights, means, variances):
    """log p(x_n) of a diagonal mixture from scipy, with its responsibilities and rounding bounds.

    Returns
    -------
    log_norm : ndarray of shape (n_samples,)
        log p(x_n) = logsumexp_k l_nk, l_nk = log π_k + Σ_d log N(x_nd | μ_kd, σ²_kd).
    resp : ndarray of shape (n_samples, n_components)
        γ_nk = exp(l_nk - log p(x_n)).
    joint : ndarray of shape (n_samples, n_components)
        l_nk.
    joint_error : ndarray of shape (n_samples, n_components)
        Bound on |error| of one correct evaluation of l_nk (derivation below).
    log_norm_error : ndarray of shape (n_samples,)
        Bound on |error| of one correct evaluation of log p(x_n).

    Notes
    -----
    l_nk is a sum of m = 3D + 1 terms: log π_k, and per feature -½ log 2π,
    -½ log σ²_kd and -½ z², z² = (x - μ)²/σ². Each term t is computed with
    |error| ≤ 7U·(1 + |t|): z² takes a subtraction, a square and a scaling by
    1/σ² (or a division by a rounded √σ², squared: 7U at most); a log adds
    ULP·U·|t| plus U from its rounded argument (ULP = 4). Adding the m terms adds at most
    (m - 1)·U·Σ|t|. So with T = Σ|t|:  |δl_nk| ≤ (3D + 7)·U·(3D + 1 + T_nk).

    log p = M + log Σ_k exp(l_k - M), M = max_k l_k. An input error moves it by
    Σ_k γ_k·δl_k ≤ max_k |δl_k|. Its own rounding: l_k - M moves term k by
    U·|l_k - M|·γ_k ≤ U/e; exp (ULP·U) and the K-term sum of numbers in [0, 1]
    ((K - 1)·U) give the sum in [1, K] to (K + ULP)·U relative; log adds
    that and ULP·U·log K; the final + M adds U·|log p|. In all at most
    max_k |δl_nk| + (2K + 2·ULP + ULP·log K)·U + U·|log p(x_n)|.
    """
    X, means, variances = (np.asarray(a, dtype=np.float64) for a in (X, means, variances))
    n_features, n_components = X.shape[1], len(means)
    per_feature = norm.logpdf(X[:, None, :], loc=means[None], scale=np.sqrt(variances)[None])
    joint = per_feature.sum(axis=2) + np.log(weights)
    log_norm = logsumexp(joint, axis=1)
    resp = np.exp(joint - log_norm[:, None])
    z2 = (X[:, None, :] - means[None]) ** 2 / variances[None]
    total_abs = (np.abs(np.log(weights))[None, :]
                 + (0.5 * np.log(2 * np.pi) + 0.5 * np.abs(np.log(variances))[None] + 0.5 * z2).sum(axis=2))
    joint_error = (3 * n_features + 7) * U * (3 * n_features + 1 + total_abs)
    log_norm_error = (joint_error.max(axis=1) + (2 * n_components + ULP * (2 + np.log(n_components))) * U
                      + U * np.abs(log_norm))
    return log_norm, resp, joint, joint_error, log_norm_error


# ------------------------------------------------------------------ nearest centres

def nearest_centres(X, centers, sample_weight=None):
    """Nearest centre of each sample from scipy's cdist, where rounding cannot decide it otherwise.

    Returns
    -------
    labels : ndarray of shape (n_samples,)
        argmin_k of cdist(X, centers, "sqeuclidean").
    decided : ndarray of bool, shape (n_samples,)
        Where any correct float64 evaluation gives the same nearest centre.
    inertia : float
        Σ_n w_n·min_k d_nk, products rounded once, sum correctly rounded (math.fsum).
    inertia_error : float
        Bound on |inertia - any correct implementation's inertia| (derivation below).

    Notes
    -----
    d = Σ_d (x_d - c_d)² adds D squares of differences, each with relative
    error ≤ 3U (subtraction, then the square rounded); the sum of D nonnegative
    terms adds (D - 1)·U. So one correct evaluation is within (D + 2)·U·d of
    the exact d. Two evaluations of the best and second best, d1 ≤ d2, may
    order them differently only if the exact margin is ≤ (D + 2)·U·(d1 + d2);
    the oracle's computed margin is itself off by that much plus U for its
    subtraction. So the oracle decides the label where
    d2 - d1 > 2·(D + 3)·U·(d1 + d2).

    Inertia: a correct implementation adds terms w·d' where d' is within
    (D + 2)·U of d1 (or, at an undecided sample, of d2, which is within the
    margin bound of d1): with the product's rounding each term differs from
    the oracle's by at most 2·(D + 3)·U·w·(d1 + d2). The implementation's sum
    adds sum_error_factor(N)·Σ w·d, the oracle's fsum 2U·Σ w·d.
    """
    X = np.asarray(X, dtype=np.float64)
    n_samples, n_features = X.shape
    weights = np.ones(n_samples) if sample_weight is None else np.asarray(sample_weight, dtype=np.float64)
    sq = cdist(X, np.asarray(centers, dtype=np.float64), "sqeuclidean")
    labels = sq.argmin(axis=1)
    if sq.shape[1] == 1:
        d1 = d2 = sq[:, 0]
        decided = np.ones(n_samples, dtype=bool)
    else:
        two = np.partition(sq, 1, axis=1)[:, :2]
        d1, d2 = two[:, 0], two[:, 1]
        decided = d2 - d1 > 2 * (n_features + 3) * U * (d1 + d2)
    inertia = fsum_weighted(weights, d1)
    weighted_abs = float(np.sum(weights * d1))
    inertia_error = (2 * (n_features + 3) * U * float(np.sum(weights * (d1 + d2)))
                     + (sum_error_factor(n_samples) + 2 * U) * weighted_abs)
    return labels, decided, inertia, inertia_error
