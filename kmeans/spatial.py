r"""k-means on the pixel grid with a Potts prior, by iterated conditional modes (ICM); and the grid's neighbourhoods.

The hard-assignment counterpart of the mixture's mean-field EM (`em.spatial`).
Pixel :math:`i` has the colour :math:`x_i` and the label :math:`z_i`; the
cost of a labelling and of the centres :math:`c_k` is

.. math::
    E(z, c) = \sum_i \frac{\lVert x_i - c_{z_i} \rVert^2}{2 \hat\sigma^2}
              + \beta \sum_{i \sim j} [z_i \ne z_j]

the second sum over the pairs of neighbouring pixels. :math:`\hat\sigma^2` is
the pooled within-cluster variance per feature of the ordinary fit,
``inertia / (n_pixels * n_features)``, fixed during the refinement. Dividing
by :math:`2\hat\sigma^2` makes the first term :math:`-\log` of a Gaussian of
that variance (up to a constant), so β means the same as for the mixture: ICM
is the zero-temperature limit of mean-field EM with a shared spherical
covariance, and one disagreeing neighbour costs as much as moving a colour
:math:`\sqrt{2\beta}\,\hat\sigma` further from its centre.

ICM alternates two steps, each of which can only lower E: every pixel takes
the label of least cost given its neighbours' labels (a sweep), then every
centre becomes the mean of its pixels. It stops when a sweep changes no label,
or lowers E per pixel by less than ``tol`` (1e-3 by default, the mixture's
default tolerance on its free energy per pixel, in the same units).

Determinism: a sweep visits the pixels in four phases, by the parities of row
and column. Two pixels of one phase are never neighbours, even in the
8-neighbourhood, so a phase can update all its pixels at once (in parallel)
and the result is the same for any number of threads.
"""

import numpy as np
from numba import njit, prange

from . import _kernels
from .shared import chunk_bounds, count_chunks, dynamic_chunks

JIT_OPTIONS = _kernels.JIT_OPTIONS
NEIGHBOURHOODS = {
    4: ((-1, 0), (0, -1), (0, 1), (1, 0)),
    8: ((-1, -1), (-1, 0), (-1, 1), (0, -1), (0, 1), (1, -1), (1, 0), (1, 1)),
}
PHASES = ((0, 0), (0, 1), (1, 0), (1, 1))  # (row parity, column parity), in the order a sweep visits them
ROWS = 16  # rows per parallel chunk: fixed by the image, never by the thread count


def neighbour_offsets(neighbours):
    """The (row, column) offsets of the 4- or 8-neighbourhood, int64 of shape (neighbours, 2)."""
    if neighbours not in NEIGHBOURHOODS:
        raise ValueError(f"neighbours={neighbours!r}: use 4 (edge neighbours) or 8 (edges and corners).")
    return np.array(NEIGHBOURHOODS[neighbours], dtype=np.int64)


def check_beta(beta):
    """β must be a finite number >= 0."""
    if not (isinstance(beta, (int, float, np.number)) and np.isfinite(beta) and beta >= 0):
        raise ValueError(f"smooth={beta!r}: the Potts interaction β must be a finite number >= 0 (0: no smoothing).")


def phase_masks(shape):
    """The pixels of each phase, a list of four (height, width) bool arrays in `PHASES` order."""
    rows, cols = np.indices(shape)
    return [(rows % 2 == py) & (cols % 2 == px) for py, px in PHASES]


def later_phase(phase, dy, dx):
    """True when the neighbour at offset (dy, dx) of a pixel of ``phase`` is visited after it in a sweep."""
    py, px = PHASES[phase]
    return 2 * ((py + dy) % 2) + (px + dx) % 2 > phase


# ---------------------------------------------------------------- reference

