"""KMeans: Lloyd's algorithm with greedy k-means++ seeding, scikit-learn compatible."""

import math
import sys
import warnings
from collections import namedtuple

import numpy as np

from . import _kernels, distributed, reference
from .reference import update_centers
from .shared import (KEY_LIMIT, Estimator, Trace, check_int, check_k, check_number, check_random_state,
                     check_sample_weight, check_samples, check_X, distinct_rows, integer_range, is_dask_array, steps_for,
                     warn_convergence)

# one Lloyd run: final centres, labels and inertia, and the iterations it took
_Run = namedtuple("_Run", "centers labels inertia n_iter trace")
# the distinct rows of X, their summed weights, which one each row of X is, and the largest squared
# distance between two of them that the features' ranges allow
_Rows = namedtuple("_Rows", "X sample_weight inverse span")

EXACT_LIMIT = 2.0**53  # integers below it, and sums of them that stay below it, are exact in float64
# Lloyd steps on the distinct rows only when they are at most this fraction of the rows:
# finding them costs about two to three steps on every row
MAX_DISTINCT_FRACTION = 0.5


class KMeans(Estimator):
    r"""K-means clustering: Lloyd's algorithm with greedy k-means++ seeding.

    Gives scikit-learn's `~sklearn.cluster.KMeans` numbers from the same start
    (same seed, or the same ``init`` array), with weighted samples, and with
    results that do not depend on the number of threads.

    Parameters
    ----------
    n_clusters : int, default=8
        Number of clusters :math:`K`.
    init : {'k-means++', 'random'} or array-like of shape (n_clusters, n_features), \
            default='k-means++'
        'k-means++' is the greedy variant (``2 + int(ln K)`` candidates per
        centre, the best one kept), weighted by ``sample_weight``. 'random'
        picks ``n_clusters`` distinct samples with probability proportional to
        their weight. An array gives the initial centres.
    n_init : 'auto' or int, default='auto'
        Number of runs from different seeds; the one with the lowest inertia
        is kept. 'auto' means 1 for 'k-means++' or an array, 10 for 'random'.
    max_iter : int, default=300
        Maximum number of Lloyd iterations per run.
    tol : float, default=1e-4
        Stop when the summed squared centre shift is at most ``tol`` times
        the mean feature variance of X, weighted by ``sample_weight``.
    verbose : int, default=0
        Print the inertia at each iteration and why a run stopped.
    random_state : int, RandomState instance or None, default=None
        Seeds the initialisation. A RandomState instance is drawn from, and
        advanced, exactly as scikit-learn does.
    engine : {'numba', 'reference'}, default='numba'
        'numba' runs `kmeans._kernels` (fused, parallel); 'reference' runs
        the plain-NumPy steps in `kmeans.reference`. Both give the same
        results to rounding.
    callback : callable or None, default=None
        Called as ``callback(n_iter, inertia)`` after every Lloyd iteration,
        with the inertia of the centres the samples were just assigned to (the
        value ``verbose`` prints); for progress displays.
    trace : bool, default=False
        Record every iteration of the kept run in ``trace_``. Costs one extra
        assignment pass per iteration; nothing when off.

    Attributes
    ----------
    cluster_centers_ : ndarray of shape (n_clusters, n_features)
        Centres :math:`c_k`, float64.
    labels_ : ndarray of shape (n_samples,)
        Index of each sample's nearest centre, int64; equal to ``predict(X)``.
    inertia_ : float
        Weighted sum of squared distances of the samples to their centres.
    n_iter_ : int
        Lloyd iterations of the kept run.
    n_features_in_ : int
        Number of features seen during fit.
    trace_ : dict of ndarray
        Only with ``trace=True``. Row t holds the centres after t iterations
        (row 0: the initial ones): ``iteration``, ``centers`` (t, K, D),
        ``seconds`` since the run started, ``n_changed``, the total weight of
        samples whose nearest centre changed from row t-1, and ``inertia``,
        the inertia computed in iteration t (so of the centres of row t-1;
        NaN in row 0).

    See Also
    --------
    kmeans_plusplus : The seeding alone.
    sklearn.cluster.KMeans : The yardstick.

    Notes
    -----
    k-means minimises the weighted inertia, and Lloyd's algorithm alternates
    an assignment step and an update step, each of which can only lower it:

    .. math::
        J = \sum_i w_i \lVert x_i - c_{l_i} \rVert^2, \qquad
        l_i \leftarrow \arg\min_k \lVert x_i - c_k \rVert^2, \qquad
        c_k \leftarrow \frac{\sum_{i:\, l_i = k} w_i x_i}{\sum_{i:\, l_i = k} w_i}.

    A run stops when the labels do not change, or when the centres move by at
    most the scaled ``tol``; a last assignment step then makes ``labels_``
    agree with the centres.

    When X and ``sample_weight`` hold only integers (8-bit pixels as float64,
    say), :math:`\max|x| \cdot \sum_i w_i < 2^{53}`, and X has at most half as
    many distinct rows as rows, the Lloyd steps run on the distinct rows, each
    weighted by the summed weights of its copies. Every sum of :math:`w_i x_i`
    is then exact in any order, so each step is the step on every row bit for
    bit: the same labels, centres, centre shifts and stopping decision. The
    initialisation and the last assignment step (``labels_``, ``inertia_``)
    still run on every row, so every fitted attribute is the same as without
    this shortcut. Finding the distinct rows costs two to three steps on every
    row, once per fit. With ``verbose``, ``callback`` or ``trace``, which
    report each step's inertia, the steps run on every row.

    Differences from scikit-learn 1.9, all deliberate:

    - distances are sums of squared differences, not
      :math:`\lVert c\rVert^2 - 2x\cdot c`; a sample exactly halfway between
      two centres (common when data and centres lie on the same grid, such as
      8-bit pixels) may therefore take the other label;
    - sums are made over fixed chunks in a fixed order, so the results are the
      same for any number of threads;
    - a relocated empty cluster's centre is exactly a data point, and samples
      with zero weight are never chosen; scikit-learn can leave an
      unnormalised weighted sum as a centre;
    - weights act as repetition everywhere: ``tol`` is scaled by the
      *weighted* feature variance (scikit-learn: unweighted; the same with
      unit weights), and zero-weight samples are not counted as distinct
      clusters, nor compared when choosing the best run;
    - X is not centred on its mean: scikit-learn centres it to make its
      expanded distances accurate, which differences of coordinates already
      are; the seeds drawn are the same, and no copy of X is made;
    - ``labels_`` and ``predict`` return int64 (scikit-learn: int32);
    - float32 input is computed in float64.

    Examples
    --------
    >>> import numpy as np
    >>> from kmeans import KMeans
    >>> X = np.array([[1, 2], [1, 4], [1, 0], [10, 2], [10, 4], [10, 0]])
    >>> km = KMeans(n_clusters=2, random_state=0).fit(X)
    >>> km.labels_
    array([1, 1, 1, 0, 0, 0])
    >>> km.predict([[0, 0], [12, 3]])
    array([1, 0])
    >>> km.cluster_centers_
    array([[10.,  2.],
           [ 1.,  2.]])
    """

    _estimator_type = "clusterer"
    _sklearn_auto_wrap_output_keys = {"transform"}  # what scikit-learn's output wrapping reads

    def __init__(
        self,
        n_clusters=8,
        *,
        init="k-means++",
        n_init="auto",
        max_iter=300,
        tol=1e-4,
        verbose=0,
        random_state=None,
        engine="numba",
        callback=None,
        trace=False,
    ):
        self.n_clusters = n_clusters
        self.init = init
        self.n_init = n_init
        self.max_iter = max_iter
        self.tol = tol
        self.verbose = verbose
        self.random_state = random_state
        self.engine = engine
        self.callback = callback
        self.trace = trace

    def fit(self, X, y=None, sample_weight=None):
        """Compute the k-means clustering.

        Parameters
        ----------
        X : array-like or dask array of shape (n_samples, n_features)
            A dask array is fitted block by block on its scheduler (see
            `kmeans.distributed`); ``labels_`` is then a dask array.
        y : Ignored
        sample_weight : array-like or dask array of shape (n_samples,), default=None
            Non-negative weights; None means all ones. Integer weights give the
            same result as repeating rows, zero weight as removing them. Not
            used to initialise from an ``init`` array.

        Returns
        -------
        self : KMeans
        """
        if is_dask_array(X):
            return distributed.fit_kmeans(self, X, sample_weight)
        X, sample_weight = self._check_fit_data(X, sample_weight)
        return self._fit(X, sample_weight, None if self._reports_steps() else distinct_weighted_rows(X, sample_weight))

    def fit_distinct(self, X, sample_weight, rows):
        """`fit` when the distinct rows of X are already known, so that they are not looked for again.

        ``rows`` is ``distinct_weighted_rows(X, sample_weight, ...)`` (None: step on every row);
        `em.GaussianMixture` passes those it found for its own EM. X and the weights are checked
        as `fit` checks them. Returns self.
        """
        X, sample_weight = self._check_fit_data(X, sample_weight)
        return self._fit(X, sample_weight, None if self._reports_steps() else rows)

    def _check_fit_data(self, X, sample_weight):
        X = self._validate_X(X, reset=True, method="fit")
        sample_weight = check_sample_weight(sample_weight, X.shape[0])
        check_k("n_clusters", self.n_clusters, X.shape[0], np.count_nonzero(sample_weight))
        return X, sample_weight

    def _reports_steps(self):
        """verbose, callback and trace_ see each step's inertia, a sum over every row whose rounding
        depends on the order of the rows: they step on every row."""
        return self.verbose or self.callback is not None or self.trace

    def _fit(self, X, sample_weight, rows):
        """`fit` on checked X and weights; ``rows``: their `distinct_weighted_rows`, or None to step on every row."""
        steps, init, n_init = self._check_params(X)
        random_state = check_random_state(self.random_state)
        tol = _tolerance(X, sample_weight, self.tol)
        best = None
        for _ in range(n_init):
            centers = self._init_centers(X, init, sample_weight, random_state, steps, rows)
            trace = _trace(steps, X, sample_weight) if self.trace else None
            run = _lloyd(X, sample_weight, centers, self.max_iter, tol, steps, self.verbose, self.callback, trace, rows)
            if best is None or (run.inertia < best.inertia and not _is_same_clustering(run, best, sample_weight)):
                best = run
        self.cluster_centers_, self.labels_, self.inertia_, self.n_iter_ = best[:4]
        if self.trace:
            self.trace_ = best.trace.as_dict()
        self._n_features_out = self.n_clusters
        _warn_if_fewer_clusters(self.labels_, sample_weight, self.n_clusters)
        return self

    def fit_predict(self, X, y=None, sample_weight=None):
        """Fit, then return ``labels_``: the nearest centre of each sample, int64."""
        return self.fit(X, sample_weight=sample_weight).labels_

    def predict(self, X):
        """Index of the nearest centre of each sample.

        Parameters
        ----------
        X : array-like or dask array of shape (n_samples, n_features)

        Returns
        -------
        labels : ndarray (dask array for a dask X) of shape (n_samples,), int64
        """
        self._check_fitted("predict")
        if is_dask_array(X):
            self._steps()  # checks the engine name
            return distributed.predict(self.cluster_centers_, X, self.engine)
        X = self._validate_X(X, reset=False, method="predict")
        labels, _ = self._steps().assign_labels(X, np.ones(X.shape[0]), self.cluster_centers_)
        return labels

    def transform(self, X):
        """Euclidean (not squared) distance from each sample to each centre.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)

        Returns
        -------
        distances : ndarray of shape (n_samples, n_clusters)
        """
        self._check_fitted("transform")
        X_checked = self._validate_X(X, reset=False, method="transform")
        return self._output(np.sqrt(self._steps().squared_distances(X_checked, self.cluster_centers_)), X)

    def fit_transform(self, X, y=None, sample_weight=None):
        """Fit, then return ``transform(X)``."""
        return self.fit(X, sample_weight=sample_weight).transform(X)

    # ---------------------------------------- scikit-learn's transformer interface

    def set_output(self, *, transform=None):
        """Have ``transform`` and ``fit_transform`` return 'default' (NumPy), 'pandas' or 'polars' containers.

        As scikit-learn's ``TransformerMixin.set_output``; None leaves the setting as it is. Returns self.
        """
        if transform is not None:
            self._sklearn_output_config = {**getattr(self, "_sklearn_output_config", {}), "transform": transform}
        return self

    def get_feature_names_out(self, input_features=None):
        """Names of the distances ``transform`` returns: 'kmeans0', 'kmeans1', ... (scikit-learn's)."""
        from sklearn.base import ClassNamePrefixFeaturesOutMixin

        return ClassNamePrefixFeaturesOutMixin.get_feature_names_out(self, input_features)

    def _output(self, distances, X):
        """``distances`` in the container ``set_output``, or scikit-learn's ``set_config``, asks for.

        Neither can have asked for another than NumPy's while scikit-learn's
        configuration is not loaded, and then nothing is imported.
        """
        if not hasattr(self, "_sklearn_output_config") and "sklearn._config" not in sys.modules:
            return distances
        from sklearn.utils._set_output import _wrap_data_with_container

        return _wrap_data_with_container("transform", distances, X, self)

    def score(self, X, y=None, sample_weight=None):
        r"""Minus the inertia of ``X`` with respect to the fitted centres.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        y : Ignored
        sample_weight : array-like of shape (n_samples,), default=None

        Returns
        -------
        score : float
            :math:`-\sum_i w_i \min_k \lVert x_i - c_k \rVert^2`.
        """
        self._check_fitted("score")
        X = self._validate_X(X, reset=False, method="score")
        sample_weight = check_sample_weight(sample_weight, X.shape[0])
        _, inertia = self._steps().assign_labels(X, sample_weight, self.cluster_centers_)
        return -inertia

    def _validate_X(self, X, *, reset, method):
        return check_X(self, X, reset=reset, method=method)

    def _steps(self):
        """The module that runs the steps: `kmeans._kernels` or `kmeans.reference`."""
        return steps_for(self.engine, _kernels, reference)

    def _check_params(self, X):
        """Validate the parameters against X; return the steps, the init and the number of runs."""
        steps = self._steps()
        check_int("max_iter", self.max_iter, minimum=1)
        check_number("tol", self.tol)
        if isinstance(self.init, str):
            if self.init not in ("k-means++", "random"):
                raise ValueError(f"init={self.init!r} must be 'k-means++', 'random' or an array of shape (n_clusters, n_features).")
            init = self.init
        else:
            init = _check_init_array(self.init, self.n_clusters, X.shape[1])
        if self.n_init == "auto":
            return steps, init, 10 if isinstance(init, str) and init == "random" else 1
        check_int("n_init", self.n_init, minimum=1)
        if not isinstance(init, str) and self.n_init != 1:
            warnings.warn(
                f"init is an array of centres: running one init instead of n_init={self.n_init}.",
                RuntimeWarning,
                stacklevel=3,
            )
            return steps, init, 1
        return steps, init, self.n_init

    def _init_centers(self, X, init, sample_weight, random_state, steps, rows=None):
        """Initial centres: drawn from X as scikit-learn draws them, or the init array."""
        if isinstance(init, str) and init == "k-means++":
            centers, _ = _kmeans_plusplus(X, self.n_clusters, sample_weight, random_state, steps, rows)
        elif isinstance(init, str) and init == "random":
            p = sample_weight / sample_weight.sum()
            centers = X[random_state.choice(X.shape[0], size=self.n_clusters, replace=False, p=p)]
        else:
            centers = init
        if self.verbose:
            print("Initialization complete")
        return centers


