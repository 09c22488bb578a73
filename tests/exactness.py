r"""How far two correct float64 computations of the same thing may differ: tolerances derived, not tuned.

Every comparison of this suite with scikit-learn, scipy or the reference
engine takes its tolerance from here (or states a one-line derivation beside
it), so that a result that agrees on one CPU and BLAS agrees on any, while a
wrong formula, which moves results by far more than rounding, still fails.
docs/testing.md tabulates every tolerance.

Rounding model (Higham, *Accuracy and Stability of Numerical Algorithms*, 2002):
each operation is exact times (1 + δ) with |δ| ≤ u = 2⁻⁵³ (FMA only lowers the
count); ``exp`` and ``log`` are within ``ULP`` units in the last place.

Sums over many samples. BLAS kernels, SIMD lanes and our chunks all add in
different orders. The deterministic bound for n terms, (n-1)·u·Σ|terms|, is
far from what happens; the probabilistic bound of Higham & Mary (SIAM J. Sci.
Comput. 41(5), 2019, Thm. 3.1) holds for *any* order of summation:
|error| ≤ λ·√n·u·Σ|terms| with probability at least 1 - 2n·exp(-λ²/2).
λ = 8 makes that failure probability below 1e-8 for n ≤ 10⁶.
"""

import math

import numpy as np
from numpy.testing import assert_allclose

U = np.finfo(np.float64).eps / 2  # unit roundoff of float64
ULP = 4  # glibc's exp and log are within 1 ulp, numpy's SIMD exp/log within a few; 4 covers every build
LAMBDA = 8.0  # see the module docstring: the probabilistic summation bound fails with probability < 1e-8
LOG_2PI = math.log(2 * math.pi)
EXP_FLUSH = math.exp(-708.0)  # our kernels return exp(v) = 0 for v < -708, where NumPy returns a subnormal


def sum_error(n_terms):
    """Relative rounding of a sum of ``n_terms`` terms in any order, in units of Σ|terms| (Higham & Mary)."""
    return LAMBDA * math.sqrt(max(n_terms, 1)) * U


# ------------------------------------------------------------------ the mixture, evaluated

class MixtureEvaluation:
    r"""The mixture's log-densities at X, and how far two correct evaluations of them may differ.

    With :math:`a_{nk} = \log\pi_k + \log\mathcal N(x_n \mid \mu_k, \sigma^2_k)`
    (diagonal), scikit-learn expands the quadratic form as
    :math:`\sum_d \mu^2 P - 2 x \mu P + x^2 P` (P = 1/σ²) through BLAS, we sum
    :math:`(x - \mu)^2 P`. Counting roundings, the two differ by at most

    .. math::
        A_{nk} = (D + 6)\,u\,S_{nk} + 2 (\mathrm{ULP} + D + 2)\,u\,C_k, \quad
        S_{nk} = \sum_d (|x_{nd}| + |\mu_{kd}|)^2 P_{kd}, \quad
        C_k = |\log\pi_k| + \tfrac{D}{2}\log 2\pi + \tfrac12 \sum_d |\log P_{kd}|

    (the expansion's three dot products of D terms: (D+4)u S; ours: (D+2)u S;
    halved by the ½ of the Gaussian; 3u·S more where one side forms P as
    1/σ² and the other as (1/√σ²)²). :math:`S` is large where
    :math:`\mu^2/\sigma^2` is: the expansion cancels there, which is why a
    dark, flat component of a photo is the worst conditioned.

    log-sum-exp moves :math:`\log p(x_n)` by :math:`\sum_k \gamma_{nk} \Delta a_{nk}`
    (its exact first derivative), plus its own rounding (K terms, ``exp``,
    ``log`` and the shift by the maximum), for each side:

    .. math::
        B_n = \sum_k \gamma_{nk} A_{nk} + 2u\,(K + 1 + \mathrm{ULP}(1 + \log K) + |\log p(x_n)|)

    and a responsibility :math:`\gamma = e^{a - \log p}` moves by at most
    :math:`\gamma_{nk} (A_{nk} + B_n + 2u(\mathrm{ULP} + |\log\gamma_{nk}|))`.

    ``parameter_changes`` (absolute differences of weights, means and
    variances between the two sides) adds their first-order effect, with the
    second-order terms bounded, when the two sides evaluate *different*
    parameters (two fits that drifted apart):

    .. math::
        |\Delta a_{nk}| \le \frac{|\Delta\pi_k|}{\pi_k}
          + \sum_d \Big[\frac{|\Delta\mu_{kd}|}{\sigma_{kd}} |z_{nkd}|
          + \frac{|\Delta\sigma^2_{kd}|}{2\sigma^2_{kd}} |1 - z^2_{nkd}|\Big]
          + \text{second-order terms (see ``_parameter_effect``)}

    valid while every relative change is below ½ (true by many orders here).
    Everything is computed here in plain NumPy, in the centred form, as an
    oracle independent of both implementations.
    """

    def __init__(self, X, weights, means, variances, parameter_changes=None):
        X = np.asarray(X, dtype=np.float64)
        n_samples, n_features = X.shape
        precisions = 1.0 / variances
        log_weights = np.log(weights)
        z2 = (X[:, None, :] - means[None]) ** 2 * precisions[None]  # (n, K, D)
        self.weighted_log_prob = (
            log_weights - 0.5 * (n_features * LOG_2PI - np.log(precisions).sum(axis=1)) - 0.5 * z2.sum(axis=2)
        )
        S = ((np.abs(X)[:, None, :] + np.abs(means)[None]) ** 2 * precisions[None]).sum(axis=2)
        C = np.abs(log_weights) + 0.5 * n_features * LOG_2PI + 0.5 * np.abs(np.log(precisions)).sum(axis=1)
        self.term_bound = (n_features + 6) * U * S + 2 * (ULP + n_features + 2) * U * C  # A_nk
        if parameter_changes is not None:
            self.term_bound = self.term_bound + _parameter_effect(X, weights, means, variances, z2, parameter_changes)
        _add_log_sum_exp_bounds(self)
        self.z2, self.means, self.variances = z2, means, variances


