r"""A Gaussian mixture with a Potts prior on the pixel grid, fitted by mean-field EM (hidden Markov random field EM).

Pixel :math:`i` has the colour :math:`x_i`; its neighbours :math:`N(i)` are the
4 or 8 pixels around it (`kmeans.spatial.NEIGHBOURHOODS`). The labels are
coupled by a Potts interaction of strength :math:`\beta \ge 0`, and the
mean-field approximation gives each pixel its own distribution
:math:`q_i(k)` over the components (Zhang, Brady & Smith, IEEE TMI 2001;
Celeux, Forbes & Peyrard, Pattern Recognition 2003). The mean-field EM
maximises the free energy

.. math::
    F(q, \theta) = \sum_i \sum_k q_{ik} \big(\log \pi_k + \log \mathcal{N}(x_i \mid \theta_k)\big)
                   - \sum_i \sum_k q_{ik} \log q_{ik}
                   + \beta \sum_{i \sim j} \sum_k q_{ik} q_{jk}

(the last sum over the pairs of neighbouring pixels; :math:`\pi_k` acts as the
Potts model's external field, and its partition function is left out, as
in a penalised likelihood) by coordinate ascent:

* **E-step (a sweep)**: every pixel in turn takes the :math:`q_i` that maximises
  F with everything else fixed,

  .. math::
      q_i(k) \propto \pi_k \, \mathcal{N}(x_i \mid \theta_k)\, \exp\Big(\beta \sum_{j \in N(i)} q_j(k)\Big)

* **M-step**: the usual weighted M-step of the covariance type, with
  :math:`q_{ik}` as the responsibilities (`em.reference.M_STEPS`).

Both steps can only raise F, so the free energy per pixel, reported after
every iteration, never decreases. With β = 0 the sweep is the ordinary E-step.

Determinism: a sweep visits the pixels in four phases, by the parities of row
and column (`kmeans.spatial.PHASES`). No two pixels of a phase are neighbours,
so a phase updates all of its pixels at once from the others' current values
(in parallel, by blocks of rows) and the result is the same for any number of
threads. Memory: the colours are kept as distinct colours plus an index per
pixel, the log-densities are evaluated once per distinct colour, and the
responsibilities are float32 (12 MP at k = 10: 480 MB); nothing of
(n_pixels, n_components) float64 is ever made.

F is summed during the sweep: when pixel i is updated, its data and entropy
terms plus β times its pairs with neighbours visited earlier in the sweep
(whose q is final) equal :math:`\log Z_i - \beta \sum_k q_{ik} n^{\text{later}}_{ik}`,
with :math:`\log Z_i` the log-normaliser of the update and
:math:`n^{\text{later}}` the sum over the neighbours still to come.
"""

from dataclasses import dataclass

import numpy as np
from numba import njit, prange

from kmeans.shared import chunk_bounds, count_chunks, dynamic_chunks
from kmeans.spatial import PHASES, ROWS, check_beta, later_phase, neighbour_offsets, neighbour_sums, phase_masks

from . import _kernels
from ._kernels import BLOCK, JIT_OPTIONS, _block_e_step, _scratch, accumulate_full, full_lanes, reduce_lanes_full
from .estimator import evaluation_precisions
from .reference import M_STEPS, precisions_cholesky, scatter_about_new_means


# ---------------------------------------------------------------- reference