def kmeans_plusplus(X, n_clusters, *, sample_weight=None, random_state=None):
    """Greedy k-means++ seeding, drawing exactly as `sklearn.cluster.kmeans_plusplus`.

    Parameters
    ----------
    X : array-like of shape (n_samples, n_features)
    n_clusters : int
        Number of centres to pick.
    sample_weight : array-like of shape (n_samples,), default=None
        Non-negative weights; a sample is picked with probability proportional
        to its weight times its squared distance to the nearest chosen centre.
    random_state : int, RandomState instance or None, default=None
        A RandomState instance is drawn from, and advanced, as scikit-learn does.

    Returns
    -------
    centers : ndarray of shape (n_clusters, n_features)
        Rows of X, float64.
    indices : ndarray of shape (n_clusters,)
        Their row indices: ``X[indices] == centers``.

    Examples
    --------
    >>> import numpy as np
    >>> from kmeans import kmeans_plusplus
    >>> X = np.array([[1, 2], [1, 4], [1, 0], [10, 2], [10, 4], [10, 0]])
    >>> centers, indices = kmeans_plusplus(X, n_clusters=2, random_state=0)
    >>> centers
    array([[10.,  2.],
           [ 1.,  0.]])
    >>> indices
    array([3, 2])
    """
    X = check_samples(X, "kmeans_plusplus")
    sample_weight = check_sample_weight(sample_weight, X.shape[0])
    check_k("n_clusters", n_clusters, X.shape[0], np.count_nonzero(sample_weight))
    return _kmeans_plusplus(X, n_clusters, sample_weight, check_random_state(random_state), _kernels)


