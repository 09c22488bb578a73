"""GaussianMixture: a Gaussian mixture fitted by EM, scikit-learn compatible, diagonal covariances by default."""

import functools
import threading
import time

import numpy as np
from threadpoolctl import ThreadpoolController

from kmeans import KMeans, kmeans_plusplus
from kmeans.estimator import distinct_weighted_rows
from kmeans.shared import (Estimator, Trace, check_int, check_k, check_number, check_option,
                           check_random_state, check_sample_weight, check_X, cluster_sums, is_dask_array, sample_rows,
                           steps_for, warn_convergence)

from . import _kernels, distributed, reference
from .reference import (COVARIANCE_TYPES, M_STEPS, NK_EPS, n_parameters, precisions_cholesky,
                        precisions_cholesky_from_precisions, precisions_from_cholesky)

INIT_PARAMS = ("kmeans", "k-means++", "random", "random_from_data")
FIND_ROWS = object()  # `_fit_data`'s default: look for the distinct rows of X
# EM on the distinct rows when they are at most this fraction of the rows: finding them costs about one
# EM pass, and each of the fit's 10-30 passes then visits that fraction of the rows (Lloyd's steps are
# cheaper, so KMeans alone stops at half; photos have 17-50% distinct colours)
MAX_DISTINCT_FRACTION = 0.8


