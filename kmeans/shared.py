"""What both estimators share: scikit-learn's estimator interface, checks, the engines, the trace, chunking,
distinct rows, per-cluster sums, dask row blocks.

`em` imports this module, so everything here is public. Dask is imported only
inside the functions that need it: importing this module never loads it.
Neither is scikit-learn: importing it took 0.6-1.8 s (scipy.sparse, narwhals,
joblib, ...), more than a whole `emseg segment` of a small image should. The
estimators get its interface from `Estimator` below and use its own classes and
functions (tags, NotFittedError, ConvergenceWarning, validation of anything but
a plain NumPy array) only when those are asked for, importing it then.
"""

import contextlib
import contextvars
import functools
import inspect
import math
import numbers
import time
import warnings

import numpy as np
from numba import njit, parallel_chunksize, prange

ENGINE_NAMES = ("numba", "reference")  # 'numba': the package's _kernels; 'reference': its reference.py
SAMPLE_SIZE = 100_000  # rows drawn from a dask array to seed an initialisation


# ------------------------------------------- scikit-learn's estimator interface

class Estimator:
    """``get_params``, ``set_params``, the repr and the tags of scikit-learn's ``BaseEstimator`` and mixins.

    The parameters are the arguments of ``__init__``, read from its signature
    as ``BaseEstimator`` reads them, so ``clone``, ``Pipeline`` and
    ``GridSearchCV`` work as with scikit-learn's own estimators. Subclasses
    name their kind in ``_estimator_type`` ('clusterer', 'density_estimator');
    one with a ``transform`` method gets a transformer's tags.
    """

    _estimator_type = None

    @classmethod
    def _get_param_names(cls):
        """The names of the ``__init__`` arguments, sorted."""
        parameters = inspect.signature(cls.__init__).parameters.values()
        return sorted(p.name for p in parameters if p.name != "self" and p.kind != p.VAR_KEYWORD)

    def get_params(self, deep=True):
        """The parameters by name; with ``deep``, also those of parameters that are estimators, as ``name__param``."""
        params = {}
        for name in self._get_param_names():
            value = getattr(self, name)
            if deep and hasattr(value, "get_params") and not isinstance(value, type):
                params.update((f"{name}__{key}", item) for key, item in value.get_params().items())
            params[name] = value
        return params

    def set_params(self, **params):
        """Set parameters by name (``name__param`` for a parameter's own); returns self."""
        valid = self.get_params(deep=True)
        nested = {}
        for key, value in params.items():
            name, delimiter, sub_key = key.partition("__")
            if name not in valid:
                raise ValueError(f"Invalid parameter {name!r} for estimator {self}. "
                                 f"Valid parameters are: {self._get_param_names()!r}.")
            if delimiter:
                nested.setdefault(name, {})[sub_key] = value
            else:
                setattr(self, name, value)
                valid[name] = value
        for name, sub_params in nested.items():
            valid[name].set_params(**sub_params)
        return self

    def __repr__(self):
        """The class and the parameters that differ from their defaults, as scikit-learn prints them, on one line.

        (scikit-learn wraps a repr longer than 80 characters, and shortens long lists and very long ones.)
        """
        defaults = {p.name: p.default for p in inspect.signature(type(self).__init__).parameters.values()}
        changed = (f"{name}={value!r}" for name, value in self.get_params(deep=False).items()
                   if repr(value) != repr(defaults[name]))
        return f"{type(self).__name__}({', '.join(changed)})"

    def _check_fitted(self, method):
        """Raise scikit-learn's NotFittedError, naming ``method``, unless fit has set attributes.

        Fitted means as in ``sklearn.utils.validation.check_is_fitted``: an
        attribute whose name ends with '_'. The error class is imported only to
        be raised, so that ``except NotFittedError`` catches it.
        """
        if not any(name.endswith("_") and not name.startswith("__") for name in vars(self)):
            from sklearn.exceptions import NotFittedError

            raise NotFittedError(f"This {type(self).__name__} instance is not fitted yet; call fit before {method}.")

    def __sklearn_tags__(self):
        """scikit-learn's tags: those of BaseEstimator, with the kind of estimator (asked only by scikit-learn)."""
        from sklearn.utils import Tags, TargetTags, TransformerTags

        return Tags(estimator_type=self._estimator_type, target_tags=TargetTags(required=False),
                    transformer_tags=TransformerTags() if hasattr(self, "transform") else None,
                    regressor_tags=None, classifier_tags=None)