def _kmeans_plusplus(X, n_clusters, sample_weight, random_state, steps, rows=None):
    r"""Greedy k-means++: each new centre is the best of a few weighted draws.

    With :math:`D_i^2` the squared distance from :math:`x_i` to the nearest
    centre so far, each of the ``2 + int(ln K)`` candidates is drawn with
    probability :math:`w_i D_i^2 / \sum_j w_j D_j^2`, and the one that leaves
    the lowest potential :math:`\phi = \sum_i w_i D_i^2` is kept. The draws and
    their order are scikit-learn's, so a seed picks the same rows.

    With ``rows`` (from `distinct_weighted_rows`) the distances and potentials are
    computed once per distinct row, and only the draw runs over every row
    (`first_rows_reaching`). When every :math:`D^2` times the total weight
    stays below :math:`2^{53}` (`_exact_potentials`), every :math:`D_i^2`,
    potential and running sum is an integer, exact in any order, so the
    same rows are drawn and kept, bit for bit.
    """
    n_samples = X.shape[0]
    n_local_trials = 2 + int(np.log(n_clusters))
    # a draw past the end (rounding) is clipped to the last sample that can be drawn
    last_positive = np.flatnonzero(sample_weight)[-1]
    indices = np.empty(n_clusters, dtype=np.int64)
    indices[0] = random_state.choice(n_samples, p=sample_weight / sample_weight.sum())
    rows = rows if rows is not None and _exact_potentials(rows) else None
    data, weights = (X, sample_weight) if rows is None else (rows.X, rows.sample_weight)
    no_centre_yet = np.full(len(data), np.inf)  # every sample is infinitely far from the nearest centre
    closest_dist_sq_with, potentials = steps.evaluate_candidates(data, weights, no_centre_yet, X[indices[:1]])
    closest_dist_sq, potential = closest_dist_sq_with[0], potentials[0]
    for c in range(1, n_clusters):
        rand_vals = random_state.uniform(size=n_local_trials) * potential
        if rows is None:
            candidate_ids = np.searchsorted(np.cumsum(sample_weight * closest_dist_sq), rand_vals)
        else:
            candidate_ids = steps.first_rows_reaching(rows.inverse, sample_weight, closest_dist_sq, rand_vals)
        np.clip(candidate_ids, None, last_positive, out=candidate_ids)
        closest_dist_sq_with, potentials = steps.evaluate_candidates(data, weights, closest_dist_sq, X[candidate_ids])
        best = np.argmin(potentials)  # first minimum wins ties
        indices[c], closest_dist_sq, potential = candidate_ids[best], closest_dist_sq_with[best], potentials[best]
    return X[indices], indices


