r"""EM for a diagonal Gaussian mixture, one readable NumPy function per step.

This is the version to learn from. ``em/_kernels.py`` computes exactly the same
quantities with numba, fused into one pass over the data; the estimator can run
either (``GaussianMixture(engine="reference")``).

The model, for samples :math:`x_n \in \mathbb{R}^D` and :math:`K` components:

.. math::
    p(x_n) = \sum_{k=1}^{K} \pi_k \prod_{d=1}^{D}
             \mathcal{N}(x_{nd} \mid \mu_{kd}, \sigma^2_{kd})

Every quantity is kept in log space: a density of a pixel far from a component
is :math:`e^{-1000}` or smaller, which is 0 in float64, while its logarithm is
an ordinary number.

Sample weights :math:`w_n` (for example how many pixels share a colour) enter
every sum over samples, so a weight of 2 is exactly a repeated row.
"""

import numpy as np
from scipy.special import logsumexp

LOG_2PI = np.log(2.0 * np.pi)

# Added to every N_k, as scikit-learn does, so an empty component never divides by zero.
NK_EPS = 10.0 * np.finfo(np.float64).eps


def log_gaussian_prob(X, means, precisions):
    r"""Log-density of each sample under each diagonal Gaussian.

    .. math::
        \log \mathcal{N}(x_n \mid \mu_k, \sigma_k^2) =
            -\frac{1}{2} \Big( D \log 2\pi
            + \sum_d \log \sigma^2_{kd}
            + \sum_d \frac{(x_{nd} - \mu_{kd})^2}{\sigma^2_{kd}} \Big)

    Parameters
    ----------
    X : ndarray of shape (n_samples, n_features)
        The samples :math:`x_n`.
    means : ndarray of shape (n_components, n_features)
        :math:`\mu_k`.
    precisions : ndarray of shape (n_components, n_features)
        :math:`1 / \sigma^2_k`.

    Returns
    -------
    log_prob : ndarray of shape (n_samples, n_components)
    """
    n_features = X.shape[1]
    # squared distance to each mean, scaled per feature by the precision (Mahalanobis)
    mahalanobis = (((X[:, None, :] - means[None, :, :]) ** 2) * precisions[None, :, :]).sum(axis=2)
    log_det_precision = np.log(precisions).sum(axis=1)
    return -0.5 * (n_features * LOG_2PI + mahalanobis) + 0.5 * log_det_precision


def e_step(X, means, precisions, log_weights):
    r"""Responsibilities of each component for each sample (E-step).

    .. math::
        \log \gamma_{nk} = \log \pi_k + \log \mathcal{N}(x_n \mid \mu_k, \sigma_k^2)
                           - \log \sum_j \pi_j \mathcal{N}(x_n \mid \mu_j, \sigma_j^2)

    The last term is :math:`\log p(x_n)`, computed by log-sum-exp so that it is
    finite even when every density underflows.

    Parameters
    ----------
    X : ndarray of shape (n_samples, n_features)
    means, precisions : ndarray of shape (n_components, n_features)
    log_weights : ndarray of shape (n_components,)
        :math:`\log \pi_k`.

    Returns
    -------
    log_resp : ndarray of shape (n_samples, n_components)
        :math:`\log \gamma_{nk}`.
    log_norm : ndarray of shape (n_samples,)
        :math:`\log p(x_n)`, the per-sample log-likelihood.
    """
    weighted_log_prob = log_gaussian_prob(X, means, precisions) + log_weights
    log_norm = logsumexp(weighted_log_prob, axis=1)
    return weighted_log_prob - log_norm[:, None], log_norm


def sufficient_statistics(X, log_resp, sample_weight):
    r"""The weighted sums the M-step needs (the M-step's sufficient statistics).

    .. math::
        N_k = \sum_n w_n \gamma_{nk} + 10\epsilon, \qquad
        S_k = \sum_n w_n \gamma_{nk}\, x_n, \qquad
        Q_k = \sum_n w_n \gamma_{nk}\, (x_n - S_k / N_k)^2

    :math:`Q_k` is the weighted scatter about the new mean, summed directly
    rather than as :math:`\sum \gamma x^2 - N_k \bar{x}_k^2`: that difference of
    two large numbers cancels to nonsense for a flat colour region
    (scikit-learn issue #30382).

    Parameters
    ----------
    X : ndarray of shape (n_samples, n_features)
    log_resp : ndarray of shape (n_samples, n_components)
    sample_weight : ndarray of shape (n_samples,)
        :math:`w_n`.

    Returns
    -------
    nk : ndarray of shape (n_components,)
    sum_x : ndarray of shape (n_components, n_features)
    sum_xx : ndarray of shape (n_components, n_features)
        The scatter :math:`Q_k` about the new means.
    """
    resp = np.exp(log_resp) * sample_weight[:, None]
    nk = resp.sum(axis=0) + NK_EPS
    sum_x = resp.T @ X
    new_means = sum_x / nk[:, None]
    sum_xx = np.einsum("nk,nkd->kd", resp, (X[:, None, :] - new_means[None, :, :]) ** 2)
    return nk, sum_x, sum_xx