# both estimators' ConvergenceWarnings begin with one of these (the mixture's and k-means', as scikit-learn's)
CONVERGENCE_WARNINGS = r"Best performing initialization did not converge|Number of distinct clusters"
_convergence_warnings_off = contextvars.ContextVar("convergence_warnings_off", default=False)


def warn_convergence(message, stacklevel=1):
    """Warn with scikit-learn's ConvergenceWarning, so that its filters and ``pytest.warns`` see it.

    The class is imported only now, and not at all inside `convergence_warnings_ignored`: a fit that
    stops at max_iter would otherwise import scikit-learn (0.6-1.8 s) for a warning nobody sees.
    """
    if _convergence_warnings_off.get():
        return
    from sklearn.exceptions import ConvergenceWarning

    warnings.warn(message, ConvergenceWarning, stacklevel=stacklevel + 1)


@contextlib.contextmanager
def convergence_warnings_ignored():
    """Within the block, no ConvergenceWarning of the estimators, nor of scikit-learn's, which begin alike."""
    token = _convergence_warnings_off.set(True)
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=CONVERGENCE_WARNINGS, category=UserWarning)
            yield
    finally:
        _convergence_warnings_off.reset(token)


def check_random_state(seed):
    """A ``np.random.RandomState`` from None (NumPy's global one), an int (a new one) or an instance (itself).

    The same as ``sklearn.utils.check_random_state``, so a seed draws what it draws in scikit-learn.
    """
    if seed is None or seed is np.random:
        return np.random.mtrand._rand
    if isinstance(seed, numbers.Integral):
        return np.random.RandomState(seed)
    if isinstance(seed, np.random.RandomState):
        return seed
    raise ValueError(f"{seed!r} cannot be used to seed a numpy.random.RandomState instance")


# ------------------------------------------------------------------ checks

def check_int(name, value, minimum):
    """Raise TypeError unless ``value`` is an integer, ValueError unless it is at least ``minimum``."""
    if not isinstance(value, numbers.Integral) or isinstance(value, bool):
        raise TypeError(f"{name}={value!r} must be an integer, got {type(value).__name__}.")
    if value < minimum:
        raise ValueError(f"{name}={value} must be >= {minimum}.")


def check_number(name, value):
    """Raise ValueError unless ``value`` is a real number >= 0."""
    if not isinstance(value, numbers.Real) or isinstance(value, bool) or not value >= 0:
        raise ValueError(f"{name}={value!r} must be a number >= 0.")


def check_option(name, value, options):
    """Raise ValueError unless ``value`` is one of ``options``."""
    if value not in options:
        raise ValueError(f"{name}={value!r} is not one of {sorted(options)}.")


def steps_for(engine, kernels, reference):
    """The module that runs the steps: ``kernels`` for engine='numba', ``reference`` for engine='reference'."""
    check_option("engine", engine, ENGINE_NAMES)
    return kernels if engine == "numba" else reference


def check_k(name, k, n_samples, n_positive):
    """Raise unless ``k`` (n_clusters or n_components) is at most the samples, and the samples with positive weight."""
    check_int(name, k, minimum=1)
    if k > n_samples:
        raise ValueError(f"{name}={k} exceeds n_samples={n_samples}; use a smaller {name} or more data.")
    if k > n_positive:
        raise ValueError(
            f"{name}={k} exceeds the {n_positive} samples with positive weight; "
            f"use a smaller {name} or give more samples a positive sample_weight."
        )