class GaussianMixture(Estimator):
    r"""Gaussian mixture fitted by expectation-maximisation; diagonal covariances by default.

    A drop-in for ``sklearn.mixture.GaussianMixture``: same parameters,
    attributes and numbers from the same start, for each of its four
    covariance types, plus ``sample_weight`` in :meth:`fit` and a numba engine
    that fuses the E-step and the M-step's sums into one parallel pass over
    the data. The default covariance type is 'diag', the model this project is
    about, where scikit-learn's is 'full': pass ``covariance_type`` explicitly
    when comparing.

    Parameters
    ----------
    n_components : int, default=1
        Number of mixture components K.
    covariance_type : {'diag', 'full', 'tied', 'spherical'}, default='diag'
        'diag': each component has its own variance per feature; 'full': its
        own covariance matrix; 'tied': one covariance matrix for all
        components; 'spherical': one variance per component. Shapes of
        ``covariances_``, ``precisions_`` and ``precisions_cholesky_``:
        (K, D), (K, D, D), (D, D) and (K,) respectively.
    tol : float, default=1e-3
        EM stops when the weighted mean log-likelihood changes by less than this.
    reg_covar : float, default=1e-6
        Added to every variance, so a component on identical points stays proper.
    max_iter : int, default=100
        EM iterations per initialisation; 0 only initialises.
    n_init : int, default=1
        Initialisations to run; the one with the best final lower bound is kept.
    init_params : {'kmeans', 'k-means++', 'random', 'random_from_data'}, default='kmeans'
        How the initial responsibilities are drawn, exactly as in scikit-learn.
        'kmeans' runs this project's :class:`kmeans.KMeans`.
    weights_init : array-like of shape (n_components,), default=None
    means_init : array-like of shape (n_components, n_features), default=None
    precisions_init : array-like, default=None
        Initial parameters, overriding those of ``init_params``. Precisions are
        inverse covariances, shaped as ``precisions_`` for the covariance type
        (1/variances for 'diag' and 'spherical').
    random_state : int, RandomState instance or None, default=None
    warm_start : bool, default=False
        Start each later ``fit`` from the previous solution, with ``n_init=1``.
    verbose : int, default=0
        1 prints the initialisations and every ``verbose_interval`` iterations;
        2 also prints the log-likelihood change and the time.
    verbose_interval : int, default=10
    engine : {'numba', 'reference'}, default='numba'
        'numba' runs ``em._kernels``; 'reference' runs the readable NumPy steps
        of ``em.reference``, for learning and debugging. Same numbers either way.
    trace : bool, default=False
        Record every iteration of the kept initialisation in ``trace_``.
        Costs one extra ``predict`` pass per iteration; nothing when off.
    callback : callable or None, default=None
        Called as ``callback(n_iter, lower_bound)`` after every EM iteration,
        for progress displays.

    Attributes
    ----------
    weights_ : ndarray of shape (n_components,)
    means_ : ndarray of shape (n_components, n_features)
    covariances_ : ndarray
        (n_components, n_features) variances for 'diag', (n_components, n_features,
        n_features) for 'full', (n_features, n_features) for 'tied', (n_components,)
        for 'spherical'; ``reg_covar`` included.
    precisions_ : ndarray, shaped as ``covariances_``
        Their inverses.
    precisions_cholesky_ : ndarray, shaped as ``covariances_``
        Upper-triangular U with U Uᵀ = precision for 'full' and 'tied';
        1/sqrt(variance) otherwise.
    converged_ : bool
    n_iter_ : int
        EM iterations of the best initialisation.
    lower_bound_ : float
        Weighted mean log-likelihood of the best initialisation, computed in its
        last E-step, so under the parameters *before* its last M-step.
    lower_bounds_ : list of float
        The lower bound at every iteration of the best initialisation.
    n_features_in_ : int
    trace_ : dict of ndarray
        Only with ``trace=True``. Row t holds the parameters after t iterations
        (row 0: the initial ones): ``iteration`` (t,), ``weights`` (t, K),
        ``means`` (t, K, D), ``variances`` (each row shaped as ``covariances_``:
        (t, K, D) for 'diag'), ``seconds`` since the start of
        EM, ``n_changed``, the total weight of samples whose most likely
        component changed from row t-1, and ``lower_bound``, the bound computed
        in iteration t (so of the parameters of row t-1; NaN in row 0).
        ``trace_["lower_bound"][1:]`` equals ``lower_bounds_``.

    Notes
    -----
    The model is :math:`p(x) = \sum_k \pi_k \prod_d \mathcal{N}(x_d \mid \mu_{kd}, \sigma^2_{kd})`
    (diagonal; the other types replace the product by :math:`\mathcal{N}(x \mid \mu_k, \Sigma_k)`,
    with :math:`\Sigma_k` estimated as the weighted scatter about the new mean over :math:`N_k`,
    pooled over the components for 'tied' and averaged over the features for 'spherical').
    Each iteration computes the responsibilities
    :math:`\gamma_{nk} \propto \pi_k \mathcal{N}(x_n \mid \mu_k, \sigma^2_k)` (E-step), then

    .. math::
        N_k = \sum_n w_n \gamma_{nk}, \quad \pi_k = \frac{N_k}{\sum_j N_j}, \quad
        \mu_k = \frac{1}{N_k} \sum_n w_n \gamma_{nk} x_n, \quad
        \sigma^2_k = \frac{1}{N_k} \sum_n w_n \gamma_{nk} (x_n - \mu_k)^2 + \text{reg\_covar}

    (M-step). The weighted log-likelihood :math:`\sum_n w_n \log p(x_n) / \sum_n w_n`
    never decreases. Deliberate differences from scikit-learn: the variances are
    summed about the means instead of as :math:`E[x^2] - \mu^2`, so they cannot
    cancel (scikit-learn issue #30382), and likewise the tied covariance
    (scikit-learn forms :math:`X^T X - \sum_k N_k \mu_k^T \mu_k`); float32 input is fitted in float64; an
    integer ``sample_weight`` is exactly a repeated row (scikit-learn issue #15647).

    A sample's responsibilities depend only on its value, so on data with many
    repeated rows (8-bit pixels: a photo has about a third as many distinct
    colours as pixels) the numba engine iterates on the distinct rows, each
    weighted by the summed weights of its copies: the same EM, in fewer
    terms. The conditions are those of `kmeans.KMeans`'s shortcut (integer
    values and weights), with at most 80% as many distinct rows as rows
    (KMeans alone: half). Unlike
    Lloyd's integer sums, the statistics are then added in another order, so
    the results move by rounding (1e-13 relative on china.jpg), well within
    the tolerances the tests derive against scikit-learn; the k-means start's
    labels, counts and means are the same to the last bit.

    Examples
    --------
    >>> import numpy as np
    >>> from em import GaussianMixture
    >>> X = np.array([[1.0, 2.0], [1.1, 2.1], [0.9, 1.9], [8.0, 9.0], [8.1, 9.2], [7.9, 8.8]])
    >>> gm = GaussianMixture(n_components=2, random_state=0).fit(X)
    >>> np.round(gm.means_[np.argsort(gm.means_[:, 0])], 2)
    array([[1.  , 2.  ],
           [8.  , 9.  ]])
    >>> gm.predict([[1.0, 2.0], [8.0, 9.0]]).tolist() == gm.predict(X[[0, 3]]).tolist()
    True
    """

    _estimator_type = "density_estimator"

    def __init__(
        self,
        n_components=1,
        *,
        covariance_type="diag",
        tol=1e-3,
        reg_covar=1e-6,
        max_iter=100,
        n_init=1,
        init_params="kmeans",
        weights_init=None,
        means_init=None,
        precisions_init=None,
        random_state=None,
        warm_start=False,
        verbose=0,
        verbose_interval=10,
        engine="numba",
        trace=False,
        callback=None,
    ):
        self.n_components = n_components
        self.covariance_type = covariance_type
        self.tol = tol
        self.reg_covar = reg_covar
        self.max_iter = max_iter
        self.n_init = n_init
        self.init_params = init_params
        self.weights_init = weights_init
        self.means_init = means_init
        self.precisions_init = precisions_init
        self.random_state = random_state
        self.warm_start = warm_start
        self.verbose = verbose
        self.verbose_interval = verbose_interval
        self.engine = engine
        self.trace = trace
        self.callback = callback

    # ------------------------------------------------------------------ fit

    def fit(self, X, y=None, sample_weight=None):
        """Estimate the parameters with EM, keeping the best of ``n_init`` starts.

        Parameters
        ----------
        X : array-like or dask array of shape (n_samples, n_features)
            A dask array is fitted block by block on its scheduler; see `em.distributed`.
        y : ignored
        sample_weight : array-like or dask array of shape (n_samples,), default=None
            Non-negative weights; an integer weight counts the row that many times.

        Returns
        -------
        self
        """
        return self._fit_data(X, sample_weight)

    def _fit_data(self, X, sample_weight, rows=FIND_ROWS):
        """`fit`; ``rows``: X's `distinct_weighted_rows` if already known (None: it has none), for `select_model`."""
        steps = self._check_params()
        if is_dask_array(X):
            X, sample_weight = distributed.check_fit_data(X, sample_weight, self.n_components, self.init_params,
                                                          self.trace, self._has_full_init())
            self.n_features_in_ = X.shape[1]
            return self._fit(distributed.BlockSteps(self.engine), X, sample_weight)
        X, sample_weight = self._validate_fit_data(X, sample_weight)
        if steps is not _kernels:  # the reference engine's steps stay on every row
            rows = None
        elif rows is FIND_ROWS:  # a row's responsibilities depend only on its value: iterate on the distinct rows
            rows = distinct_weighted_rows(X, sample_weight, MAX_DISTINCT_FRACTION)
        # The full and tied types factor a D x D matrix per component and iteration (LAPACK, BLAS). Between
        # numba's parallel passes BLAS threads woken for a 3 x 3 solve fight the OpenMP ones: 5-23 ms a
        # call on a loaded 2-core machine instead of 0.02-0.2 ms. One BLAS thread computes the same bits.
        with _ONE_BLAS_THREAD:
            return self._fit(steps, X, sample_weight, rows)

    def _check_params(self):
        """Check the parameters that do not depend on X; return the steps of the engine."""
        check_int("n_components", self.n_components, minimum=1)
        check_option("covariance_type", self.covariance_type, COVARIANCE_TYPES)
        check_number("tol", self.tol)
        check_number("reg_covar", self.reg_covar)
        check_int("max_iter", self.max_iter, minimum=0)
        check_int("n_init", self.n_init, minimum=1)
        check_option("init_params", self.init_params, INIT_PARAMS)
        check_int("verbose_interval", self.verbose_interval, minimum=1)
        return steps_for(self.engine, _kernels, reference)

    def _has_full_init(self):
        return all(value is not None for value in (self.weights_init, self.means_init, self.precisions_init))

    def _fit(self, steps, X, sample_weight, rows=None):
        """The best of ``n_init`` EM runs on validated data; ``steps`` computes each iteration's statistics.

        With ``rows`` (`distinct_weighted_rows`), the k-means start uses them and EM iterates on them.
        """
        warm = self.warm_start and hasattr(self, "converged_")
        random_state = check_random_state(self.random_state)
        best, best_lower_bound = None, -np.inf
        for init in range(1 if warm else self.n_init):
            if warm:
                params, lower_bound = self._fitted_params(), self.lower_bound_
            else:
                params, lower_bound = self._initial_params(X, sample_weight, random_state, rows), -np.inf
            if self.verbose:
                print(f"Initialization {init}")
            run = self._run_em(steps, X, sample_weight, params, lower_bound, rows)
            # strict '>' keeps the earlier of two equal starts; with max_iter=0 the last start wins
            if run["lower_bound"] > best_lower_bound or best_lower_bound == -np.inf:
                best, best_lower_bound = run, run["lower_bound"]
        if not best["converged"] and self.max_iter > 0:
            warn_convergence("Best performing initialization did not converge. Try different init parameters, "
                             "or increase max_iter, tol, or check for degenerate data.")
        self._set_params(*best["params"])
        self.converged_ = best["converged"]
        self.n_iter_ = best["n_iter"]
        self.lower_bound_ = best_lower_bound
        self.lower_bounds_ = best["lower_bounds"]
        if self.trace:
            self.trace_ = best["trace"].as_dict()
        return self

    def _run_em(self, steps, X, sample_weight, params, lower_bound, rows=None):
        """EM from ``params`` until the lower bound changes by less than ``tol``; on ``rows`` if given."""
        weights, means, covariances, factors = params
        trace = _trace(steps, X, sample_weight, self.covariance_type) if self.trace else None
        X, sample_weight = (X, sample_weight) if rows is None else (rows.X, rows.sample_weight)
        total_weight = float(sample_weight.sum())
        lower_bounds, converged, n_iter = [], False, 0
        start = time.perf_counter()
        if trace is not None:
            trace.record(np.nan, weights, means, covariances)
        m_step = M_STEPS[self.covariance_type]
        for n_iter in range(1, self.max_iter + 1):
            prev_lower_bound = lower_bound
            precisions = evaluation_precisions(self.covariance_type, covariances, factors, means.shape)
            nk, sum_x, sum_xx, log_lik = steps.e_step_stats(X, sample_weight, means, precisions, np.log(weights))
            weights, means, covariances = m_step(nk, sum_x, sum_xx, self.reg_covar)
            factors = precisions_cholesky(covariances, self.covariance_type)  # refuses a non-positive-definite one
            lower_bound = log_lik / total_weight
            lower_bounds.append(lower_bound)
            change = lower_bound - prev_lower_bound
            self._print_iteration(n_iter, change, start)
            if trace is not None:
                trace.record(lower_bound, weights, means, covariances)
            if self.callback is not None:
                self.callback(n_iter, lower_bound)
            if abs(change) < self.tol:
                converged = True
                break
        if self.verbose:
            print("Initialization converged." if converged else "Initialization did not converge.")
        return dict(params=(weights, means, covariances, factors), lower_bound=lower_bound,
                    lower_bounds=lower_bounds, converged=converged, n_iter=n_iter, trace=trace)

    def _print_iteration(self, n_iter, change, start):
        if self.verbose and n_iter % self.verbose_interval == 0:
            if self.verbose >= 2:
                print(f"  Iteration {n_iter}\t time lapse {time.perf_counter() - start:.5f}s\t ll change {change:.5f}")
            else:
                print(f"  Iteration {n_iter}")

    def _validate_fit_data(self, X, sample_weight):
        X = check_X(self, X, reset=True, method="fit", min_samples=2)
        sample_weight = check_sample_weight(sample_weight, X.shape[0])
        check_k("n_components", self.n_components, X.shape[0], np.count_nonzero(sample_weight))
        return X, sample_weight

    # ------------------------------------------------------- initialisation

    def _initial_params(self, X, sample_weight, random_state, rows=None):
        """Initial (weights, means, covariances, precision factors), drawn from ``random_state`` as scikit-learn does."""
        user = _check_user_init(self, X.shape[1])
        weights_init, means_init, precisions_init = user
        if self._has_full_init():
            weights, means = weights_init, means_init
        else:
            nk, sum_x, sum_xx = self._initial_statistics(X, sample_weight, random_state, rows)
            _, means, covariances = M_STEPS[self.covariance_type](nk, sum_x, sum_xx, self.reg_covar)
            # scikit-learn divides the initial N_k by n_samples, not by their sum (its issue #24085),
            # so a one-hot start ('k-means++', 'random_from_data') has weights summing to K / n_samples
            weights = nk / float(sample_weight.sum())
            weights = weights if weights_init is None else weights_init
            means = means if means_init is None else means_init
        if precisions_init is None:
            return weights, means, covariances, precisions_cholesky(covariances, self.covariance_type)
        # the factors from the given precisions, as scikit-learn computes them; the covariances for the record
        factors = precisions_cholesky_from_precisions(precisions_init, self.covariance_type)
        return weights, means, _inverse(precisions_init, self.covariance_type), factors

    def _initial_statistics(self, X, sample_weight, random_state, rows=None):
        """Sufficient statistics of the initial responsibilities named by ``init_params``; ``rows``: see `_fit`."""
        outer = self.covariance_type in ("full", "tied")  # these need scatter matrices
        if is_dask_array(X) and self.init_params == "kmeans":
            return distributed.kmeans_statistics(X, sample_weight, self.n_components, random_state, self.engine,
                                                 outer=outer)
        if is_dask_array(X):  # 'k-means++' or 'random_from_data': the rows are picked from a uniform sample
            X, sample_weight = sample_rows(X, sample_weight, random_state)
        n_samples = X.shape[0]
        K = self.n_components
        if self.init_params == "kmeans":
            kmeans = KMeans(n_clusters=K, n_init=1, random_state=random_state, engine=self.engine)
            labels = kmeans.fit_distinct(X, sample_weight, rows).labels_
            if rows is None:
                return hard_statistics(X, sample_weight, labels, K, outer)
            row_labels = np.empty(len(rows.X), dtype=np.int64)
            row_labels[rows.inverse] = labels  # copies of a row share its label
            return hard_statistics(rows.X, rows.sample_weight, row_labels, K, outer)
        if self.init_params == "random":
            resp = random_state.uniform(size=(n_samples, K))
            resp /= resp.sum(axis=1)[:, None]
            statistics = reference.sufficient_statistics_full if outer else reference.sufficient_statistics
            return statistics(X, np.log(resp), sample_weight)
        if self.init_params == "k-means++":
            _, indices = kmeans_plusplus(X, K, sample_weight=sample_weight, random_state=random_state)
        elif np.all(sample_weight == sample_weight[0]):  # 'random_from_data', drawn as scikit-learn does
            indices = random_state.choice(n_samples, size=K, replace=False)
        else:  # weighted data: a row is picked in proportion to its weight, never a zero-weight row
            indices = random_state.choice(n_samples, size=K, replace=False, p=sample_weight / sample_weight.sum())
        # one component on each chosen row, and no responsibility anywhere else
        nk, sum_x, sum_xx = hard_statistics(X[indices], sample_weight[indices], np.arange(K), K, outer)
        if self.covariance_type == "tied":
            # scikit-learn's tied covariance is (XᵀX - Σ_k N_k μ_kᵀμ_k) / Σ_k N_k with XᵀX over *every* row,
            # which is the pooled scatter only when each row's responsibilities sum to 1. Here they sum to 0
            # outside the K chosen rows, so its start adds those rows' Σ w xᵀx, uncentred: copied, to start alike.
            rest = np.ones(n_samples, dtype=bool)
            rest[indices] = False
            sum_xx[0] += (X[rest] * sample_weight[rest, None]).T @ X[rest]
        return nk, sum_x, sum_xx

    # -------------------------------------------------------------- results

    def _set_params(self, weights, means, covariances, factors=None):
        self.weights_ = weights
        self.means_ = means
        self.covariances_ = covariances
        if factors is None:
            factors = precisions_cholesky(covariances, self.covariance_type)
        self.precisions_cholesky_ = factors
        self.precisions_ = precisions_from_cholesky(factors, self.covariance_type)

    def _fitted_params(self):
        return self.weights_, self.means_, self.covariances_, self.precisions_cholesky_

    def _model_call(self, method, X):
        """Run ``steps.<method>`` on validated X with the fitted parameters."""
        self._check_fitted(method)
        factors = self.precisions_ if self.covariance_type in ("diag", "spherical") else self.precisions_cholesky_
        params = (self.means_, evaluation_precisions(self.covariance_type, None, factors, self.means_.shape),
                  np.log(self.weights_))
        if is_dask_array(X):
            return distributed.model_call(method, X, *params, self.engine)
        X = check_X(self, X, reset=False, method=method)
        return getattr(steps_for(self.engine, _kernels, reference), method)(X, *params)

    def fit_predict(self, X, y=None, sample_weight=None):
        """Fit, then return the most likely component of each sample (int64, shape (n_samples,))."""
        return self.fit(X, sample_weight=sample_weight).predict(X)

    def predict(self, X):
        """The most likely component of each sample, int64 of shape (n_samples,); a dask array for a dask X."""
        return self._model_call("predict", X)

    def predict_proba(self, X):
        """Responsibilities of each component, shape (n_samples, n_components); rows sum to 1."""
        return self._model_call("predict_proba", X)

    def score_samples(self, X):
        """Log-likelihood log p(x) of each sample, shape (n_samples,)."""
        return self._model_call("score_samples", X)

    def score(self, X, y=None, sample_weight=None):
        """Weighted mean log-likelihood of X under the model."""
        return float(np.average(self.score_samples(X), weights=sample_weight))

    def _n_parameters(self):
        return n_parameters(*self.means_.shape, self.covariance_type)

    def bic(self, X):
        """Bayesian information criterion on X: -2 log L + p log n (lower is better)."""
        return -2 * self.score(X) * X.shape[0] + self._n_parameters() * np.log(X.shape[0])

    def aic(self, X):
        """Akaike information criterion on X: -2 log L + 2p (lower is better)."""
        return -2 * self.score(X) * X.shape[0] + 2 * self._n_parameters()

    def sample(self, n_samples=1):
        """Draw samples from the fitted mixture, grouped by component as scikit-learn does.

        Component counts are multinomial; within component k the samples are
        ``mean_k + standard_normal * sqrt(variance_k)`` for 'diag' and
        'spherical', and ``rng.multivariate_normal(mean_k, covariance_k)`` for
        'full' and 'tied' (the shared covariance), as scikit-learn draws them. With an integer
        ``random_state`` every call returns the same draws, as in scikit-learn.

        Returns
        -------
        X : ndarray of shape (n_samples, n_features)
        y : ndarray of shape (n_samples,)
            The component of each sample (int64).
        """
        self._check_fitted("sample")
        if n_samples < 1:
            raise ValueError(f"n_samples={n_samples} must be at least 1.")
        rng = check_random_state(self.random_state)
        counts = rng.multinomial(n_samples, self.weights_)
        X = np.vstack([draw(rng, mean, covariance, count) for mean, covariance, count in
                       zip(self.means_, self._component_covariances(), counts)])
        y = np.repeat(np.arange(self.n_components, dtype=np.int64), counts)
        return X, y

    def _component_covariances(self):
        """The covariance of each component in the form of its type: the tied one repeated."""
        if self.covariance_type == "tied":
            return [self.covariances_] * self.n_components
        return self.covariances_


