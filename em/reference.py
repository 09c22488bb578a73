r"""EM for a Gaussian mixture, one readable NumPy function per step and covariance type.

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

Covariance types (scikit-learn's four). The diagonal model above is the
default; 'spherical' is the diagonal one with one variance per component;
'full' gives each component its own covariance matrix :math:`\Sigma_k`;
'tied' gives all components one :math:`\Sigma`. A full or tied Gaussian is
evaluated, as scikit-learn does, through the upper-triangular Cholesky factor
:math:`U_k` of its precision, :math:`\Sigma_k^{-1} = U_k U_k^T`:

.. math::
    \log \mathcal{N}(x \mid \mu_k, \Sigma_k) = -\frac12 \big(D \log 2\pi
        + \lVert (x - \mu_k) U_k \rVert^2\big) + \sum_d \log (U_k)_{dd}

The E-step functions below take ``precisions`` in one of two forms: an
(n_components, n_features) array of diagonal precisions :math:`1/\sigma^2`
(diag; spherical repeats its one precision over the features), or an
(n_components, n_features, n_features) array of the factors :math:`U_k` (full;
tied repeats its one factor). The sums they return have the matching form:
a scatter per feature, or a scatter matrix per component.
"""

import numpy as np

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


def log_gaussian_prob_full(X, means, precisions_cholesky):
    r"""Log-density of each sample under each Gaussian with a full covariance matrix.

    .. math::
        y_{nk} = (x_n - \mu_k)\, U_k, \qquad
        \log \mathcal{N}(x_n \mid \mu_k, \Sigma_k) =
            -\frac{1}{2} \big( D \log 2\pi + \lVert y_{nk} \rVert^2 \big)
            + \sum_d \log (U_k)_{dd}

    :math:`U_k` is upper triangular with :math:`U_k U_k^T = \Sigma_k^{-1}`, so
    :math:`\lVert y \rVert^2` is the Mahalanobis distance and
    :math:`\sum_d \log (U_k)_{dd} = -\frac12 \log |\Sigma_k|`.

    Parameters
    ----------
    X : ndarray of shape (n_samples, n_features)
    means : ndarray of shape (n_components, n_features)
    precisions_cholesky : ndarray of shape (n_components, n_features, n_features)
        :math:`U_k`, as scikit-learn's ``precisions_cholesky_``.

    Returns
    -------
    log_prob : ndarray of shape (n_samples, n_components)
    """
    n_features = X.shape[1]
    y = np.einsum("nkd,kde->nke", X[:, None, :] - means[None, :, :], precisions_cholesky)
    log_det = np.log(np.diagonal(precisions_cholesky, axis1=1, axis2=2)).sum(axis=1)
    return -0.5 * (n_features * LOG_2PI + (y**2).sum(axis=2)) + log_det


def log_gaussian_prob_tied(X, means, precision_cholesky):
    r"""Log-density under Gaussians sharing one covariance matrix :math:`\Sigma = (U U^T)^{-1}`.

    The full formula with :math:`U_k = U` for every component; ``precision_cholesky``
    has shape (n_features, n_features). Returns shape (n_samples, n_components).
    """
    n_components, n_features = means.shape
    return log_gaussian_prob_full(X, means, np.broadcast_to(precision_cholesky, (n_components, n_features, n_features)))


def log_gaussian_prob_spherical(X, means, precisions):
    r"""Log-density under spherical Gaussians, :math:`\Sigma_k = \sigma^2_k I`.

    The diagonal formula with :math:`1/\sigma^2_k` for every feature;
    ``precisions`` has shape (n_components,). Returns shape (n_samples, n_components).
    """
    return log_gaussian_prob(X, means, np.repeat(precisions[:, None], X.shape[1], axis=1))