def _lloyd(X, sample_weight, centers, max_iter, tol, steps, verbose=0, callback=None, trace=None, rows=None):
    """One run of Lloyd's algorithm from ``centers``, stopping as scikit-learn does.

    Stops on strict convergence (labels unchanged) or when the summed squared
    centre shift is at most ``tol`` (already scaled), whichever is checked
    first; then assigns the samples to the final centres.

    With ``rows`` (from `distinct_weighted_rows`), each step runs on the distinct rows
    of X instead of every row, and computes exactly the step on every row: the
    same label for every copy of a row, the same sums, hence the same centres,
    the same centre shift, and labels that change on some row exactly when they
    change on some distinct row. Only the step's inertia differs in its last
    bits (another order of addition); the final assignment runs on every row.
    """
    X_step, weight_step = (X, sample_weight) if rows is None else (rows.X, rows.sample_weight)
    labels = np.full(len(X_step), -1, dtype=np.int64)  # no sample has a label before the first step
    if trace is not None:
        trace.record(np.nan, centers)
    for n_iter in range(1, max_iter + 1):
        sum_x, nk, inertia, n_changed = steps.lloyd_step(X_step, weight_step, centers, labels)
        new_centers = _update_centers(X, sample_weight, centers, labels, sum_x, nk, rows)
        center_shift_sq = ((new_centers - centers) ** 2).sum()
        centers = new_centers
        if trace is not None:
            trace.record(inertia, centers)
        if verbose:
            print(f"Iteration {n_iter - 1}, inertia {inertia}.")
        if callback is not None:
            callback(n_iter, inertia)
        if n_changed == 0:
            if verbose:
                print(f"Converged at iteration {n_iter - 1}: strict convergence.")
            break
        if center_shift_sq <= tol:
            if verbose:
                print(f"Converged at iteration {n_iter - 1}: center shift {center_shift_sq} within tolerance {tol}.")
            break
    labels, inertia = steps.assign_labels(X, sample_weight, centers)
    return _Run(centers, labels, inertia, n_iter, trace)