def _add_log_sum_exp_bounds(evaluation):
    """log p, γ, B_n and the bound on γ from ``weighted_log_prob`` and A_nk (``term_bound``), for any covariance type."""
    a = evaluation.weighted_log_prob
    top = a.max(axis=1, keepdims=True)
    evaluation.log_norm = top[:, 0] + np.log(np.exp(a - top).sum(axis=1))
    evaluation.resp = np.exp(a - evaluation.log_norm[:, None])
    lse_rounding = 2 * U * (a.shape[1] + 1 + ULP * (1 + math.log(a.shape[1])) + np.abs(evaluation.log_norm))
    evaluation.score_bound = (evaluation.resp * evaluation.term_bound).sum(axis=1) + lse_rounding  # B_n
    # γ = exp(a - log p): the subtraction rounds by u|log γ| on each side, exp by ULP
    log_resp = a - evaluation.log_norm[:, None]
    evaluation.proba_bound = evaluation.resp * (
        evaluation.term_bound + evaluation.score_bound[:, None] + 2 * U * (ULP + np.abs(log_resp)))


def _parameter_effect(X, weights, means, variances, z2, changes):
    """First-order effect on a_nk of the parameter changes (d_weights, d_means, d_variances), plus a bound on the rest.

    With r = Δπ/π, δ = Δμ, ρ = Δσ²/σ² and |r|, |ρ| < ½, the remainder of
    log(1 + r) is at most r², of -½ log(1 + ρ) at most ρ²/2, and of
    -½ (x - μ - δ)²/(σ²(1 + ρ)) at most δ²/σ² + ρ² z² + 2|z||δ/σ||ρ|(1 + |ρ|).
    """
    d_weights, d_means, d_variances = (np.abs(change) for change in changes)
    rel_w, rel_v = d_weights / weights, d_variances / variances
    rel_m = d_means / np.sqrt(variances)  # |δ| / σ
    z = np.sqrt(z2)
    first = rel_w[None] + (rel_m[None] * z).sum(axis=2) + (0.5 * rel_v[None] * np.abs(1.0 - z2)).sum(axis=2)
    second = rel_w[None] ** 2 + (
        (rel_m**2)[None] + (rel_v**2)[None] * (0.5 + z2) + 2 * z * (rel_m * rel_v * (1 + rel_v))[None]
    ).sum(axis=2)
    return first + second


def model_params(model):
    """(weights, means, variances) of a fitted mixture, ours or scikit-learn's."""
    return model.weights_, model.means_, model.covariances_


def parameter_changes(ours, theirs):
    """Absolute differences of (weights, means, variances) between two fitted mixtures."""
    return tuple(a - b for a, b in zip(model_params(ours), model_params(theirs)))


def natural_differences(ours, theirs):
    """|Δπ|/π, |Δμ|/σ and |Δσ²|/σ² of two fitted mixtures, each a maximum over components (and features)."""
    weights, means, variances = model_params(theirs)
    d_weights, d_means, d_variances = (np.abs(change) for change in parameter_changes(ours, theirs))
    return {
        "weights": float((d_weights / weights).max()),
        "means": float((d_means / np.sqrt(variances)).max()),
        "variances": float((d_variances / variances).max()),
    }


# ------------------------------------------------------------------ one EM iteration, and a whole fit

def em_step_error(X, sample_weight, evaluation):
    r"""How far one EM iteration of two correct implementations can land apart, in natural units.

    From the same parameters, the M-step's weighted sums differ through the
    responsibilities (each by at most ``evaluation.proba_bound``, a relative
    R = bound / γ) and through summation over the n samples (``sum_error``),
    on each side:

    * :math:`\Delta\pi_k / \pi_k \le \bar R_k + 2\,\mathrm{sum\_error}(n) + K u`
      (the :math:`N_k` and their normalisation);
    * :math:`\Delta\mu_{kd} / \sigma_{kd} \le \overline{R |z|}_k
      + 4\,\mathrm{sum\_error}(n)\, (\overline{|x_d|}_k + |\mu_{kd}|) / \sigma_{kd}`
      (:math:`\sum w\gamma x` over :math:`N_k`, each side);
    * :math:`\Delta\sigma^2_{kd} / \sigma^2_{kd} \le \overline{R |z^2 - 1|}_k
      + 4\,\mathrm{sum\_error}(n)\, (\overline{x_d^2}_k + \mu_{kd}^2) / \sigma^2_{kd}`:
      scikit-learn forms :math:`E[x^2] - \mu^2`, whose rounding is relative
      to :math:`E[x^2]`, not to :math:`\sigma^2` (its issue #30382).

    Bars are :math:`w\gamma`-weighted means over the samples. Returns the
    largest of these over components and features: one step's discrepancy.
    """
    n_samples, n_components = len(X), evaluation.resp.shape[1]
    means, variances = evaluation.means, evaluation.variances
    R = evaluation.proba_bound / np.maximum(evaluation.resp, np.finfo(np.float64).tiny)
    wr = sample_weight[:, None] * evaluation.resp  # w γ, (n, K)
    nk = wr.sum(axis=0) + 10 * np.finfo(np.float64).eps

    def member_mean(values):  # (n, K) or (n, K, D) -> the wγ-weighted mean per component
        return np.einsum("nk,nk...->k...", wr, values) / nk.reshape((-1,) + (1,) * (values.ndim - 2))

    z2 = evaluation.z2
    spread = 2 * sum_error(n_samples)
    weights_error = member_mean(R) + spread + n_components * U
    means_error = member_mean(R[..., None] * np.sqrt(z2)) + 2 * spread * (
        (wr.T @ np.abs(X)) / nk[:, None] + np.abs(means)
    ) / np.sqrt(variances)
    variances_error = member_mean(R[..., None] * np.abs(z2 - 1.0)) + 2 * spread * (
        (wr.T @ X**2) / nk[:, None] + means**2
    ) / variances
    return float(max(weights_error.max(), means_error.max(), variances_error.max()))