@functools.cache
def _thread_pools():
    """The process's thread pools, found once (about 17 ms under load); limiting them then costs microseconds."""
    return ThreadpoolController()


class _OneBlasThread:
    """BLAS limited to one thread while any fit runs, on any thread: the first fit to start takes the limit
    and the last to end gives it back. threadpoolctl's own limiter restores what it saw when it began, so
    fits overlapping on two threads (`select_model`) would end by restoring each other's limit of 1."""

    def __init__(self):
        self.lock, self.holders, self.limiter = threading.Lock(), 0, None

    def __enter__(self):
        with self.lock:
            if self.holders == 0:
                self.limiter = _thread_pools().limit(limits=1, user_api="blas")
            self.holders += 1

    def __exit__(self, *exception):
        with self.lock:
            self.holders -= 1
            if self.holders == 0:
                self.limiter.restore_original_limits()


_ONE_BLAS_THREAD = _OneBlasThread()


def draw(rng, mean, covariance, count):
    """``count`` draws of one component, consuming ``rng`` as scikit-learn's ``sample`` does."""
    if np.ndim(covariance) == 2:  # full or tied
        return rng.multivariate_normal(mean, covariance, int(count))
    return mean + rng.standard_normal(size=(count, mean.size)) * np.sqrt(covariance)