def check_X(estimator, X, *, reset, method, min_samples=1):
    """X as a 2-D C-contiguous float64 array (copied only if needed), checked finite, for ``estimator.method``.

    scikit-learn's ``validate_data`` checks the shape and the features (and
    records them when ``reset``). A plain numeric 2-D NumPy array that passes
    them, given to an estimator without feature names, is checked here, with
    the same outcome; anything else (lists, DataFrames, sparse matrices, a
    wrong shape, ...) goes to ``validate_data``, for its conversions and
    messages. The finiteness check is ours, so that the message names the rows
    and the method.
    """
    if not (_is_plain_array(X, min_samples) and not hasattr(estimator, "feature_names_in_")
            and (reset or X.shape[1] == getattr(estimator, "n_features_in_", X.shape[1]))):
        from sklearn.utils.validation import validate_data

        X = validate_data(estimator, X, reset=reset, dtype=[np.float64, np.float32], ensure_all_finite=False,
                          ensure_min_samples=min_samples)
    elif reset:
        estimator.n_features_in_ = X.shape[1]
    return _finite_float64(X, method)


def check_samples(X, method):
    """``check_X`` for a function, with no estimator: scikit-learn's ``check_array`` unless X is a plain array."""
    if not _is_plain_array(X, min_samples=1):
        from sklearn.utils.validation import check_array

        X = check_array(X, dtype=[np.float64, np.float32], ensure_all_finite=False)
    return _finite_float64(X, method)


def _is_plain_array(X, min_samples):
    """True for a NumPy array scikit-learn's checks would take as it is: numeric, 2-D, not empty."""
    return (type(X) is np.ndarray and X.dtype.kind in "fiu" and X.ndim == 2
            and X.shape[0] >= min_samples and X.shape[1] >= 1)


def _finite_float64(X, method):
    X = np.ascontiguousarray(X, dtype=np.float64)
    check_finite(X, method)
    return X


def nonfinite_message(n_rows, method):
    return f"X contains NaN or inf in {n_rows} row(s); drop or impute them before calling {method}."


def check_finite(X, method):
    """Raise ValueError if X has NaN or inf, naming how many rows and the method."""
    # the sum is finite only if every value is (inf - inf is NaN); unlike np.isfinite(X) it allocates
    # nothing the size of X: half the time on 12 MP. A sum that overflows is checked value by value.
    with np.errstate(over="ignore"):
        total = X.sum()
    if not np.isfinite(total):
        n_rows = int(np.count_nonzero(~np.isfinite(X).all(axis=1)))
        if n_rows:
            raise ValueError(nonfinite_message(n_rows, method))


def weight_shape_message(shape, n_samples):
    return f"sample_weight has shape {shape}; expected ({n_samples},), one weight per row of X."


def check_sample_weight(sample_weight, n_samples):
    """Float64 weights of shape (n_samples,): finite, non-negative, not all zero; None means all ones."""
    if sample_weight is None:
        return np.ones(n_samples)
    if isinstance(sample_weight, numbers.Number):
        sample_weight = np.full(n_samples, sample_weight, dtype=np.float64)
    sample_weight = np.asarray(sample_weight)
    if sample_weight.dtype.kind not in "iuf":
        raise TypeError(f"sample_weight must be numeric; got an array of dtype {sample_weight.dtype}.")
    sample_weight = np.ascontiguousarray(sample_weight, dtype=np.float64)
    if sample_weight.shape != (n_samples,):
        raise ValueError(weight_shape_message(sample_weight.shape, n_samples))
    if not np.isfinite(sample_weight).all():
        raise ValueError("sample_weight contains NaN or inf; weights must be finite.")
    if (sample_weight < 0).any():
        raise ValueError(f"sample_weight contains negative values (min {sample_weight.min()}); weights must be >= 0.")
    if not sample_weight.any():
        raise ValueError("sample_weight is zero everywhere; give samples a positive weight.")
    return sample_weight


def is_dask_array(X):
    """True for a dask array, checked without importing dask."""
    return type(X).__module__.startswith("dask.") and hasattr(X, "chunks")