def m_step(nk, sum_x, sum_xx, reg_covar):
    r"""New parameters from the sufficient statistics (M-step).

    .. math::
        \pi_k = \frac{N_k}{\sum_j N_j}, \qquad
        \mu_k = \frac{S_k}{N_k}, \qquad
        \sigma^2_k = \frac{Q_k}{N_k} + \text{reg\_covar}

    ``reg_covar`` keeps a component that has collapsed onto identical points
    from reaching zero variance (an infinite density).

    Parameters
    ----------
    nk : ndarray of shape (n_components,)
    sum_x, sum_xx : ndarray of shape (n_components, n_features)
    reg_covar : float

    Returns
    -------
    weights : ndarray of shape (n_components,)
    means, variances : ndarray of shape (n_components, n_features)
    """
    weights = nk / nk.sum()
    means = sum_x / nk[:, None]
    variances = sum_xx / nk[:, None] + reg_covar
    return weights, means, variances


def e_step_stats(X, sample_weight, means, precisions, log_weights):
    r"""One E-step followed by the sufficient statistics of the next M-step.

    This is what the numba kernel of the same name computes in one fused pass
    without storing ``log_resp``. The log-likelihood returned is the weighted
    sum :math:`\sum_n w_n \log p(x_n)` under the parameters passed in.

    Returns
    -------
    nk : ndarray of shape (n_components,)
    sum_x, sum_xx : ndarray of shape (n_components, n_features)
    log_lik : float
    """
    log_resp, log_norm = e_step(X, means, precisions, log_weights)
    nk, sum_x, sum_xx = sufficient_statistics(X, log_resp, sample_weight)
    return nk, sum_x, sum_xx, float(sample_weight @ log_norm)


def e_step_sums(X, sample_weight, means, precisions, log_weights):
    r"""The E-step's weighted sums, with the scatter taken about the *current* means.

    .. math::
        N_k = \sum_n w_n \gamma_{nk}, \qquad
        S_k = \sum_n w_n \gamma_{nk}\, x_n, \qquad
        D_k = \sum_n w_n \gamma_{nk}\, (x_n - \mu_k)^2

    Unlike :math:`Q_k`, every term is a plain sum over samples, so the sums of
    row blocks add up to the sums of the whole: the dask path computes them
    block by block, adds them, and calls `scatter_about_new_means` once.

    Returns
    -------
    nk : ndarray of shape (n_components,)
        Without the ``NK_EPS`` guard.
    sum_x, sum_dd : ndarray of shape (n_components, n_features)
    log_lik : float
    """
    log_resp, log_norm = e_step(X, means, precisions, log_weights)
    resp = np.exp(log_resp) * sample_weight[:, None]
    sum_dd = np.einsum("nk,nkd->kd", resp, (X[:, None, :] - means[None, :, :]) ** 2)
    return resp.sum(axis=0), resp.T @ X, sum_dd, float(sample_weight @ log_norm)


def scatter_about_new_means(nk, sum_x, sum_dd, means):
    r"""Turn the sums of `e_step_sums` into those of `sufficient_statistics`.

    .. math::
        Q_k = D_k - N_k (\bar{x}_k - \mu_k)^2, \qquad \bar{x}_k = S_k / N_k

    The shift :math:`\bar{x}_k - \mu_k` is small once EM is under way, so the
    subtraction loses little; a result below 0 can only be rounding and is set to 0.

    Returns
    -------
    nk : ndarray of shape (n_components,)
        With ``NK_EPS`` added.
    sum_x, sum_xx : ndarray of shape (n_components, n_features)
    """
    shift = sum_x / (nk + NK_EPS).reshape(-1, 1) - means
    scatter = sum_dd - nk.reshape(-1, 1) * shift * shift
    return nk + NK_EPS, sum_x, np.maximum(scatter, 0.0)


def score_samples(X, means, precisions, log_weights):
    r""":math:`\log p(x_n)` for each sample, shape (n_samples,)."""
    return e_step(X, means, precisions, log_weights)[1]


def predict(X, means, precisions, log_weights):
    r"""The most responsible component :math:`\arg\max_k \log \gamma_{nk}`, ties to the lowest k."""
    return np.argmax(log_gaussian_prob(X, means, precisions) + log_weights, axis=1)


def predict_proba(X, means, precisions, log_weights):
    r"""Responsibilities :math:`\gamma_{nk}`, shape (n_samples, n_components)."""
    return np.exp(e_step(X, means, precisions, log_weights)[0])