def _update_centers(X, sample_weight, centers, labels, sum_x, nk, rows):
    """`update_centers` for a step that ran on ``rows`` (None: on every row of X), ``labels`` being theirs.

    An empty cluster takes one row of X, the farthest from its centre, as it
    would after a step on every row: not a distinct row with all its copies.
    """
    if rows is not None and not nk.all():
        labels = labels[rows.inverse]  # every row's label, to relocate rows of X
    elif rows is not None:  # no empty cluster: the centres are sum_x / nk, whichever rows the sums ran over
        X, sample_weight = rows.X, rows.sample_weight
    return update_centers(X, sample_weight, centers, labels, sum_x, nk)


def distinct_weighted_rows(X, sample_weight, max_fraction=None):
    r"""The distinct rows of X with their summed weights, when Lloyd's steps on them are exactly the steps on X.

    When every :math:`x_{id}` and :math:`w_i` is an integer and
    :math:`\max |x| \cdot \sum_i w_i < 2^{53}`, every product :math:`w_i x_{id}`
    and every partial sum of them is an integer below :math:`2^{53}`: exact
    in float64, whatever the order of addition. The per-cluster sums
    :math:`N_k, S_k` over the distinct rows, each weighted by the summed
    weights of its copies, are then the sums over every row bit for bit, and a
    row's label depends only on its value. Pixels (integers 0-255) qualify.

    Parameters
    ----------
    X : ndarray of shape (n_samples, n_features)
    sample_weight : ndarray of shape (n_samples,)
    max_fraction : float or None
        The most distinct rows, as a fraction of the rows, for which they are
        worth finding; None: ``MAX_DISTINCT_FRACTION``, Lloyd's break-even.

    Returns
    -------
    rows : _Rows or None
        None when X or the weights are not integers, the sums could reach
        :math:`2^{53}`, the rows cannot be packed into 53-bit keys, or the
        distinct rows are more than ``max_fraction`` of the rows.
    """
    x_range, w_range = integer_range(X), integer_range(sample_weight[:, None])
    if x_range is None or w_range is None:
        return None
    low, high = x_range
    if max(-low.min(), high.max(), 1.0) * sample_weight.sum() >= EXACT_LIMIT:
        return None
    sizes = [int(size) for size in high - low + 1]
    if math.prod(sizes) >= KEY_LIMIT:
        return None
    max_fraction = MAX_DISTINCT_FRACTION if max_fraction is None else max_fraction
    found = distinct_rows(X, low.astype(np.int64), sizes, max_distinct=int(max_fraction * len(X)))
    if found is None:
        return None
    rows, counts, inverse = found
    span = float(((high - low) ** 2).sum())
    if w_range[0][0] == w_range[1][0] == 1.0:  # unit weights: the summed weights are the counts
        return _Rows(rows, counts.astype(np.float64), inverse, span)
    return _Rows(rows, np.bincount(inverse, weights=sample_weight, minlength=len(rows)), inverse, span)