def evaluation_precisions(covariance_type, covariances, factors, shape):
    """The ``precisions`` argument of the steps (see `em.reference`) for a model of ``shape`` (K, D).

    'diag': 1/variances, from ``covariances`` when given, else ``factors`` are those precisions already;
    'spherical' repeats its one precision over the features; 'full' passes its Cholesky factors
    ``factors``; 'tied' repeats its one factor for every component.
    """
    n_components, n_features = shape
    if covariance_type in ("diag", "spherical"):
        precisions = factors if covariances is None else 1.0 / covariances
        if covariance_type == "spherical":
            precisions = np.repeat(precisions[:, None], n_features, axis=1)
        return precisions
    if covariance_type == "tied":
        return np.ascontiguousarray(np.broadcast_to(factors, (n_components, n_features, n_features)))
    return factors


def _inverse(precisions, covariance_type):
    """Covariances from precisions of a covariance type."""
    if covariance_type in ("diag", "spherical"):
        return 1.0 / precisions
    return np.linalg.inv(precisions)


def _trace(steps, X, sample_weight, covariance_type):
    """The per-iteration record behind ``GaussianMixture.trace_``: the bound, the parameters, which samples changed."""
    def labels_of(weights, means, covariances):
        factors = None if covariance_type in ("diag", "spherical") else precisions_cholesky(covariances, covariance_type)
        precisions = evaluation_precisions(covariance_type, covariances, factors, means.shape)
        return steps.predict(X, means, precisions, np.log(weights))

    return Trace("lower_bound", ("weights", "means", "variances"), labels_of, sample_weight)