def fit_tolerances(X, sample_weight, parameter_sets, n_iter):
    r"""(τ, lower-bound tolerance) for two correct EM fits of ``n_iter`` iterations from one start.

    τ bounds |Δπ|/π, |Δμ|/σ and |Δσ²|/σ². Each iteration adds at most one
    step's discrepancy e (`em_step_error`), and an EM iteration does not
    amplify a small difference of its input in these units: near a fixed
    point its Jacobian is the fraction of missing information, with
    eigenvalues in [0, 1) (Dempster, Laird & Rubin 1977; Meng & Rubin 1994).
    So τ = (n_iter + 1)·e, the +1 for the initialisation, itself an M-step.
    The conditioning changes along the path, so e is the largest step error
    over ``parameter_sets`` (the start and the fitted parameters).

    A lower bound is the weighted mean of log p(x_n) under the parameters of
    its iteration: it moves by at most τ·G to first order
    (G = the mean of :math:`\sum_k \gamma_{nk} (1 + \sum_d |z| + \frac12 \sum_d |z^2 - 1|)`),
    plus the evaluation's rounding (the mean of ``score_bound``) and the
    mean's own (2·sum_error(n) of the mean of |log p|).
    """
    X = np.asarray(X, dtype=np.float64)
    step, lower_bound_tol = 0.0, 0.0
    points = []
    for params in parameter_sets:
        evaluation = MixtureEvaluation(X, *params)
        z2 = evaluation.z2
        per_sample = (evaluation.resp * (1 + np.sqrt(z2).sum(axis=2) + 0.5 * np.abs(z2 - 1).sum(axis=2))).sum(axis=1)
        G = np.average(per_sample, weights=sample_weight)
        rounding = np.average(evaluation.score_bound + 2 * sum_error(len(X)) * np.abs(evaluation.log_norm),
                              weights=sample_weight)
        step = max(step, em_step_error(X, sample_weight, evaluation))
        points.append((G, rounding))
    tau = (n_iter + 1) * step
    lower_bound_tol = max(tau * G + rounding for G, rounding in points)
    return tau, float(lower_bound_tol)


def statistics_tolerances(X, sample_weight, weights, means, variances):
    r"""Bounds on the differences of two correct computations of one E-step's sums (``e_step_stats``).

    Each side's responsibilities are within ``proba_bound`` (relative R = bound / γ),
    and its sums over the n samples within ``sum_error(n)`` of Σ|terms|:

    * :math:`N_k`: :math:`\sum w\gamma R + 2\,\mathrm{sum\_error}(n) N_k`;
    * :math:`S_{kd} = \sum w\gamma x`: :math:`\sum w\gamma R |x| + 2\,\mathrm{sum\_error}(n) \sum w\gamma |x|`;
    * :math:`Q_{kd}`, the scatter about the new mean :math:`\bar x`: a change of the responsibilities
      moves it by :math:`\sum w\Delta\gamma (x - \bar x)^2` (its derivative in :math:`\bar x` is 0);
      the kernel sums the scatter about the current mean μ and subtracts
      :math:`N (\bar x - \mu)^2`, which adds the rounding of that sum and of
      the shift, :math:`2 N |\bar x - \mu| \,\Delta\bar x`, with
      :math:`\Delta\bar x \le 2\,\mathrm{sum\_error}(n) \overline{|x|} + u|\mu|`;
    * :math:`D_{kd}`, the scatter about the current mean (``e_step_sums``):
      :math:`\sum w\Delta\gamma (x - \mu)^2 + 2\,\mathrm{sum\_error}(n) D_{kd}`;
    * log-likelihood :math:`\sum w \log p`: :math:`\sum w B + 2\,\mathrm{sum\_error}(n) \sum w |\log p|`.

    Where a responsibility underflows, our exp gives 0 and NumPy's a subnormal:
    ``EXP_FLUSH`` per sample and term. Returns a dict of the tolerances, keyed
    nk, sum_x, sum_xx, log_lik and sum_dd.
    """
    X = np.asarray(X, dtype=np.float64)
    n_samples = len(X)
    evaluation = MixtureEvaluation(X, weights, means, variances)
    wr = sample_weight[:, None] * evaluation.resp
    w_err = sample_weight[:, None] * (evaluation.proba_bound + EXP_FLUSH)  # |w Δγ|, (n, K)
    sums = 2 * sum_error(n_samples)
    nk = wr.sum(axis=0)
    abs_x = np.abs(X)
    new_means = (wr.T @ X) / np.maximum(nk, np.finfo(np.float64).tiny)[:, None]
    scatter = np.einsum("nk,nkd->kd", w_err, (X[:, None, :] - new_means[None]) ** 2)
    about_current = np.einsum("nk,nkd->kd", wr, (X[:, None, :] - means[None]) ** 2)
    shift = np.abs(new_means - means)
    mean_error = sums * (wr.T @ abs_x) / np.maximum(nk, np.finfo(np.float64).tiny)[:, None] + U * np.abs(means)
    return dict(
        nk=w_err.sum(axis=0) + sums * nk,
        sum_x=w_err.T @ abs_x + sums * (wr.T @ abs_x),
        sum_xx=scatter + sums * about_current + 2 * nk[:, None] * shift * mean_error + 6 * U * about_current,
        log_lik=float(sample_weight @ evaluation.score_bound + sums * (sample_weight @ np.abs(evaluation.log_norm))),
        sum_dd=np.einsum("nk,nkd->kd", w_err, (X[:, None, :] - means[None]) ** 2) + sums * about_current,
    )