# ------------------------------------------------------------------- trace

class Trace:
    """The per-iteration record behind ``trace_``: row t holds the parameters after t iterations.

    Parameters
    ----------
    objective : str
        The name of the objective column, such as 'lower_bound' or 'inertia'.
    parameters : tuple of str
        The names of the parameters each row holds, such as ('centers',).
    labels_of : callable
        ``labels_of(*parameters)`` gives each sample's label under them.
    sample_weight : ndarray of shape (n_samples,)
        ``n_changed`` is the total weight of the samples whose label changed.
    """

    def __init__(self, objective, parameters, labels_of, sample_weight):
        self.names = ("iteration", objective, *parameters, "seconds", "n_changed")
        self.labels_of, self.sample_weight = labels_of, sample_weight
        self.rows, self.labels, self.start = [], None, time.perf_counter()

    def record(self, objective, *parameters):
        labels = self.labels_of(*parameters)
        changed = 0.0 if self.labels is None else self.sample_weight[labels != self.labels].sum()
        self.labels = labels
        self.rows.append((len(self.rows), objective, *parameters, time.perf_counter() - self.start, changed))

    def as_dict(self):
        return {name: np.array(column) for name, column in zip(self.names, zip(*self.rows))}


# ---------------------------------------------------------------- chunking

@njit(inline="always")
def count_chunks(n_samples, chunk_size):
    """How many chunks of ``chunk_size`` samples cover ``n_samples``: fixed by the data, never by the threads.

    From Python, call ``count_chunks.py_func``: calling a jitted function from Python compiles
    it, and this one, inlined into its callers, has no cache (it cost every ``emseg`` run 0.23 s).
    """
    return (n_samples + chunk_size - 1) // chunk_size


@njit(inline="always")
def chunk_bounds(c, n_samples, chunk_size):
    """First and one-past-last sample of chunk ``c``."""
    start = c * chunk_size
    return start, min(start + chunk_size, n_samples)


def dynamic_chunks(kernel):
    """Run a parallel kernel with its prange iterations (chunks) handed out one at a time.

    numba otherwise splits the chunks evenly between the threads up front, and
    on a shared machine one descheduled thread holds back the whole pass
    (measured: 10x slower with the other core busy). Which thread runs a chunk
    never changes what it computes, so results stay bit-identical.
    """

    @functools.wraps(kernel)
    def run(*args):
        with parallel_chunksize(1):
            return kernel(*args)

    run.py_func = kernel.py_func  # the plain-Python body, for debugging as with any kernel
    return run


# ----------------------------------------------------------- distinct rows

RANGE_CHUNK = 1 << 16  # rows per parallel chunk of `integer_range`
MAX_BITMAP_KEYS = 1 << 27  # a bitmap of at most 16 MB; every 8-bit RGB colour takes 2 MB
BITMAP_KEYS_PER_ROW = 1024  # up to 16 bitmap words per row, scanning them costs less than sorting the keys
KEY_LIMIT = 1 << 53  # keys below it, and the differences x - low that make them, are exact in float64
ONE = np.uint64(1)  # numba turns uint64 mixed with a Python int into float64: bit operations use this


def integer_range(X):
    """Per-feature minimum and maximum of X if every entry is an integer; None at the first one that is not.

    One parallel pass over X, each chunk stopping at its first non-integer, so
    data that is not integer-valued (colours in Lab, measurements) costs almost nothing.

    Parameters
    ----------
    X : ndarray of shape (n_samples, n_features), float64, finite

    Returns
    -------
    low, high : ndarray of shape (n_features,), float64; or None
    """
    integer, low, high = _chunk_ranges(X)
    if not integer.all():
        return None
    return low.min(axis=0), high.max(axis=0)