def icm_sweep_reference(index, colors, sq_dist, labels, beta, offsets):
    r"""One ICM sweep in plain NumPy, phase by phase; updates ``labels`` in place.

    .. math::
        z_i \leftarrow \arg\min_k \; \frac{d_{ik}}{2\hat\sigma^2} + \beta \,\#\{j \in N(i) : z_j \ne k\}

    with ``sq_dist`` already divided by :math:`2\hat\sigma^2`. Ties go to the lowest k.

    Parameters
    ----------
    index : ndarray of shape (height, width), int
        Each pixel's row of ``colors``; -1 for a pixel left out (transparent).
    colors : ndarray of shape (n_colors, n_features)
    sq_dist : ndarray of shape (n_colors, n_clusters)
        Each colour's scaled squared distance to each centre.
    labels : ndarray of shape (height, width), int64
        -1 where ``index`` is.
    beta : float
    offsets : ndarray of shape (n_neighbours, 2)

    Returns
    -------
    nk : ndarray of shape (n_clusters,)
        Pixels per label after the sweep.
    sum_x : ndarray of shape (n_clusters, n_features)
    cost : float
        E(z, c) of the new labels and the centres of ``sq_dist``.
    n_changed : int
    """
    n_clusters = sq_dist.shape[1]
    before = labels.copy()
    valid = index >= 0
    for mask in phase_masks(index.shape):
        mask &= valid
        agree = _agreements(labels, n_clusters, offsets)  # how many neighbours have each label
        cost = sq_dist[index[mask]] + beta * (agree.sum(axis=2)[mask][:, None] - agree[mask])
        labels[mask] = np.argmin(cost, axis=1)
    agree = _agreements(labels, n_clusters, offsets)
    own = np.take_along_axis(agree, np.maximum(labels, 0)[..., None], axis=2)[..., 0]
    disagreeing_pairs = 0.5 * (agree.sum(axis=2) - own)[valid].sum()  # each pair seen from both ends
    cost = sq_dist[index[valid], labels[valid]].sum() + beta * disagreeing_pairs
    one_hot = np.eye(n_clusters)[labels[valid]]
    return one_hot.sum(axis=0), one_hot.T @ colors[index[valid]], float(cost), int((labels != before).sum())


def _agreements(labels, n_clusters, offsets):
    """How many neighbours of each pixel carry each label, (height, width, n_clusters); -1 and outside count 0."""
    one_hot = (labels[..., None] == np.arange(n_clusters)).astype(np.float64)
    return neighbour_sums(one_hot, offsets)


def neighbour_sums(values, offsets):
    """Σ over the neighbours j of ``values[j]``, (height, width, K); pixels outside the image count 0."""
    height, width = values.shape[:2]
    padded = np.pad(values, ((1, 1), (1, 1), (0, 0)))
    return sum(padded[1 + dy:1 + dy + height, 1 + dx:1 + dx + width] for dy, dx in offsets)


# ---------------------------------------------------------------- kernel

def icm_sweep(index, colors, sq_dist, labels, beta, offsets):
    """Numba version of `icm_sweep_reference`, same arguments and results; ``labels`` updated in place."""
    n_clusters, n_features = sq_dist.shape[1], colors.shape[1]
    n_chunks = count_chunks.py_func(index.shape[0], ROWS)
    nk = np.zeros((n_chunks, n_clusters), dtype=np.float64)
    sum_x = np.zeros((n_chunks, n_clusters, n_features), dtype=np.float64)
    cost = np.zeros(n_chunks, dtype=np.float64)
    changed = np.zeros(n_chunks, dtype=np.int64)
    for phase in range(len(PHASES)):
        later = np.array([later_phase(phase, dy, dx) for dy, dx in offsets])
        _icm_phase(index, colors, sq_dist, labels, float(beta), offsets, later, *PHASES[phase], nk, sum_x, cost, changed)
    # the chunks' rows added in chunk order, in NumPy: the same sums for any thread count
    return nk.sum(axis=0), sum_x.sum(axis=0), float(cost.sum()), int(changed.sum())