# ------------------------------------------------------------------ labels

def near_ties(scores, bound):
    """The best column of each row of ``scores`` (higher is better), and whether the runner-up is within
    the summed ``bound`` of the two: where two correct computations may pick either."""
    if scores.shape[1] == 1:
        return np.zeros(len(scores), dtype=np.int64), np.zeros(len(scores), dtype=bool)
    order = np.argsort(-scores, axis=1, kind="stable")[:, :2]
    rows = np.arange(len(scores))
    best, second = order[:, 0], order[:, 1]
    margin = scores[rows, best] - scores[rows, second]
    return best, margin <= bound[rows, best] + bound[rows, second]


def assert_labels_agree(got, want, scores, bound, max_near_tie_fraction=1e-3):
    r"""Labels equal wherever the best score beats the second by more than both could be off.

    ``scores`` (n, K): higher is better (log-probabilities, or minus squared
    distances), ``bound`` (n, K): how far each may be off. A sample is a
    near-tie when its margin is within the summed bounds of the two; there the
    labels may differ. Near-ties are bounded too: the margins of real data
    spread over many units, so the share of them within ~1e-9 of zero is tiny;
    a share above ``max_near_tie_fraction`` means systematic ties (data and
    parameters on one grid), which this comparison cannot judge.

    Returns the number of near-ties.
    """
    best, near_tie = near_ties(scores, bound)
    decided = ~near_tie
    n_wrong = int(np.count_nonzero(got[decided] != want[decided]))
    assert n_wrong == 0, f"{n_wrong} labels differ where the margin exceeds the rounding bound"
    assert np.array_equal(want[decided], best[decided]), "the oracle's labels are not the best scores"
    n_near = int(np.count_nonzero(near_tie))
    assert n_near <= max_near_tie_fraction * len(scores) + 1, f"{n_near} near-ties of {len(scores)} samples"
    return n_near


# ------------------------------------------------------------------ k-means

def squared_distance_bound(X, centers):
    r"""(n, K) bound on the difference of two correct evaluations of :math:`\lVert x_n - c_k \rVert^2`.

    scikit-learn centres X on its mean m, then expands :math:`\lVert c\rVert^2 - 2x\cdot c`
    (dot products of D terms, |terms| summing to :math:`(\lVert\tilde x\rVert + \lVert\tilde c\rVert)^2`
    in the centred coordinates): (D + 4) u of that, plus the centring's own rounding
    u(|x| + |m|) per coordinate, moving the distance by 2‖x - c‖ times it; we sum
    (x - c)²: (D + 2) u ‖x - c‖².
    """
    X = np.asarray(X, dtype=np.float64)
    n_features = X.shape[1]
    m = X.mean(axis=0)
    Xc, Cc = X - m, centers - m
    norm_x, norm_c = np.linalg.norm(Xc, axis=1), np.linalg.norm(Cc, axis=1)
    d2 = ((X[:, None, :] - centers[None]) ** 2).sum(axis=2)
    centring = 2 * np.sqrt(d2) * U * np.linalg.norm(np.abs(X) + np.abs(m), axis=1)[:, None]
    return (n_features + 4) * U * (norm_x[:, None] + norm_c[None]) ** 2 + (n_features + 2) * U * d2 + centring, d2


def centers_tolerance(X, sample_weight, labels, centers):
    r"""Absolute bound on |Δc_kd| between two correct Lloyd updates from the same labels.

    A centre is :math:`\sum_{i \in k} w_i x_i / \sum_{i \in k} w_i`: each side's
    sums round by ``sum_error(n_k)`` relative to :math:`\sum w|x_d|`; scikit-learn
    also centres X on its mean m and adds m back (3u(|c| + |m|)). Absolute,
    because a centre coordinate can be 0 (blobs around the origin); it scales
    with the data's magnitude.
    """
    X = np.asarray(X, dtype=np.float64)
    m = np.abs(X.mean(axis=0))
    n_clusters = len(centers)
    tol = np.empty_like(centers)
    for k in range(n_clusters):
        members = labels == k
        w = sample_weight[members]
        n_k = int(np.count_nonzero(members))
        abs_mean = (w @ (np.abs(X[members] - X.mean(axis=0)) + np.abs(X[members]))) / max(w.sum(), np.finfo(float).tiny)
        tol[k] = 4 * sum_error(n_k) * abs_mean + 3 * U * (np.abs(centers[k]) + m)
    return tol


def inertia_tolerance(X, sample_weight, labels, centers, center_changes):
    r"""Absolute bound on the inertia's difference: each term's rounding (``squared_distance_bound``),
    the sum's (2·sum_error(n) of the total), and the centres' difference (2‖x - c‖‖Δc‖ + ‖Δc‖² per term)."""
    bound, d2 = squared_distance_bound(X, centers)
    rows = np.arange(len(X))
    term = bound[rows, labels]
    shift = np.linalg.norm(center_changes, axis=1)[labels]
    moved = 2 * np.sqrt(d2[rows, labels]) * shift + shift**2
    total = sample_weight @ d2[rows, labels]
    return float(sample_weight @ (term + moved) + 2 * sum_error(len(X)) * total)