def hard_statistics(X, sample_weight, labels, n_components, outer=False):
    """Sufficient statistics (N_k, Σ w x, scatter) when each sample belongs wholly to one component.

    The same numbers as ``reference.sufficient_statistics`` (``sufficient_statistics_full``
    with ``outer``) on one-hot responsibilities, without building the (n_samples, n_components) matrix.
    """
    nk, sum_x, sum_xx = cluster_sums(X, sample_weight, labels, n_components, nk_eps=NK_EPS, outer=outer)
    return nk + NK_EPS, sum_x, sum_xx


def _check_user_init(estimator, n_features):
    """Validated (weights_init, means_init, precisions_init); None where not given."""
    K, covariance_type = estimator.n_components, estimator.covariance_type
    weights, means, precisions = (
        None if value is None else np.array(value, dtype=np.float64)
        for value in (estimator.weights_init, estimator.means_init, estimator.precisions_init)
    )
    for name, value, shape in (
        ("weights_init", weights, (K,)),
        ("means_init", means, (K, n_features)),
        ("precisions_init", precisions, {"full": (K, n_features, n_features), "tied": (n_features, n_features),
                                         "diag": (K, n_features), "spherical": (K,)}[covariance_type]),
    ):
        if value is not None and value.shape != shape:
            raise ValueError(f"{name} has shape {value.shape}, expected {shape} (n_components={K}, n_features={n_features}).")
        if value is not None and not np.all(np.isfinite(value)):
            raise ValueError(f"{name} contains NaN or infinity; give finite values.")
    if weights is not None:
        if np.any(weights < 0) or np.any(weights > 1):
            raise ValueError(f"weights_init must lie in [0, 1], got min {weights.min()} and max {weights.max()}.")
        if not np.isclose(weights.sum(), 1.0, rtol=0.0, atol=1e-8):
            raise ValueError(f"weights_init must sum to 1, got a sum of {weights.sum():.10g}; normalise it.")
    if precisions is not None and covariance_type in ("diag", "spherical") and np.any(precisions <= 0):
        raise ValueError("precisions_init must be positive (they are 1/variances); got a value <= 0.")
    if precisions is not None and covariance_type in ("full", "tied"):
        for k, precision in enumerate(precisions.reshape((-1, n_features, n_features))):
            if not (np.allclose(precision, precision.T) and np.all(np.linalg.eigvalsh(precision) > 0)):
                raise ValueError(f"precisions_init[{k}] must be symmetric and positive definite "
                                 f"(covariance_type={covariance_type!r}).")
    return weights, means, precisions
