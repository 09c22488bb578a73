r"""Lloyd's algorithm and the k-means++ trials in plain NumPy: the version to learn from.

k-means looks for centres :math:`c_1, \dots, c_K` that minimise the weighted
inertia

.. math::
    J = \sum_{i=1}^{n} w_i \min_k \lVert x_i - c_k \rVert^2 .

Lloyd's algorithm alternates two steps, neither of which can increase
:math:`J`: assign each sample to its nearest centre, then move each centre to
the weighted mean of its samples.

`kmeans._kernels` has numba versions of the same functions, with the same
names and arguments; `update_centers` is shared by both.
"""

import numpy as np


def squared_distances(X, centers):
    r"""Squared Euclidean distance from every sample to every centre.

    .. math::
        d_{ik} = \lVert x_i - c_k \rVert^2 = \sum_d (x_{id} - c_{kd})^2

    Computed as a sum of squared differences, not as
    :math:`\lVert x\rVert^2 - 2 x \cdot c + \lVert c\rVert^2`, which loses digits
    when the points are far from the origin.

    Parameters
    ----------
    X : ndarray of shape (n_samples, n_features)
    centers : ndarray of shape (n_clusters, n_features)

    Returns
    -------
    sq_dist : ndarray of shape (n_samples, n_clusters)
    """
    return np.stack([((X - center) ** 2).sum(axis=1) for center in centers], axis=1)


def assign_labels(X, sample_weight, centers):
    r"""Nearest centre of each sample (assignment step), and the inertia.

    .. math::
        l_i = \arg\min_k \lVert x_i - c_k \rVert^2, \qquad
        J = \sum_i w_i \lVert x_i - c_{l_i} \rVert^2

    Ties go to the lowest index.

    Parameters
    ----------
    X : ndarray of shape (n_samples, n_features)
    sample_weight : ndarray of shape (n_samples,)
        :math:`w_i`.
    centers : ndarray of shape (n_clusters, n_features)
        :math:`c_k`.

    Returns
    -------
    labels : ndarray of shape (n_samples,), int64
    inertia : float
    """
    sq_dist = squared_distances(X, centers)
    labels = np.argmin(sq_dist, axis=1)  # first minimum wins ties
    min_dist = sq_dist[np.arange(len(X)), labels]
    return labels, float(sample_weight @ min_dist)


def lloyd_step(X, sample_weight, centers, labels):
    r"""Assignment step plus the per-cluster sums the update step needs.

    .. math::
        N_k = \sum_{i:\, l_i = k} w_i, \qquad
        S_k = \sum_{i:\, l_i = k} w_i x_i

    The new centres are :math:`S_k / N_k` (see `update_centers`). The returned
    inertia is that of the *old* centres, the ones the labels were assigned to.

    Parameters
    ----------
    X : ndarray of shape (n_samples, n_features)
    sample_weight : ndarray of shape (n_samples,)
    centers : ndarray of shape (n_clusters, n_features)
    labels : ndarray of shape (n_samples,), int64
        The previous step's labels (-1 before the first step), overwritten
        with the new ones. Reusing one array saves allocating a new one and
        comparing it with the last at every step: on a 12-megapixel image,
        that was a third of the step.

    Returns
    -------
    sum_x : ndarray of shape (n_clusters, n_features)
        :math:`S_k`.
    nk : ndarray of shape (n_clusters,)
        :math:`N_k`, the weight in each cluster.
    inertia : float
    n_changed : int
        How many labels changed; 0 is Lloyd's strict convergence.
    """
    n_clusters, n_features = centers.shape
    new_labels, inertia = assign_labels(X, sample_weight, centers)
    n_changed = int(np.count_nonzero(new_labels != labels))
    labels[:] = new_labels
    nk = np.zeros(n_clusters)
    sum_x = np.zeros((n_clusters, n_features))
    np.add.at(nk, labels, sample_weight)  # each sample adds its weight to its cluster
    np.add.at(sum_x, labels, sample_weight[:, None] * X)
    return sum_x, nk, inertia, n_changed


def evaluate_candidates(X, sample_weight, closest_dist_sq, candidates):
    r"""What adding each candidate centre would do (a k-means++ trial).

    .. math::
        D_{ti}^2 = \min\left(D_i^2, \lVert x_i - y_t \rVert^2\right), \qquad
        \phi_t = \sum_i w_i D_{ti}^2

    where :math:`D_i^2` is the squared distance from :math:`x_i` to the nearest
    centre chosen so far (:math:`+\infty` before the first) and :math:`y_t` is
    candidate :math:`t`. k-means++ keeps the candidate with the lowest
    potential :math:`\phi_t`.

    Parameters
    ----------
    X : ndarray of shape (n_samples, n_features)
    sample_weight : ndarray of shape (n_samples,)
    closest_dist_sq : ndarray of shape (n_samples,)
        :math:`D_i^2`.
    candidates : ndarray of shape (n_candidates, n_features)

    Returns
    -------
    closest_dist_sq_with : ndarray of shape (n_candidates, n_samples)
        :math:`D_{ti}^2`: row ``t`` is the new ``closest_dist_sq`` if candidate ``t`` is kept.
    potentials : ndarray of shape (n_candidates,)
        :math:`\phi_t`.
    """
    closest_dist_sq_with = np.minimum(closest_dist_sq, squared_distances(X, candidates).T)
    return closest_dist_sq_with, closest_dist_sq_with @ sample_weight