def lloyd_tolerances(X, sample_weight, labels, centers):
    r"""Bounds on two correct computations of a Lloyd step's sums from the same labels, and of the distances.

    Both sides compute :math:`\lVert x - c\rVert^2` as a sum of D squared
    differences, (D + 2)u of it each; sums over the n samples round by
    ``sum_error(n)`` of Σ|terms| on each side. Returns the tolerances of
    (Σ w x per cluster, Σ w per cluster, inertia) and the (n, K) bound on the
    distances, for ``assert_labels_agree``.
    """
    n_samples, n_features = X.shape
    n_clusters = len(centers)
    sums = 2 * sum_error(n_samples)
    d2 = ((X[:, None, :] - centers[None]) ** 2).sum(axis=2)
    distance_bound = 2 * (n_features + 2) * U * d2
    members = np.eye(n_clusters)[labels] * sample_weight[:, None]  # (n, K): w where the sample is in k
    inertia_terms = sample_weight * d2[np.arange(n_samples), labels]
    return (
        sums * (members.T @ np.abs(X)),
        sums * members.sum(axis=0),
        sums * inertia_terms.sum() + (sample_weight @ distance_bound[np.arange(n_samples), labels]),
        distance_bound,
    )


# ------------------------------------------------------------------ whole fits

def assert_same_mixture(ours, theirs, X, start, n_iter=None, sample_weight=None):
    """Two EM fits from one start: same iterations; parameters and lower bounds within ``fit_tolerances``.

    ``start`` is the (weights, means, variances) both fits began from; ``n_iter``
    the iterations run since (default: the fit's own); ``sample_weight`` the weights of X.
    """
    # exact: the stopping rule compares a change of the bound with tol, and the bounds agree to far
    # below the changes seen near tol (a crossing within τ of tol would be a coincidence)
    assert ours.n_iter_ == theirs.n_iter_
    assert ours.converged_ == theirs.converged_
    sample_weight = np.ones(len(X)) if sample_weight is None else sample_weight
    n_iter = theirs.n_iter_ if n_iter is None else n_iter
    tau, lower_bound_tol = fit_tolerances(X, sample_weight, [start, model_params(theirs)], n_iter)
    differences = natural_differences(ours, theirs)
    assert max(differences.values()) <= tau, f"{differences} exceed τ = {tau:.3g}"
    assert_allclose(ours.lower_bounds_, theirs.lower_bounds_, rtol=0, atol=lower_bound_tol)
    assert_allclose(ours.lower_bound_, theirs.lower_bound_, rtol=0, atol=lower_bound_tol)


def assert_same_kmeans(ours, theirs, X, sample_weight=None):
    """Two k-means fits from one start: same iterations and labels; centres and inertia within rounding.

    The same init fixes the label order, so labels compare as they are,
    wherever the margin between the two nearest centres exceeds the rounding
    of both distance formulas plus the effect of the centres' difference.
    Given the same labels, a centre is a weighted mean of the same rows,
    summed in another order: its tolerance is one update's, not accumulated.
    """
    sample_weight = np.ones(len(X)) if sample_weight is None else sample_weight
    assert ours.n_iter_ == theirs.n_iter_
    center_changes = ours.cluster_centers_ - theirs.cluster_centers_
    bound, d2 = squared_distance_bound(X, theirs.cluster_centers_)
    shift = np.linalg.norm(center_changes, axis=1)  # our distances use our centres: ±(2‖x - c‖‖Δc‖ + ‖Δc‖²)
    assert_labels_agree(ours.labels_, theirs.labels_, -d2, bound + 2 * np.sqrt(d2) * shift + shift**2)
    tol = centers_tolerance(X, sample_weight, theirs.labels_, theirs.cluster_centers_)
    assert np.all(np.abs(center_changes) <= tol), np.abs(center_changes) / tol
    inertia_tol = inertia_tolerance(X, sample_weight, theirs.labels_, theirs.cluster_centers_, center_changes)
    assert abs(ours.inertia_ - theirs.inertia_) <= inertia_tol


# ------------------------------------------------------------------ full, tied and spherical covariances

def upper_factors(covariances):
    """U_k with U_k U_kᵀ = Σ_k⁻¹, upper triangular, computed as scikit-learn does (Cholesky, triangular solve)."""
    import scipy.linalg

    return np.stack([scipy.linalg.solve_triangular(scipy.linalg.cholesky(c, lower=True), np.eye(len(c)), lower=True).T
                     for c in covariances])


def per_component(covariance_type, means, covariances):
    """Covariances as (K, D) variances (diag, spherical) or (K, D, D) matrices (full, tied)."""
    n_components, n_features = means.shape
    if covariance_type == "spherical":
        return np.repeat(np.asarray(covariances)[:, None], n_features, axis=1)
    if covariance_type == "tied":
        return np.broadcast_to(covariances, (n_components, n_features, n_features))
    return covariances