def mean_field_sweep_reference(index, colors, log_prob, resp, beta, offsets, means):
    r"""One mean-field sweep in plain NumPy, phase by phase; updates ``resp`` in place.

    .. math::
        \log q_i(k) = \log \pi_k + \log \mathcal{N}(x_i \mid \theta_k) + \beta \sum_{j \in N(i)} q_j(k) - \log Z_i

    Parameters
    ----------
    index : ndarray of shape (height, width), int
        Each pixel's row of ``colors``; -1 for a pixel left out (transparent), whose q stays 0.
    colors : ndarray of shape (n_colors, n_features)
    log_prob : ndarray of shape (n_colors, n_components)
        :math:`\log \pi_k + \log \mathcal{N}(x \mid \theta_k)` of each colour (`reference.weighted_log_prob`).
    resp : ndarray of shape (height, width, n_components)
        :math:`q_{ik}`, float32 or float64.
    beta : float
    offsets : ndarray of shape (n_neighbours, 2)
    means : ndarray of shape (n_components, n_features)
        :math:`\mu_k`, about which the scatter is summed.

    Returns
    -------
    nk : ndarray of shape (n_components,)
    sum_x : ndarray of shape (n_components, n_features)
    sum_dd : ndarray of shape (n_components, n_features, n_features)
        :math:`\sum_i q_{ik} (x_i - \mu_k)^T (x_i - \mu_k)`, as `reference.e_step_sums` for full covariances.
    free_energy : float
        F(q, θ) of the new q, from its definition (module docstring).
    """
    from scipy.special import logsumexp  # here: only --smooth's readable sweep needs scipy, 0.1-0.3 s to import

    valid = index >= 0
    for mask in phase_masks(index.shape):
        mask &= valid
        scores = log_prob[index[mask]] + beta * neighbour_sums(resp, offsets)[mask]
        resp[mask] = np.exp(scores - logsumexp(scores, axis=1)[:, None])
    q = resp[valid].astype(np.float64)
    X = colors[index[valid]]
    with np.errstate(divide="ignore", invalid="ignore"):
        entropy = -np.where(q > 0, q * np.log(q), 0.0).sum()
    pairs = 0.5 * (q * neighbour_sums(resp.astype(np.float64), offsets)[valid]).sum()  # each pair seen from both ends
    free_energy = (q * log_prob[index[valid]]).sum() + entropy + beta * pairs
    diff = X[:, None, :] - means[None, :, :]
    return q.sum(axis=0), q.T @ X, np.einsum("nk,nkd,nke->kde", q, diff, diff), float(free_energy)


# ---------------------------------------------------------------- kernel

def mean_field_sweep(index, colors, log_prob, resp, beta, offsets, means):
    """Numba version of `mean_field_sweep_reference`: same arguments and results, ``resp`` updated in place."""
    n_components, n_features = means.shape
    n_chunks = count_chunks.py_func(index.shape[0], ROWS)
    nk = np.zeros((n_chunks, n_components), dtype=np.float64)
    sum_x = np.zeros((n_chunks, n_components, n_features), dtype=np.float64)
    sum_dd = np.zeros((n_chunks, n_components, n_features, n_features), dtype=np.float64)
    energy = np.zeros(n_chunks, dtype=np.float64)
    for phase in range(len(PHASES)):
        later = np.array([later_phase(phase, dy, dx) for dy, dx in offsets])
        _sweep_phase(index, colors, log_prob, resp, float(beta), offsets, later, *PHASES[phase], means,
                     nk, sum_x, sum_dd, energy)
    # the chunks' rows added in chunk order, in NumPy: the same sums for any thread count
    return nk.sum(axis=0), sum_x.sum(axis=0), sum_dd.sum(axis=0), float(energy.sum())


@dynamic_chunks
@njit(parallel=True, **JIT_OPTIONS)
def _sweep_phase(index, colors, log_prob, resp, beta, offsets, later, py, px, means, nk, sum_x, sum_dd, energy):
    """Update the pixels of one phase in blocks along each row; chunk c of ``ROWS`` rows adds to row c of the sums.

    Per block, transposed as in `em._kernels`: lp[k, b] = log π_k N(x_b | k) + β n_bk,
    `_block_e_step` for q and log Z, then the lane sums of `accumulate_full`.
    """
    height, width = index.shape
    n_components, n_features = means.shape
    for c in prange(count_chunks(height, ROWS)):
        xb, lp, q, log_norm, work = _scratch(n_components, n_features)
        to_come = np.empty((n_components, BLOCK), dtype=np.float64)  # n^later: neighbours still to be visited
        lane_n, lane_x, lane_dd = full_lanes(n_components, n_features)
        lane_f = np.zeros(BLOCK, dtype=np.float64)
        cols = np.empty(BLOCK, dtype=np.int64)
        row_start, row_stop = chunk_bounds(c, height, ROWS)
        for y in range(row_start + (row_start + py) % 2, row_stop, 2):
            x = px
            while x < width:
                n = 0  # gather up to BLOCK pixels of this phase that take part
                while x < width and n < BLOCK:
                    if index[y, x] >= 0:
                        cols[n] = x
                        n += 1
                    x += 2
                for b in range(n):
                    color = index[y, cols[b]]
                    for d in range(n_features):
                        xb[d, b] = colors[color, d]
                    for k in range(n_components):
                        lp[k, b] = 0.0
                        to_come[k, b] = 0.0
                for o in range(offsets.shape[0]):
                    yy = y + offsets[o, 0]
                    if yy < 0 or yy >= height:
                        continue
                    for b in range(n):
                        xx = cols[b] + offsets[o, 1]
                        if 0 <= xx < width:
                            for k in range(n_components):
                                value = resp[yy, xx, k]
                                lp[k, b] += value
                                if later[o]:
                                    to_come[k, b] += value
                for b in range(n):
                    color = index[y, cols[b]]
                    for k in range(n_components):
                        lp[k, b] = log_prob[color, k] + beta * lp[k, b]
                _block_e_step(lp, n, q, log_norm, work)
                for b in range(n):
                    share = log_norm[b]
                    for k in range(n_components):
                        share -= beta * q[k, b] * to_come[k, b]
                        resp[y, cols[b], k] = q[k, b]
                    lane_f[b] += share
                accumulate_full(xb, q, n, means, lane_n, lane_x, lane_dd)
        for b in range(BLOCK):
            energy[c] += lane_f[b]
        reduce_lanes_full(lane_n, lane_x, lane_dd, nk[c], sum_x[c], sum_dd[c])