def first_rows_reaching(inverse, sample_weight, values, targets):
    r"""k-means++'s draw of rows, given per distinct row: the first row whose running sum reaches each target.

    .. math::
        i_t = \min \{ i : \textstyle\sum_{j \le i} w_j v_{u_j} \ge t \}

    where row j of X is distinct row :math:`u_j` (``inverse``) with value :math:`v_{u_j}`
    (its squared distance to the nearest centre): ``np.searchsorted(np.cumsum(w * v[inverse]), targets)``.

    Parameters
    ----------
    inverse : ndarray of shape (n_samples,)
    sample_weight : ndarray of shape (n_samples,)
    values : ndarray of shape (n_distinct,)
    targets : ndarray of shape (n_targets,)

    Returns
    -------
    rows : ndarray of shape (n_targets,), int64
        ``n_samples`` for a target above the total.
    """
    return np.searchsorted(np.cumsum(sample_weight * values[inverse]), targets).astype(np.int64)


def update_centers(X, sample_weight, centers, labels, sum_x, nk, n_members=None):
    r"""Update step: each centre moves to the weighted mean of its samples.

    .. math::
        c_k \leftarrow \frac{S_k}{N_k}
        = \frac{\sum_{i:\, l_i = k} w_i x_i}{\sum_{i:\, l_i = k} w_i}

    A cluster with :math:`N_k = 0` is relocated as in scikit-learn: the
    samples farthest from their current centre (`farthest_samples`) each
    leave their cluster and become, alone, an empty cluster's new centre.
    Unlike scikit-learn, a relocated centre is exactly that sample, and
    samples with zero weight are never chosen. Clusters still empty after that
    (every sample sits on its centre, as when there are fewer distinct points
    than clusters) take the centre of the heaviest cluster.

    Parameters
    ----------
    X : ndarray of shape (n_samples, n_features)
    sample_weight : ndarray of shape (n_samples,)
    centers : ndarray of shape (n_clusters, n_features)
        The centres the labels were assigned to.
    labels : ndarray of shape (n_samples,)
    sum_x : ndarray of shape (n_clusters, n_features)
    nk : ndarray of shape (n_clusters,)
    n_members : ndarray of shape (n_clusters,), default=None
        Positive-weight samples in each cluster, counted from ``labels`` when
        None. The dask path passes X holding only the candidate samples, and
        the counts over all of them.

    Returns
    -------
    new_centers : ndarray of shape (n_clusters, n_features)
    """
    empty = np.flatnonzero(nk == 0)
    if len(empty) == 0:
        return sum_x / nk[:, None]
    sum_x, nk = sum_x.copy(), nk.copy()
    # count members, not weight: rounding could leave a tiny weight in a cluster
    # whose samples were all moved away
    if n_members is None:
        n_members = np.bincount(labels[sample_weight > 0], minlength=len(nk))
    n_members = n_members.copy()
    far = farthest_samples(X, sample_weight, centers, labels, len(empty))
    for k, i in zip(empty, far):  # move sample i from its cluster to cluster k
        sum_x[labels[i]] -= sample_weight[i] * X[i]
        nk[labels[i]] -= sample_weight[i]
        n_members[labels[i]] -= 1
        sum_x[k] = sample_weight[i] * X[i]
        nk[k] = sample_weight[i]
        n_members[k] = 1
    new_centers = np.empty_like(sum_x)
    filled = n_members > 0
    new_centers[filled] = sum_x[filled] / nk[filled, None]
    new_centers[empty[: len(far)]] = X[far]  # exactly the sample, not (w x) / w
    new_centers[~filled] = new_centers[np.argmax(np.where(filled, nk, -1.0))]
    return new_centers


def farthest_samples(X, sample_weight, centers, labels, n_far):
    """The ``n_far`` positive-weight samples farthest from their centres.

    Picked with the same `numpy.argpartition` call as scikit-learn, so the
    same samples come out in the same order. Returns no sample when every
    sample sits on its centre: relocating would change nothing.

    Parameters
    ----------
    X : ndarray of shape (n_samples, n_features)
    sample_weight : ndarray of shape (n_samples,)
    centers : ndarray of shape (n_clusters, n_features)
    labels : ndarray of shape (n_samples,)
    n_far : int

    Returns
    -------
    indices : ndarray of shape (n_far,) or (0,), int
    """
    if n_far == 0:
        return np.empty(0, dtype=np.int64)
    sq_dist = ((X - centers[labels]) ** 2).sum(axis=1)
    sq_dist[sample_weight == 0] = -1.0  # a zero-weight sample counts as removed
    if sq_dist.max() == 0:
        return np.empty(0, dtype=np.int64)
    return np.argpartition(sq_dist, -n_far)[: -n_far - 1 : -1]