class FullMixtureEvaluation:
    r"""`MixtureEvaluation` for full covariance matrices (tied: the same matrix for every k).

    With the precision's upper Cholesky factor U (both sides use the same U:
    scikit-learn's ``precisions_cholesky_``, or U computed by its algorithm),
    scikit-learn forms :math:`y = xU - \mu U`, we form :math:`y = (x - \mu)U`,
    and both sum :math:`y_e^2`. Coordinate e of either product is a dot
    product of at most D terms: rounded by :math:`D u T_e` with
    :math:`T_e = \sum_d (|x_d| + |\mu_d|) |U_{de}|`, plus :math:`u T_e` for the
    subtraction (theirs after the products, ours before them). The sum of D
    squares adds :math:`D u \lVert y\rVert^2`, and :math:`\delta(y_e^2) = 2 |y_e| \delta y_e`.
    Halved by the Gaussian's ½, over both sides, plus the constant
    :math:`C_k = |\log\pi_k| + \frac D2 \log 2\pi + \sum_d |\log U_{dd}|` as in
    the diagonal case:

    .. math::
        A_{nk} = 2(D + 1)\,u \sum_e |y_{nke}|\, T_{nke} + (D + 2)\,u\,\lVert y_{nk}\rVert^2
                 + 2(\mathrm{ULP} + D + 2)\,u\,C_k

    Unlike the diagonal expansion (:math:`\mu^2/\sigma^2`), the conditioning is
    linear in :math:`|\mu|/\sigma` (T multiplies |y|, not |y| squared).

    ``parameter_changes`` (Δπ, Δμ, ΔΣ) adds their effect in whitened units,
    :math:`\tilde\delta = \Delta\mu\, U`, :math:`W = U^T \Delta\Sigma\, U`, z = (x - μ)U:

    .. math::
        |\Delta a| \le \frac{|\Delta\pi|}{\pi} + \sum_e |\tilde\delta_e| |z_e|
          + \frac12 \sum_{e,f} |W_{ef}|\, |z_e z_f - \delta_{ef}|
          + r^2 + m^2 + v^2 (\tfrac12 + \lVert z\rVert^2) + 2\lVert z\rVert m v (1 + v)

    with r = |Δπ|/π, m = ‖δ̃‖, v = ‖W‖_F, all below ½. First order:
    :math:`d \log\mathcal N = z\,\tilde\delta^T - \frac12 \operatorname{tr} W + \frac12 z W z^T`.
    The remainder: in the eigenbasis of W the whitened Gaussian is a product of
    one-dimensional ones with relative variance changes ρ_i, and the diagonal
    remainder of `_parameter_effect` summed over i is at most the terms above
    (Σρ² ≤ v², Σρ²z² ≤ v²‖z‖², Σ|z||δ||ρ|(1 + |ρ|) ≤ ‖z‖ m v (1 + v)).
    """

    def __init__(self, X, weights, means, covariances, factors=None, parameter_changes=None):
        X = np.asarray(X, dtype=np.float64)
        n_features = X.shape[1]
        covariances = np.broadcast_to(covariances, (len(means), n_features, n_features))
        factors = upper_factors(covariances) if factors is None else np.broadcast_to(factors, covariances.shape)
        self.z = np.einsum("nkd,kde->nke", X[:, None, :] - means[None], factors)  # (n, K, D)
        z2 = (self.z**2).sum(axis=2)
        log_det = np.log(np.diagonal(factors, axis1=1, axis2=2))
        log_weights = np.log(weights)
        self.weighted_log_prob = log_weights - 0.5 * (n_features * LOG_2PI + z2) + log_det.sum(axis=1)
        T = np.einsum("nkd,kde->nke", np.abs(X)[:, None, :] + np.abs(means)[None], np.abs(factors))
        C = np.abs(log_weights) + 0.5 * n_features * LOG_2PI + np.abs(log_det).sum(axis=1)
        self.term_bound = (2 * (n_features + 1) * U * (np.abs(self.z) * T).sum(axis=2)
                           + (n_features + 2) * U * z2 + 2 * (ULP + n_features + 2) * U * C)  # A_nk
        if parameter_changes is not None:
            self.term_bound = self.term_bound + self._parameter_effect(weights, factors, parameter_changes)
        _add_log_sum_exp_bounds(self)
        self.means, self.covariances, self.factors = means, covariances, factors

    def _parameter_effect(self, weights, factors, changes):
        d_weights, d_means, d_covariances = changes
        n_components, n_features = d_means.shape
        d_covariances = np.broadcast_to(d_covariances, (n_components, n_features, n_features))
        r = np.abs(d_weights) / weights
        delta = np.einsum("kd,kde->ke", d_means, factors)  # whitened change of the mean
        W = np.einsum("kde,kdf,kfg->keg", factors, d_covariances, factors)  # Uᵀ ΔΣ U
        m, v = np.linalg.norm(delta, axis=1), np.linalg.norm(W, axis=(1, 2))
        assert np.all(r < 0.5) and np.all(v < 0.5), "the changes are too large for the first-order bound"
        zz = np.abs(self.z[:, :, :, None] * self.z[:, :, None, :] - np.eye(n_features))
        first = r + (np.abs(delta)[None] * np.abs(self.z)).sum(axis=2) + 0.5 * (np.abs(W)[None] * zz).sum(axis=(2, 3))
        norm_z = np.linalg.norm(self.z, axis=2)
        second = r**2 + m**2 + v**2 * (0.5 + norm_z**2) + 2 * norm_z * m * v * (1 + v)
        return first + second


def evaluation_of(X, covariance_type, weights, means, covariances, factors=None, parameter_changes=None):
    """The oracle evaluation of a mixture of any covariance type (spherical: the diagonal one, variances repeated)."""
    if covariance_type in ("full", "tied"):
        return FullMixtureEvaluation(X, weights, means, covariances, factors, parameter_changes)
    if parameter_changes is not None and covariance_type == "spherical":
        parameter_changes = (*parameter_changes[:2], per_component("spherical", means, parameter_changes[2]))
    return MixtureEvaluation(X, weights, means, per_component(covariance_type, means, covariances), parameter_changes)