@njit(parallel=True, cache=True)
def _chunk_ranges(X):
    """Whether each chunk of ``RANGE_CHUNK`` rows is integer-valued, and its per-feature minimum and maximum."""
    n_samples, n_features = X.shape
    n_chunks = count_chunks(n_samples, RANGE_CHUNK)
    integer = np.empty(n_chunks, dtype=np.bool_)
    low = np.empty((n_chunks, n_features), dtype=np.float64)
    high = np.empty((n_chunks, n_features), dtype=np.float64)
    for c in prange(n_chunks):
        start, stop = chunk_bounds(c, n_samples, RANGE_CHUNK)
        integer[c] = _chunk_range(X[start:stop], low[c], high[c])
    return integer, low, high


@njit(cache=True)
def _chunk_range(X, low, high):
    """Fill ``low`` and ``high`` with X's per-feature extremes; False as soon as an entry is not an integer."""
    low[:] = np.inf
    high[:] = -np.inf
    if X.shape[1] == 3:  # RGB: the extremes in registers, not in low[d] and high[d] (3x faster)
        low0, low1, low2, high0, high1, high2 = low[0], low[1], low[2], high[0], high[1], high[2]
        for i in range(X.shape[0]):
            x0, x1, x2 = X[i, 0], X[i, 1], X[i, 2]
            if x0 != np.floor(x0) or x1 != np.floor(x1) or x2 != np.floor(x2):
                return False
            low0, low1, low2 = min(low0, x0), min(low1, x1), min(low2, x2)
            high0, high1, high2 = max(high0, x0), max(high1, x1), max(high2, x2)
        low[0], low[1], low[2], high[0], high[1], high[2] = low0, low1, low2, high0, high1, high2
        return True
    for i in range(X.shape[0]):
        for d in range(X.shape[1]):
            x = X[i, d]
            if x != np.floor(x):
                return False
            low[d] = min(low[d], x)
            high[d] = max(high[d], x)
    return True


def distinct_rows(X, low, sizes, max_distinct=None):
    r"""The distinct rows of integer-valued X, how many rows each one has, and which one each row is.

    Each row is packed into one integer key, feature by feature
    (:math:`\sum_d (x_d - low_d) \prod_{e > d} sizes_e`), so the keys sort as
    the rows do. With at most ``MAX_BITMAP_KEYS`` possible keys and at most
    ``BITMAP_KEYS_PER_ROW`` per row, one bit per possible key marks the keys
    present, and a key's rank among them is the number of bits set before it
    (`_mark_keys`, `_list_keys`, `_key_ranks`, `_count_ranks`): linear time
    and 2 MB for every 8-bit colour. Otherwise ``np.unique`` sorts the keys.
    On 8-bit pixels the bitmap was 6-7x faster than sorting on china.jpg and
    flower.jpg, and 1.5x faster than a 64 MB table of counts on 12 megapixels.
    The distinct rows come out sorted by key either way.

    Parameters
    ----------
    X : ndarray of shape (n_samples, n_features)
        Integers of any dtype, or integer-valued floats, with
        ``low[d] <= X[:, d] < low[d] + sizes[d]``.
    low, sizes : sequence of n_features ints
        The smallest value of each feature and how many values it can take;
        their product must be below ``KEY_LIMIT``.
    max_distinct : int or None
        Return None when there are more distinct rows than this (with the
        bitmap, known before the second pass over the rows).

    Returns
    -------
    rows : ndarray of shape (n_distinct, n_features), float64
    counts : ndarray of shape (n_distinct,), int64
    inverse : ndarray of shape (n_samples,), int32 or int64
        ``rows[inverse]`` is X.
    """
    max_distinct = len(X) if max_distinct is None else max_distinct
    low = np.asarray(low, dtype=np.int64)
    sizes = [int(size) for size in sizes]
    n_keys = math.prod(sizes)
    strides = np.array([math.prod(sizes[d + 1:]) for d in range(len(sizes))], dtype=np.int64)
    if n_keys <= min(MAX_BITMAP_KEYS, BITMAP_KEYS_PER_ROW * len(X)):
        bits = np.zeros(count_chunks.py_func(n_keys, 64), dtype=np.uint64)
        _mark_keys(X, low, strides, bits)
        keys, first_rank = _list_keys(bits)
        if len(keys) > max_distinct:
            return None
        inverse = _key_ranks(X, low, strides, bits, first_rank)
        counts = _count_ranks(inverse, len(keys))
    else:
        keys, inverse, counts = np.unique(_row_keys(X, low, strides), return_inverse=True, return_counts=True)
        if len(keys) > max_distinct:
            return None
    return _key_rows(keys, low, strides, np.array(sizes, dtype=np.int64)), counts, inverse.ravel()