# ---------------------------------------------------------------- the loop

@dataclass
class GridFit:
    """The result of `fit_grid`."""

    resp: np.ndarray  # (height, width, n_components) float32: q_ik, 0 for pixels left out
    free_energies: list  # F / n_pixels after every iteration, under the parameters the sweep used
    n_iter: int
    converged: bool


def fit_grid(model, index, colors, beta, neighbours=4, max_iter=None, tol=None, resp=None, sweep=mean_field_sweep,
             callback=None):
    """Refine a fitted `em.GaussianMixture` on the pixel grid by mean-field EM; sets its parameters, returns a `GridFit`.

    Parameters
    ----------
    model : em.GaussianMixture
        Fitted (on the distinct colours); its weights, means and covariances are the start and are replaced
        by the refined ones. Any covariance type.
    index : ndarray of shape (height, width), int
        Each pixel's row of ``colors``, -1 for pixels left out.
    colors : ndarray of shape (n_colors, n_features)
    beta : float
        The Potts interaction β >= 0.
    neighbours : {4, 8}
    max_iter, tol : int, float or None
        None takes the model's; EM stops when F per pixel changes by less than ``tol``.
    resp : ndarray of shape (height, width, K) or None
        Starting q (float32 or float64), updated in place. None starts from zeros in float32: the first
        sweep then gives each pixel the model's responsibilities times the prior of the neighbours visited
        before it, and no pass over every pixel is spent on a start that sweep overwrites.
    sweep : `mean_field_sweep` or `mean_field_sweep_reference`
    callback : callable or None
        ``callback(n_iter, free_energy)`` after every iteration.
    """
    check_beta(beta)
    offsets = neighbour_offsets(neighbours)
    max_iter = model.max_iter if max_iter is None else max_iter
    tol = model.tol if tol is None else tol
    covariance_type = model.covariance_type
    resp = np.zeros((*index.shape, model.n_components), dtype=np.float32) if resp is None else resp
    n_pixels = int((index >= 0).sum())
    weights, means, covariances, factors = model._fitted_params()
    free_energies, converged, n_iter = [], False, 0
    for n_iter in range(1, max_iter + 1):
        precisions = evaluation_precisions(covariance_type, covariances, factors, means.shape)
        log_prob = _kernels.weighted_log_prob(colors, means, precisions, np.log(weights))
        nk, sum_x, sum_dd, free_energy = sweep(index, colors, log_prob, resp, beta, offsets, means)
        if covariance_type in ("diag", "spherical"):  # their M-steps take the scatter's diagonal
            sum_dd = np.ascontiguousarray(np.diagonal(sum_dd, axis1=1, axis2=2))
        weights, means, covariances = M_STEPS[covariance_type](*scatter_about_new_means(nk, sum_x, sum_dd, means),
                                                               model.reg_covar)
        factors = precisions_cholesky(covariances, covariance_type)
        free_energies.append(free_energy / n_pixels)
        if callback is not None:
            callback(n_iter, free_energies[-1])
        if len(free_energies) > 1 and abs(free_energies[-1] - free_energies[-2]) < tol:
            converged = True
            break
    model._set_params(weights, means, covariances, factors)
    return GridFit(resp, free_energies, n_iter, converged)