def full_step_error(X, sample_weight, evaluation, tied):
    r"""`em_step_error` for full (``tied``: one pooled) covariances, in whitened units.

    Natural units: |Δπ|/π; :math:`\max_e |(\Delta\mu\, U)_e|`;
    :math:`\max_{ef} |(U^T \Delta\Sigma\, U)_{ef}|`. On each side, from the same parameters:

    * Δπ/π: as for the diagonal model;
    * whitened Δμ: :math:`\overline{R |z_e|}` from the responsibilities, and each
      mean's summation :math:`2\,\mathrm{sum\_error}(n)(\overline{|x|} + |\mu|)`
      per coordinate, whitened through |U|;
    * whitened ΔΣ: :math:`\overline{R\, |z_e z_f - \delta_{ef}|}` from the
      responsibilities (the derivative of the scatter about the new mean in γ),
      plus the sums' rounding, whitened through :math:`|U|^T \cdot |U|`. Both
      sides' full M-steps centre: 2·sum_error(n) of
      :math:`\overline{|x - \bar x|_d |x - \bar x|_e}`; scikit-learn's centring
      :math:`x - \bar x` adds :math:`2u\,\overline{(|x| + |\bar x|)|x - \bar x|}`;
      ours sums about the current mean μ and subtracts
      :math:`N s s^T` (s = x̄ - μ), adding :math:`2|s|\Delta s` with
      :math:`\Delta s \le 2\,\mathrm{sum\_error}(n)\overline{|x|} + u|\mu|`.
      scikit-learn's *tied* M-step forms :math:`(X^T X - \sum_k N_k \mu_k^T\mu_k)/\sum N`,
      rounded relative to its uncentred terms:
      :math:`2\,\mathrm{sum\_error}(n)(\sum_n w |x||x|^T + \sum_k N_k |\mu_k||\mu_k|^T)/\sum N`.
      Tied pools the per-component terms, weighted by :math:`N_k/\sum N`.

    Returns the largest over components and coordinates.
    """
    n_samples, n_features = X.shape
    n_components = evaluation.resp.shape[1]
    means, factors = evaluation.means, evaluation.factors
    R = evaluation.proba_bound / np.maximum(evaluation.resp, np.finfo(np.float64).tiny)
    wr = sample_weight[:, None] * evaluation.resp
    nk = wr.sum(axis=0) + 10 * np.finfo(np.float64).eps
    spread = 2 * sum_error(n_samples)
    abs_U = np.abs(factors)

    def member_mean(values):  # (n, K, ...) -> the wγ-weighted mean per component, (K, ...)
        return np.einsum("nk,nk...->k...", wr, values) / nk.reshape((-1,) + (1,) * (values.ndim - 2))

    weights_error = member_mean(R) + spread + n_components * U
    mean_abs_x = (wr.T @ np.abs(X)) / nk[:, None]
    means_error = member_mean(R[..., None] * np.abs(evaluation.z)) + 2 * spread * np.einsum(
        "kd,kde->ke", mean_abs_x + np.abs(means), abs_U)
    z = evaluation.z
    from_resp = member_mean(R[..., None, None] * np.abs(z[:, :, :, None] * z[:, :, None, :] - np.eye(n_features)))
    new_means = (wr.T @ X) / nk[:, None]
    dev = np.abs(X[:, None, :] - new_means[None])  # |x - x̄|, (n, K, D)
    centred = spread * member_mean(dev[..., :, None] * dev[..., None, :])
    magnitude = np.abs(X)[:, None, :] + np.abs(new_means)[None]
    centring = 2 * U * member_mean(magnitude[..., :, None] * dev[..., None, :])
    shift = np.abs(new_means - means)
    d_shift = spread * mean_abs_x + U * np.abs(means)
    summed = 2 * centred + centring + np.swapaxes(centring, 1, 2) + 2 * (
        shift[:, :, None] * d_shift[:, None, :] + d_shift[:, :, None] * shift[:, None, :])
    if tied:
        share = (nk / nk.sum())[:, None, None]
        abs_x = np.abs(X)
        uncentred = spread * (((sample_weight[:, None] * abs_x).T @ abs_x
                               + (nk[:, None] * np.abs(new_means)).T @ np.abs(new_means)) / nk.sum())
        pooled = (share * summed).sum(axis=0) + uncentred
        covariance_error = np.einsum("de,df,fg->eg", abs_U[0], pooled, abs_U[0]) + (share * from_resp).sum(axis=0)
    else:
        covariance_error = np.einsum("kde,kdf,kfg->keg", abs_U, summed, abs_U) + from_resp
    return float(max(weights_error.max(), means_error.max(), covariance_error.max()))


def whitened_differences(ours, theirs):
    """|Δπ|/π, the largest |(Δμ U)_e| and |(Uᵀ ΔΣ U)_ef| of two fitted full or tied mixtures (U: theirs)."""
    n_components, n_features = theirs.means_.shape
    factors = np.broadcast_to(theirs.precisions_cholesky_, (n_components, n_features, n_features))
    d_covariances = np.broadcast_to(ours.covariances_ - theirs.covariances_, factors.shape)
    return {
        "weights": float((np.abs(ours.weights_ - theirs.weights_) / theirs.weights_).max()),
        "means": float(np.abs(np.einsum("kd,kde->ke", ours.means_ - theirs.means_, factors)).max()),
        "covariances": float(np.abs(np.einsum("kde,kdf,kfg->keg", factors, d_covariances, factors)).max()),
    }