@njit(inline="always")
def _row_key(X, i, low, strides):
    """Row i of X as one integer: ``sum_d (X[i, d] - low[d]) * strides[d]``."""
    if X.shape[1] == 3:  # RGB: no inner loop
        return (np.int64(X[i, 0] - low[0]) * strides[0] + np.int64(X[i, 1] - low[1]) * strides[1]
                + np.int64(X[i, 2] - low[2]) * strides[2])
    key = np.int64(0)
    for d in range(X.shape[1]):
        key += np.int64(X[i, d] - low[d]) * strides[d]
    return key


@njit(cache=True)
def _count_ranks(inverse, n_distinct):
    """How many rows have each rank, int64: ``np.bincount`` without its int64 copy of an int32 ``inverse``."""
    counts = np.zeros(n_distinct, dtype=np.int64)
    for rank in inverse:
        counts[rank] += 1
    return counts


@njit(cache=True)
def _key_rows(keys, low, strides, sizes):
    """The rows the keys were made of, float64: ``low[d] + key // strides[d] % sizes[d]``."""
    rows = np.empty((len(keys), len(low)), dtype=np.float64)
    for i in range(len(keys)):
        for d in range(len(low)):
            rows[i, d] = low[d] + keys[i] // strides[d] % sizes[d]
    return rows


@njit(parallel=True, cache=True)
def _row_keys(X, low, strides):
    """Every row's key, int64."""
    keys = np.empty(X.shape[0], dtype=np.int64)
    for i in prange(X.shape[0]):
        keys[i] = _row_key(X, i, low, strides)
    return keys


@njit(inline="always")
def _bits_set(word):
    """How many bits of the uint64 ``word`` are 1 (LLVM makes this one popcnt instruction)."""
    word = word - ((word >> ONE) & np.uint64(0x5555555555555555))
    word = (word & np.uint64(0x3333333333333333)) + ((word >> np.uint64(2)) & np.uint64(0x3333333333333333))
    word = (word + (word >> np.uint64(4))) & np.uint64(0x0F0F0F0F0F0F0F0F)
    return np.int64((word * np.uint64(0x0101010101010101)) >> np.uint64(56))


@njit(cache=True)
def _mark_keys(X, low, strides, bits):
    """Set bit ``key`` of the bitmap ``bits`` (uint64 words) for each row's key; serial: threads would race on a word."""
    for i in range(X.shape[0]):
        key = _row_key(X, i, low, strides)
        bits[key >> 6] |= ONE << np.uint64(key & 63)


@njit(cache=True)
def _list_keys(bits):
    """The keys whose bit is set, in order, and the rank of the first key of each word (the bits set before it)."""
    first_rank = np.empty(len(bits), dtype=np.int32)
    n_distinct = 0
    for w in range(len(bits)):
        first_rank[w] = n_distinct
        n_distinct += _bits_set(bits[w])
    keys = np.empty(n_distinct, dtype=np.int64)
    rank = 0
    for w in range(len(bits)):
        word = bits[w]
        while word:
            lowest = word & (~word + ONE)
            keys[rank] = 64 * w + _bits_set(lowest - ONE)
            rank += 1
            word ^= lowest
    return keys, first_rank


@njit(parallel=True, cache=True)
def _key_ranks(X, low, strides, bits, first_rank):
    """Each row's rank among the distinct keys, int32: the index of its distinct row."""
    ranks = np.empty(X.shape[0], dtype=np.int32)
    for i in prange(X.shape[0]):
        key = _row_key(X, i, low, strides)
        w = key >> 6
        ranks[i] = first_rank[w] + _bits_set(bits[w] & ((ONE << np.uint64(key & 63)) - ONE))
    return ranks