@dynamic_chunks
@njit(parallel=True, **JIT_OPTIONS)
def _icm_phase(index, colors, sq_dist, labels, beta, offsets, later, py, px, nk, sum_x, cost, changed):
    """Relabel the pixels of one phase, chunk c of ``ROWS`` rows adding to row c of the sums.

    A pixel's share of the cost is its data term plus β for each disagreeing
    neighbour visited earlier in the sweep (already final): each pair is counted once.
    """
    height, width = index.shape
    n_clusters = sq_dist.shape[1]
    for c in prange(count_chunks(height, ROWS)):
        agree = np.empty(n_clusters, dtype=np.float64)
        row_start, row_stop = chunk_bounds(c, height, ROWS)
        for y in range(row_start + (row_start + py) % 2, row_stop, 2):
            for x in range(px, width, 2):
                color = index[y, x]
                if color < 0:
                    continue
                agree[:] = 0.0
                n_valid, early_agree, n_early = 0.0, 0.0, 0.0
                for o in range(offsets.shape[0]):
                    yy, xx = y + offsets[o, 0], x + offsets[o, 1]
                    if 0 <= yy < height and 0 <= xx < width and labels[yy, xx] >= 0:
                        agree[labels[yy, xx]] += 1.0
                        n_valid += 1.0
                best, best_cost = 0, np.inf
                for k in range(n_clusters):
                    value = sq_dist[color, k] + beta * (n_valid - agree[k])
                    if value < best_cost:
                        best, best_cost = k, value
                for o in range(offsets.shape[0]):
                    yy, xx = y + offsets[o, 0], x + offsets[o, 1]
                    if not later[o] and 0 <= yy < height and 0 <= xx < width and labels[yy, xx] >= 0:
                        n_early += 1.0
                        early_agree += 1.0 if labels[yy, xx] == best else 0.0
                changed[c] += 1 if labels[y, x] != best else 0
                labels[y, x] = best
                cost[c] += sq_dist[color, best] + beta * (n_early - early_agree)
                nk[c, best] += 1.0
                for d in range(colors.shape[1]):
                    sum_x[c, best, d] += colors[color, d]


# ---------------------------------------------------------------- the loop

def icm(index, colors, centers, labels, beta, neighbours=4, max_iter=100, tol=1e-3, sweep=icm_sweep, callback=None):
    """Refine a k-means fit on the pixel grid by ICM until no label changes; returns (centers, labels, costs).

    Parameters
    ----------
    index : ndarray of shape (height, width), int
        Each pixel's row of ``colors``, -1 for pixels left out.
    colors : ndarray of shape (n_colors, n_features)
    centers : ndarray of shape (n_clusters, n_features)
        The ordinary fit's centres.
    labels : ndarray of shape (height, width), int64
        The ordinary fit's labels (-1 where ``index`` is); not modified.
    beta : float
        The Potts interaction β >= 0, in units of the scaled cost (module docstring).
    neighbours : {4, 8}
    max_iter : int
    tol : float
        Stop when a sweep lowers E / n_pixels by less than this.
    sweep : `icm_sweep` or `icm_sweep_reference`
    callback : callable or None
        ``callback(n_iter, cost)`` after every sweep.

    Returns
    -------
    centers : ndarray of shape (n_clusters, n_features)
    labels : ndarray of shape (height, width), int64
    costs : list of float
        E(z, c) / n_pixels after each sweep, with the centres it used: never increases.
    """
    check_beta(beta)
    offsets = neighbour_offsets(neighbours)
    labels = np.ascontiguousarray(labels, dtype=np.int64).copy()
    centers = np.array(centers, dtype=np.float64)
    valid = index >= 0
    n_pixels = int(valid.sum())
    sq_dist_of = _kernels.squared_distances
    inertia = sq_dist_of(colors, centers)[index[valid], labels[valid]].sum()
    # pooled within-cluster variance per feature; the floor keeps a perfect fit (inertia 0) finite
    scale = 1.0 / (2.0 * max(inertia / (n_pixels * colors.shape[1]), np.finfo(np.float64).tiny))
    costs = []
    for n_iter in range(1, max_iter + 1):
        nk, sum_x, cost, n_changed = sweep(index, colors, sq_dist_of(colors, centers) * scale, labels, beta, offsets)
        filled = nk > 0  # an empty cluster keeps its centre
        centers[filled] = sum_x[filled] / nk[filled, None]
        costs.append(cost / n_pixels)
        if callback is not None:
            callback(n_iter, costs[-1])
        if n_changed == 0 or (len(costs) > 1 and costs[-2] - costs[-1] < tol):
            break
    return centers, labels, costs