def typed_differences(ours, theirs, covariance_type):
    """Natural-unit differences of two fitted mixtures of one covariance type."""
    if covariance_type in ("full", "tied"):
        return whitened_differences(ours, theirs)
    from types import SimpleNamespace

    def as_diag(model):
        return SimpleNamespace(weights_=model.weights_, means_=model.means_,
                               covariances_=per_component(covariance_type, model.means_, model.covariances_))
    return natural_differences(as_diag(ours), as_diag(theirs))


def typed_fit_tolerances(X, sample_weight, covariance_type, parameter_sets, n_iter):
    r"""`fit_tolerances` for any covariance type: τ = (T + 1)·e and the lower bounds' τ·G + rounding.

    Diag and spherical are `fit_tolerances` (spherical's variance is a mean of
    the diagonal ones, so its error is at most theirs). Full and tied take e
    from `full_step_error`, and
    :math:`G = \overline{\sum_k \gamma (1 + \sum_e |z_e| + \frac12 \sum_{ef} |z_e z_f - \delta_{ef}|)}`,
    the first-order change of log p per unit of whitened change.
    Each parameter set is (weights, means, covariances).
    """
    if covariance_type not in ("full", "tied"):
        return fit_tolerances(X, sample_weight, [(w, m, per_component(covariance_type, m, c))
                                                 for w, m, c in parameter_sets], n_iter)
    X = np.asarray(X, dtype=np.float64)
    step, points = 0.0, []
    n_features = X.shape[1]
    for params in parameter_sets:
        evaluation = FullMixtureEvaluation(X, *params)
        z = evaluation.z
        zz = np.abs(z[:, :, :, None] * z[:, :, None, :] - np.eye(n_features)).sum(axis=(2, 3))
        per_sample = (evaluation.resp * (1 + np.abs(z).sum(axis=2) + 0.5 * zz)).sum(axis=1)
        G = np.average(per_sample, weights=sample_weight)
        rounding = np.average(evaluation.score_bound + 2 * sum_error(len(X)) * np.abs(evaluation.log_norm),
                              weights=sample_weight)
        step = max(step, full_step_error(X, sample_weight, evaluation, covariance_type == "tied"))
        points.append((G, rounding))
    tau = (n_iter + 1) * step
    return tau, float(max(tau * G + rounding for G, rounding in points))


def assert_same_typed_mixture(ours, theirs, X, start, n_iter=None, sample_weight=None):
    """`assert_same_mixture` for any covariance type; ``start`` is (weights, means, covariances)."""
    covariance_type = theirs.covariance_type
    assert ours.n_iter_ == theirs.n_iter_
    assert ours.converged_ == theirs.converged_
    sample_weight = np.ones(len(X)) if sample_weight is None else sample_weight
    n_iter = theirs.n_iter_ if n_iter is None else n_iter
    tau, lower_bound_tol = typed_fit_tolerances(X, sample_weight, covariance_type,
                                                [start, model_params(theirs)], n_iter)
    differences = typed_differences(ours, theirs, covariance_type)
    assert max(differences.values()) <= tau, f"{differences} exceed τ = {tau:.3g}"
    assert_allclose(ours.lower_bounds_, theirs.lower_bounds_, rtol=0, atol=lower_bound_tol)
    return tau, differences


def full_statistics_tolerances(X, sample_weight, evaluation):
    r"""`statistics_tolerances` for full covariances: N_k, Σ w γ x, scatter matrices, Σ w log p.

    As for the diagonal model, entry by entry: the scatter matrix about the
    new mean moves by :math:`\sum w \Delta\gamma |x - \bar x|_d |x - \bar x|_e`
    with the responsibilities; the kernel sums about the current mean,
    :math:`2\,\mathrm{sum\_error}(n)\sum w\gamma |x - \mu|_d |x - \mu|_e`, and
    subtracts :math:`N s s^T` (s = x̄ - μ): :math:`N(|s_d|\Delta s_e + \Delta s_d |s_e|)`,
    :math:`\Delta s \le 2\,\mathrm{sum\_error}(n)\overline{|x|} + u|\mu|`, and 6u of the terms.
    """
    X = np.asarray(X, dtype=np.float64)
    sums = 2 * sum_error(len(X))
    wr = sample_weight[:, None] * evaluation.resp
    w_err = sample_weight[:, None] * (evaluation.proba_bound + EXP_FLUSH)
    nk = wr.sum(axis=0)
    safe_nk = np.maximum(nk, np.finfo(np.float64).tiny)[:, None]
    abs_x, means = np.abs(X), evaluation.means
    new_means = (wr.T @ X) / safe_nk
    dev_new = np.abs(X[:, None, :] - new_means[None])
    dev_now = np.abs(X[:, None, :] - means[None])
    about_current = np.einsum("nk,nkd,nke->kde", wr, dev_now, dev_now)
    shift = np.abs(new_means - means)
    d_shift = sums * (wr.T @ abs_x) / safe_nk + U * np.abs(means)
    return dict(
        nk=w_err.sum(axis=0) + sums * nk,
        sum_x=w_err.T @ abs_x + sums * (wr.T @ abs_x),
        sum_xx=np.einsum("nk,nkd,nke->kde", w_err, dev_new, dev_new) + (sums + 6 * U) * about_current
        + nk[:, None, None] * (shift[:, :, None] * d_shift[:, None, :] + d_shift[:, :, None] * shift[:, None, :]),
        log_lik=float(sample_weight @ evaluation.score_bound + sums * (sample_weight @ np.abs(evaluation.log_norm))),
    )