# ------------------------------------------------------------ cluster sums

def cluster_sums(X, sample_weight, labels, n_clusters, about=None, nk_eps=0.0, outer=False):
    r"""N_k, Σ w x and Σ w (x - a_k)² over the samples labelled k, for each cluster k.

    The sufficient statistics of one-hot responsibilities, without the
    (n_samples, n_clusters) matrix.

    Parameters
    ----------
    X : ndarray of shape (n_samples, n_features)
    sample_weight : ndarray of shape (n_samples,)
    labels : ndarray of shape (n_samples,), int64
    n_clusters : int
    about : ndarray of shape (n_clusters, n_features) or None
        The points a_k; None takes each cluster's mean :math:`\sum w x / (N_k + \text{nk\_eps})`.
    nk_eps : float
        Added to N_k for those means only, so that an empty cluster does not divide by zero.
    outer : bool
        Return the scatter matrices :math:`\sum w (x - a_k)^T (x - a_k)` instead
        of their diagonals (the mixture's full and tied covariances).

    Returns
    -------
    nk : ndarray of shape (n_clusters,)
    sum_x, sum_dd : ndarray of shape (n_clusters, n_features)
        sum_dd is (n_clusters, n_features, n_features) with ``outer``.
    """
    # each sum runs over the samples in order, as np.bincount(labels, weights=...) adds them
    nk, sum_x = _cluster_totals(X, sample_weight, labels, n_clusters)
    if about is None:
        about = sum_x / (nk + nk_eps)[:, None]
    scatter = _cluster_outer_scatter if outer else _cluster_scatter
    return nk, sum_x, scatter(X, sample_weight, labels, np.ascontiguousarray(about, dtype=np.float64))


@njit(cache=True)
def _cluster_totals(X, sample_weight, labels, n_clusters):
    """N_k = Σ w and Σ w x over the samples labelled k, added sample after sample."""
    nk = np.zeros(n_clusters, dtype=np.float64)
    sum_x = np.zeros((n_clusters, X.shape[1]), dtype=np.float64)
    for i in range(X.shape[0]):
        k = labels[i]
        nk[k] += sample_weight[i]
        for d in range(X.shape[1]):
            sum_x[k, d] += sample_weight[i] * X[i, d]
    return nk, sum_x


@njit(cache=True)
def _cluster_scatter(X, sample_weight, labels, about):
    """Σ w (x - a_k)² per feature over the samples labelled k, added sample after sample."""
    sum_dd = np.zeros(about.shape, dtype=np.float64)
    for i in range(X.shape[0]):
        k = labels[i]
        for d in range(X.shape[1]):
            diff = X[i, d] - about[k, d]
            sum_dd[k, d] += sample_weight[i] * (diff * diff)
    return sum_dd


@njit(cache=True)
def _cluster_outer_scatter(X, sample_weight, labels, about):
    """Σ w (x - a_k)ᵀ(x - a_k) over the samples labelled k, added sample after sample; symmetric."""
    n_clusters, n_features = about.shape
    sum_dd = np.zeros((n_clusters, n_features, n_features), dtype=np.float64)
    for i in range(X.shape[0]):
        k = labels[i]
        for d in range(n_features):
            diff_d = X[i, d] - about[k, d]
            for e in range(d + 1):
                sum_dd[k, d, e] += sample_weight[i] * (diff_d * (X[i, e] - about[k, e]))
    for d in range(n_features):
        for e in range(d):
            sum_dd[:, e, d] = sum_dd[:, d, e]
    return sum_dd


# ------------------------------------------------------- dask row blocks