def _exact_potentials(rows):
    """True if every k-means++ potential over these integer rows (`distinct_weighted_rows`) is an integer below 2**53."""
    return rows.span * float(rows.sample_weight.sum()) < EXACT_LIMIT  # span: the largest possible D²


def _trace(steps, X, sample_weight):
    """The per-iteration record behind ``KMeans.trace_``: inertia, centres, and which samples changed cluster."""
    return Trace("inertia", ("centers",), lambda centers: steps.assign_labels(X, sample_weight, centers)[0], sample_weight)


def _is_same_clustering(run, best, sample_weight):
    """True if each of run's clusters lies inside one of best's (positive-weight samples only), as scikit-learn."""
    n_clusters = len(run.centers)
    kept = sample_weight > 0
    pairs = np.zeros((n_clusters, n_clusters), dtype=bool)
    pairs[run.labels[kept], best.labels[kept]] = True
    return bool((pairs.sum(axis=1) <= 1).all())


def _tolerance(X, sample_weight, tol):
    """Absolute tolerance on the squared centre shift: tol times the mean weighted feature variance.

    With unit weights this is scikit-learn's value (to rounding). scikit-learn
    ignores the weights here, so that weighting rows would change the
    tolerance, and the result, compared with repeating or removing them.
    """
    if tol == 0:
        return 0.0
    w = sample_weight / sample_weight.sum()
    variances = w @ (X - w @ X) ** 2
    return float(np.mean(variances) * tol)


def _warn_if_fewer_clusters(labels, sample_weight, n_clusters):
    n_distinct = np.count_nonzero(np.bincount(labels[sample_weight > 0], minlength=n_clusters))
    if n_distinct < n_clusters:
        warn_convergence(f"Number of distinct clusters ({n_distinct}) found smaller than n_clusters ({n_clusters}). "
                         "Possibly due to duplicate points in X.", stacklevel=3)


def _check_init_array(init, n_clusters, n_features):
    init = np.asarray(init)
    if init.dtype.kind not in "iuf":
        raise TypeError(f"init must be 'k-means++', 'random' or a numeric array; got an array of dtype {init.dtype}.")
    init = np.array(init, dtype=np.float64)  # a copy: fit never writes to the caller's array
    if init.shape != (n_clusters, n_features):
        raise ValueError(
            f"init has shape {init.shape}; expected (n_clusters, n_features) = ({n_clusters}, {n_features})."
        )
    if not np.isfinite(init).all():
        raise ValueError("init contains NaN or inf; initial centres must be finite.")
    return init