def weighted_log_prob(X, means, precisions, log_weights):
    r""":math:`\log \pi_k + \log \mathcal{N}(x_n \mid k)`, shape (n_samples, n_components).

    ``precisions`` is (n_components, n_features) diagonal precisions, or
    (n_components, n_features, n_features) Cholesky factors of full precisions.
    """
    if precisions.ndim == 3:
        return log_gaussian_prob_full(X, means, precisions) + log_weights
    return log_gaussian_prob(X, means, precisions) + log_weights


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
    means : ndarray of shape (n_components, n_features)
    precisions : ndarray of shape (n_components, n_features) or (n_components, n_features, n_features)
        Diagonal precisions, or the Cholesky factors :math:`U_k` (see the module docstring).
    log_weights : ndarray of shape (n_components,)
        :math:`\log \pi_k`.

    Returns
    -------
    log_resp : ndarray of shape (n_samples, n_components)
        :math:`\log \gamma_{nk}`.
    log_norm : ndarray of shape (n_samples,)
        :math:`\log p(x_n)`, the per-sample log-likelihood.
    """
    weighted = weighted_log_prob(X, means, precisions, log_weights)
    from scipy.special import logsumexp  # here: a diagonal fit by the kernels never needs scipy, 0.1-0.3 s to import

    log_norm = logsumexp(weighted, axis=1)
    return weighted - log_norm[:, None], log_norm


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


def sufficient_statistics_full(X, log_resp, sample_weight):
    r"""The M-step's sums for full and tied covariances: :math:`N_k`, :math:`S_k` and scatter matrices.

    .. math::
        Q_k = \sum_n w_n \gamma_{nk}\, (x_n - \bar x_k)^T (x_n - \bar x_k),
        \qquad \bar x_k = S_k / N_k

    the outer products of the deviations from the new mean, summed directly
    (scikit-learn's full M-step also centres; its tied one does not, see `m_step_tied`).

    Returns
    -------
    nk : ndarray of shape (n_components,)
    sum_x : ndarray of shape (n_components, n_features)
    sum_xx : ndarray of shape (n_components, n_features, n_features)
    """
    resp = np.exp(log_resp) * sample_weight[:, None]
    nk = resp.sum(axis=0) + NK_EPS
    sum_x = resp.T @ X
    diff = X[:, None, :] - (sum_x / nk[:, None])[None, :, :]
    return nk, sum_x, np.einsum("nk,nkd,nke->kde", resp, diff, diff)


def m_step_full(nk, sum_x, sum_xx, reg_covar):
    r"""M-step for full covariances: :math:`\Sigma_k = Q_k / N_k + \text{reg\_covar}\, I`.

    ``sum_xx`` holds the scatter matrices :math:`Q_k`, shape (n_components, n_features, n_features).
    Returns weights (n_components,), means (n_components, n_features) and
    covariances (n_components, n_features, n_features).
    """
    weights, means, _ = m_step(nk, sum_x, np.zeros_like(sum_x), reg_covar)
    covariances = sum_xx / nk[:, None, None] + reg_covar * np.eye(sum_x.shape[1])
    return weights, means, covariances


def m_step_tied(nk, sum_x, sum_xx, reg_covar):
    r"""M-step for one covariance shared by all components.

    .. math::
        \Sigma = \frac{\sum_k Q_k}{\sum_k N_k} + \text{reg\_covar}\, I

    the pooled within-component scatter. scikit-learn computes the same
    quantity as :math:`(X^T X - \sum_k N_k \mu_k^T \mu_k) / \sum_k N_k`, a
    difference of two large matrices that cancels when the components are far
    from the origin compared with their spread; summing the centred scatter cannot.
    Returns weights, means and the covariance (n_features, n_features).
    """
    weights, means, _ = m_step(nk, sum_x, np.zeros_like(sum_x), reg_covar)
    covariance = sum_xx.sum(axis=0) / nk.sum() + reg_covar * np.eye(sum_x.shape[1])
    return weights, means, covariance


def m_step_spherical(nk, sum_x, sum_xx, reg_covar):
    r"""M-step for spherical covariances: the diagonal variances averaged over the features.

    .. math::
        \sigma^2_k = \frac1D \sum_d \Big(\frac{Q_{kd}}{N_k} + \text{reg\_covar}\Big)

    ``sum_xx`` is the diagonal scatter (n_components, n_features), as for 'diag';
    returns weights, means and variances of shape (n_components,).
    """
    weights, means, variances = m_step(nk, sum_x, sum_xx, reg_covar)
    return weights, means, variances.mean(axis=1)


M_STEPS = {"full": m_step_full, "tied": m_step_tied, "diag": m_step, "spherical": m_step_spherical}
COVARIANCE_TYPES = tuple(M_STEPS)


def precisions_cholesky(covariances, covariance_type):
    r"""The Cholesky factors of the precisions, as scikit-learn's ``precisions_cholesky_``.

    For a full covariance, :math:`\Sigma = L L^T` (Cholesky, L lower
    triangular), and :math:`U = L^{-T}` is upper triangular with
    :math:`U U^T = \Sigma^{-1}`; for diagonal and spherical ones, :math:`1/\sqrt{\sigma^2}`.

    Raises
    ------
    ValueError
        When a covariance is not positive definite even with ``reg_covar``,
        naming the first such component.
    """
    if covariance_type in ("diag", "spherical"):
        bad = np.flatnonzero(~np.all((covariances > 0).reshape(len(covariances), -1), axis=1))
        if bad.size:
            raise _ill_defined(int(bad[0]))
        return 1.0 / np.sqrt(covariances)
    if covariance_type == "tied":
        return _upper_precision_factors(covariances[None], None)[0]
    return _upper_precision_factors(covariances, range(len(covariances)))


def _upper_precision_factors(covariances, components):
    """U = L⁻ᵀ for each Σ = L Lᵀ, as scikit-learn computes it: Cholesky (LAPACK's potrf), then L X = I solved.

    NumPy's Cholesky factors the stack in one call; scikit-learn calls scipy's,
    the same LAPACK routine (equal to rounding), once per component. (Importing scipy.linalg took
    0.17 s of the ``emseg`` command, and each call 50 µs of wrapping.)
    """
    finite = np.isfinite(covariances).all(axis=(-2, -1))  # scipy refused these; NumPy would factor them
    if not finite.all():
        raise _ill_defined(None if components is None else int(np.flatnonzero(~finite)[0]))
    try:
        lowers = np.linalg.cholesky(covariances)
    except np.linalg.LinAlgError:  # name the first component that is not positive definite
        for component, covariance in zip(components or [None], covariances):
            try:
                np.linalg.cholesky(covariance)
            except np.linalg.LinAlgError:
                raise _ill_defined(component) from None
        raise
    return np.stack([lower_triangular_inverse(lower).T for lower in lowers])


def lower_triangular_inverse(lower):
    r"""L⁻¹ of a lower-triangular L by forward substitution, row by row:
    :math:`(L^{-1})_{ij} = (\delta_{ij} - \sum_{m<i} L_{im} (L^{-1})_{mj}) / L_{ii}`.

    The D×D solve scikit-learn makes with ``scipy.linalg.solve_triangular`` is
    written out here, without BLAS: OpenBLAS hands even a 3×3 triangular
    solve to its thread pool, whose threads then spin for a while and take the
    cores from the next parallel E-step (measured on 2 busy cores: 20 ms per
    solve, and a full-covariance iteration on 20,000 pixels 100× slower than a
    diagonal one).
    """
    n_features = len(lower)
    inverse = np.zeros_like(lower)
    for i in range(n_features):
        row = -(lower[i, :i, None] * inverse[:i]).sum(axis=0)
        row[i] += 1.0
        inverse[i] = row / lower[i, i]
    return inverse


def _ill_defined(component):
    which = "the shared covariance" if component is None else f"component {component}"
    return ValueError(
        f"Fitting the mixture model failed because {which} has an ill-defined empirical covariance "
        "(not positive definite; for instance caused by singleton or collapsed samples). Try to decrease "
        "the number of components, increase reg_covar, or scale the input data."
    )


def precisions_cholesky_from_precisions(precisions, covariance_type):
    r"""``precisions_cholesky_`` from user precisions (``precisions_init``), as scikit-learn computes it.

    :math:`\Lambda = U U^T` with U upper triangular: reversing the rows and
    columns (J) turns it into a lower Cholesky factorisation,
    :math:`J \Lambda J = L L^T`, so :math:`U = J L J` (scikit-learn #26415).
    """
    def upper(precision):  # np.flip with no axis reverses both rows and columns
        return np.flip(np.linalg.cholesky(np.flip(precision)))

    if covariance_type == "full":
        return np.stack([upper(precision) for precision in precisions])
    if covariance_type == "tied":
        return upper(precisions)
    return np.sqrt(precisions)


def precisions_from_cholesky(precisions_cholesky, covariance_type):
    r"""``precisions_``: :math:`U_k U_k^T` for full and tied, the squares for diag and spherical."""
    if covariance_type == "full":
        return np.stack([factor @ factor.T for factor in precisions_cholesky])
    if covariance_type == "tied":
        return precisions_cholesky @ precisions_cholesky.T
    return precisions_cholesky**2


def n_parameters(n_components, n_features, covariance_type):
    """Free parameters of the mixture: K - 1 weights, K·D means and the covariances of the type."""
    covariance_parameters = {
        "full": n_components * n_features * (n_features + 1) // 2,
        "tied": n_features * (n_features + 1) // 2,
        "diag": n_components * n_features,
        "spherical": n_components,
    }[covariance_type]
    return covariance_parameters + n_features * n_components + n_components - 1


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
    statistics = sufficient_statistics_full if precisions.ndim == 3 else sufficient_statistics
    nk, sum_x, sum_xx = statistics(X, log_resp, sample_weight)
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

    With (n_components, n_features, n_features) Cholesky factors (full, tied),
    :math:`D_k = \sum_n w_n \gamma_{nk} (x_n - \mu_k)^T (x_n - \mu_k)`, a matrix.

    Returns
    -------
    nk : ndarray of shape (n_components,)
        Without the ``NK_EPS`` guard.
    sum_x, sum_dd : ndarray of shape (n_components, n_features)
        sum_dd is (n_components, n_features, n_features) for full and tied.
    log_lik : float
    """
    log_resp, log_norm = e_step(X, means, precisions, log_weights)
    resp = np.exp(log_resp) * sample_weight[:, None]
    diff = X[:, None, :] - means[None, :, :]
    if precisions.ndim == 3:  # full and tied: scatter matrices about the current means
        sum_dd = np.einsum("nk,nkd,nke->kde", resp, diff, diff)
    else:
        sum_dd = np.einsum("nk,nkd->kd", resp, diff**2)
    return resp.sum(axis=0), resp.T @ X, sum_dd, float(sample_weight @ log_norm)


def scatter_about_new_means(nk, sum_x, sum_dd, means):
    r"""Turn the sums of `e_step_sums` into those of `sufficient_statistics`.

    .. math::
        Q_k = D_k - N_k (\bar{x}_k - \mu_k)^2, \qquad \bar{x}_k = S_k / N_k

    The shift :math:`\bar{x}_k - \mu_k` is small once EM is under way, so the
    subtraction loses little; a result below 0 can only be rounding and is set to 0.
    Scatter matrices (full, tied) get the outer product
    :math:`N_k (\bar{x}_k - \mu_k)^T (\bar{x}_k - \mu_k)` subtracted instead.

    Returns
    -------
    nk : ndarray of shape (n_components,)
        With ``NK_EPS`` added.
    sum_x, sum_xx : ndarray of shape (n_components, n_features)
    """
    shift = sum_x / (nk + NK_EPS).reshape(-1, 1) - means
    if sum_dd.ndim == 3:  # scatter matrices: Q_k = D_k - N_k (x̄_k - μ_k)ᵀ(x̄_k - μ_k)
        return nk + NK_EPS, sum_x, sum_dd - nk[:, None, None] * shift[:, :, None] * shift[:, None, :]
    scatter = sum_dd - nk.reshape(-1, 1) * shift * shift
    return nk + NK_EPS, sum_x, np.maximum(scatter, 0.0)


def score_samples(X, means, precisions, log_weights):
    r""":math:`\log p(x_n)` for each sample, shape (n_samples,)."""
    return e_step(X, means, precisions, log_weights)[1]


def predict(X, means, precisions, log_weights):
    r"""The most responsible component :math:`\arg\max_k \log \gamma_{nk}`, ties to the lowest k."""
    return np.argmax(weighted_log_prob(X, means, precisions, log_weights), axis=1)


def predict_proba(X, means, precisions, log_weights):
    r"""Responsibilities :math:`\gamma_{nk}`, shape (n_samples, n_components)."""
    return np.exp(e_step(X, means, precisions, log_weights)[0])