def check_arrays(X, sample_weight):
    """X as float64 with one chunk across the columns, and weights chunked as its rows.

    Parameters
    ----------
    X : dask array of shape (n_samples, n_features)
    sample_weight : dask array, array-like of shape (n_samples,) or None

    Returns
    -------
    X : dask array of shape (n_samples, n_features), float64
    sample_weight : dask array of shape (n_samples,), float64
    """
    import dask.array as da

    if X.ndim != 2:
        raise ValueError(f"X must be 2-D, got a dask array of shape {X.shape}.")
    if X.dtype.kind not in "iuf":
        raise TypeError(f"X must be numeric; got a dask array of dtype {X.dtype}.")
    if any(np.isnan(size) for size in X.chunks[0]):
        raise ValueError("X has unknown chunk sizes; call X.compute_chunk_sizes() first.")
    X = X.astype(np.float64).rechunk({1: -1})
    if sample_weight is None:
        return X, da.ones(X.shape[0], chunks=(X.chunks[0],))
    if not is_dask_array(sample_weight):
        sample_weight = da.from_array(np.asarray(sample_weight))
    if sample_weight.shape != (X.shape[0],):
        raise ValueError(weight_shape_message(sample_weight.shape, X.shape[0]))
    return X, sample_weight.astype(np.float64).rechunk((X.chunks[0],))


def row_blocks(X, sample_weight):
    """The (X block, weight block) pairs as delayed objects, in row order."""
    return list(zip(X.to_delayed().ravel(), sample_weight.to_delayed().ravel()))


def map_blocks(function, blocks, *args):
    """``function(x, w, *args)`` on every block, on the workers; the outputs as a list in block order."""
    import dask

    tasks = [dask.delayed(function, pure=True)(x, w, *args) for x, w in blocks]
    return dask.compute(*tasks, scheduler=_scheduler())


def reduce_blocks(function, blocks, *args):
    """``function(x, w, *args)`` on every block, on the workers; the outputs summed in block order.

    ``function`` returns a tuple of arrays or numbers. The sum runs on the
    client from the first block to the last, so the result does not depend on
    which worker finished first.
    """
    parts = map_blocks(function, blocks, *args)
    return tuple(functools.reduce(np.add, column) for column in zip(*parts))


def _scheduler():
    """None (the configured one, such as a dask.distributed Client), else one block at a time.

    The numba kernels are parallel already; dask's thread pool would call them
    from several threads at once, which numba's default threading layer forbids.
    """
    import dask

    return None if dask.config.get("scheduler", None) else "sync"


def check_data(blocks, name, k, n_samples):
    """Raise ValueError for NaN or inf in X, bad weights, or ``k`` above the positive weights; return the total weight."""
    n_nonfinite, n_positive, n_bad_weights, total_weight = reduce_blocks(_summary_block, blocks)
    if n_nonfinite:
        raise ValueError(nonfinite_message(int(n_nonfinite), "fit"))
    if n_bad_weights:
        raise ValueError(f"sample_weight has {n_bad_weights} negative, NaN or inf value(s); weights must be finite and >= 0.")
    check_k(name, k, n_samples, int(n_positive))
    return float(total_weight)


def _summary_block(X, sample_weight):
    """Rows with NaN or inf, positive weights, bad weights, total weight."""
    bad_weights = ~np.isfinite(sample_weight) | (sample_weight < 0)
    return (np.count_nonzero(~np.isfinite(X).all(axis=1)), np.count_nonzero(sample_weight > 0),
            np.count_nonzero(bad_weights), sample_weight.sum())


def sample_rows(X, sample_weight, random_state, size=SAMPLE_SIZE):
    """A uniform sample of the rows, as NumPy arrays; all rows, with no draw, when there are at most ``size``."""
    import dask

    if X.shape[0] <= size:
        return np.ascontiguousarray(X.compute()), np.ascontiguousarray(sample_weight.compute())
    rows = np.unique(random_state.randint(0, X.shape[0], size=size))  # sorted, so dask reads each block once
    X_sample, w_sample = dask.compute(X[rows], sample_weight[rows])
    return np.ascontiguousarray(X_sample), np.ascontiguousarray(w_sample)
