"""Numba versions of ``em/reference.py``: same function names, same argument order.

The E-step and the M-step's sufficient statistics are fused into one parallel
sweep over the samples, so the (n_samples, n_components) responsibility matrix
is never stored during ``fit``.

How the work is laid out, so that LLVM vectorises the inner loops:

* Parallelism is over fixed chunks of ``CHUNK_SIZE`` samples. Each chunk
  writes only its own accumulator row, and the rows are summed in chunk order
  after the loop, so results are bit-identical whatever the number of threads.
* Chunks are handed to threads one at a time (``kmeans.shared.dynamic_chunks``), not split
  evenly up front: on a shared machine a descheduled thread would otherwise
  hold back the whole pass (measured: 10x slower with the other core busy).
* Inside a chunk, samples go through in blocks of ``BLOCK``, transposed, with
  the sample loop innermost (``for k: for b:``).
* Sums over samples go into per-lane accumulators (one slot per position in
  the block), reduced once per chunk: without reassociation, a running scalar
  sum would force one add after another.
* ``exp`` and ``log`` are polynomials (``_exp_nonpositive``, ``_log_nonnegative``)
  that the compiler can vectorise, to 1 and 2 ulp; libm's are scalar calls:
  its ``exp`` made the fused pass 2.7x slower, its ``log`` (once per sample)
  cost a fifth of the pass at k = 10.
* Multiply-adds may be fused (FMA, one rounding instead of two), nothing else
  of fastmath: fusing is what made the polynomials and the pass 10-15% faster.

To debug a kernel as plain Python, call ``kernel.py_func`` or set
``NUMBA_DISABLE_JIT=1``.
"""

import math

import numpy as np
from numba import njit, prange

from kmeans.shared import chunk_bounds, count_chunks, dynamic_chunks

from .reference import scatter_about_new_means

# cache: compiled code is reused across processes. Of fastmath only "contract" (FMA): no
# reassociation, which breaks the polynomials' rounding tricks (PERF-NOTES), and no "no infinities",
# so -inf survives in log space. FMA rounds once where a multiply and an add round twice, so results
# move by an ulp here and there from a build without it (a generic CPU): within the derived tolerances
# (tests/exactness.py), and still the same for any number of threads. error_model="numpy"
# drops the division-by-zero check that would stop the loops from vectorising.
JIT_OPTIONS = dict(cache=True, fastmath={"contract"}, error_model="numpy")

# samples per parallel task: fixed by the data, never by the thread count. Each chunk zeroes and
# reduces its own lane accumulators (160 KB for k=10); 8192 samples amortise that, 1.2x faster than 2048
CHUNK_SIZE = 8192
BLOCK = 256  # samples per vectorised inner loop; the scratch arrays stay in cache
LOG_2PI = math.log(2.0 * math.pi)

# exp(v) = 2**n * exp(r), with n = round(v / ln 2) and |r| <= ln(2) / 2
LOG2E = 1.4426950408889634
LN2_HI = 6.93147180369123816490e-01  # ln 2 split in two so that n * LN2_HI is exact (Cody-Waite)
LN2_LO = 1.90821492927058770002e-10
ROUNDER = 6755399441055744.0  # 1.5 * 2**52: adding it rounds to an integer held in the low mantissa bits
EXP_MIN = -708.0  # below this exp(v) is subnormal; 0 is returned instead
EXPONENT_ONE = 1023 << 52  # the bits of 1.0
MANTISSA = (1 << 52) - 1  # the fraction bits of a float64
TWO52_BITS = 0x4330000000000000  # the bits of 2**52: OR-ing an integer below 2**52 into them gives 2**52 + it
TWO52 = 4503599627370496.0
SQRT2 = math.sqrt(2.0)


@njit(**JIT_OPTIONS)
def _exp_nonpositive(x, work, n):
    """x[:n] = exp(x[:n]) in place, for x <= 0 including -inf, to 1 ulp; ``work`` is scratch of length >= n."""
    for b in range(n):
        v = max(x[b], EXP_MIN)
        t = v * LOG2E + ROUNDER
        n_float = t - ROUNDER
        r = (v - n_float * LN2_HI) - n_float * LN2_LO
        # Taylor series of exp(r) to degree 13: the remainder is below 1e-17 for |r| <= ln(2) / 2.
        # Written out because numba reads a tuple indexed in a loop from memory (5x slower).
        p = 1.0 / 6227020800.0  # 1/13!
        p = p * r + 1.0 / 479001600.0  # 1/12!
        p = p * r + 1.0 / 39916800.0  # 1/11!
        p = p * r + 1.0 / 3628800.0  # 1/10!
        p = p * r + 1.0 / 362880.0  # 1/9!
        p = p * r + 1.0 / 40320.0  # 1/8!
        p = p * r + 1.0 / 5040.0  # 1/7!
        p = p * r + 1.0 / 720.0  # 1/6!
        p = p * r + 1.0 / 120.0  # 1/5!
        p = p * r + 1.0 / 24.0  # 1/4!
        p = p * r + 1.0 / 6.0  # 1/3!
        p = p * r + 1.0 / 2.0  # 1/2!
        p = p * r + 1.0
        p = p * r + 1.0
        x[b] = p if x[b] >= EXP_MIN else 0.0
        work[b] = t
    # 2**n from its bits: the low bits of t hold n
    bits = work.view(np.int64)
    for b in range(n):
        bits[b] = (bits[b] << 52) + EXPONENT_ONE
    for b in range(n):
        x[b] *= work[b]


@njit(**JIT_OPTIONS)
def _log_nonnegative(x, work, n):
    """x[:n] = log(x[:n]) in place, to 2 ulp, for x >= +0.0 (subnormals count as 0); ``work`` is scratch of length >= n.

    libm's ``log`` is a scalar call per pixel (3.4-6 ns); this loop vectorises (1.1 ns).
    x = 2**e m with m in [√½, √2], and log m = 2 atanh(s) = 2 (s + s³/3 + s⁵/5 + ...) with
    s = (m - 1) / (m + 1), |s| <= 0.172: the series to s²¹ leaves a remainder below 3e-17 of it.
    """
    bits = x.view(np.int64)
    exponent = work.view(np.int64)
    for b in range(n):
        exponent[b] = (bits[b] >> 52) | TWO52_BITS  # as a float: 2**52 + the biased exponent e + 1023
        bits[b] = (bits[b] & MANTISSA) | EXPONENT_ONE  # m in [1, 2)
    for b in range(n):
        fraction = x[b]
        e = work[b] - (TWO52 + 1023.0)
        m = fraction
        if m > SQRT2:
            m *= 0.5
            e += 1.0
        s = (m - 1.0) / (m + 1.0)  # m - 1 is exact for m in [½, 2]
        z = s * s
        p = 1.0 / 21.0
        p = p * z + 1.0 / 19.0
        p = p * z + 1.0 / 17.0
        p = p * z + 1.0 / 15.0
        p = p * z + 1.0 / 13.0
        p = p * z + 1.0 / 11.0
        p = p * z + 1.0 / 9.0
        p = p * z + 1.0 / 7.0
        p = p * z + 1.0 / 5.0
        p = p * z + 1.0 / 3.0
        t = 2.0 * s
        log_x = e * LN2_HI + (t + (t * z * p + e * LN2_LO))  # e * LN2_HI is exact (Cody-Waite, as in exp)
        if e < -1022.0:  # exponent bits 0: zero (or subnormal)
            log_x = -math.inf
        elif e > 1023.0:  # exponent bits all 1: +inf if the fraction is 0, else NaN
            log_x = math.inf if fraction == 1.0 else math.nan
        x[b] = log_x


@njit(**JIT_OPTIONS)
def _log_gaussian_const(precisions, log_weights):
    """log π_k - ½ (D log 2π - Σ_d log(1/σ²_kd)): the part of log π_k N(x | k) that does not depend on x."""
    n_components, n_features = precisions.shape
    const = np.empty(n_components, dtype=np.float64)
    for k in range(n_components):
        log_det = 0.0
        for d in range(n_features):
            log_det += math.log(precisions[k, d])
        const[k] = log_weights[k] - 0.5 * (n_features * LOG_2PI - log_det)
    return const


@njit(**JIT_OPTIONS)
def _block_weighted_log_prob(X, start, stop, means, precisions, const, xb, lp):
    """xb[d, b] = X[start + b, d] and lp[k, b] = log π_k + log N(x_{start+b} | μ_k, σ²_k)."""
    n_components, n_features = means.shape
    n = stop - start
    for d in range(n_features):
        for b in range(n):
            xb[d, b] = X[start + b, d]
    if n_features == 3:
        # RGB: one pass per component, the sum in a register. Its additions are
        # those of the general loop below, in the same order (0 + a is a), so
        # it rounds the same; the general loop reads and writes lp[k] 5 times.
        x0, x1, x2 = xb[0], xb[1], xb[2]
        for k in range(n_components):
            m0, m1, m2 = means[k, 0], means[k, 1], means[k, 2]
            p0, p1, p2 = precisions[k, 0], precisions[k, 1], precisions[k, 2]
            for b in range(n):
                t0, t1, t2 = x0[b] - m0, x1[b] - m1, x2[b] - m2
                lp[k, b] = const[k] - 0.5 * (t0 * t0 * p0 + t1 * t1 * p1 + t2 * t2 * p2)
        return
    for k in range(n_components):
        for b in range(n):
            lp[k, b] = 0.0
        for d in range(n_features):
            mean, precision = means[k, d], precisions[k, d]
            for b in range(n):
                diff = xb[d, b] - mean
                lp[k, b] += diff * diff * precision
        for b in range(n):
            lp[k, b] = const[k] - 0.5 * lp[k, b]


@njit(**JIT_OPTIONS)
def _log_gaussian_const_full(factors, log_weights):
    """log π_k - ½ D log 2π + Σ_d log (U_k)_dd: the part of log π_k N(x | k) that does not depend on x (full)."""
    n_components, n_features = factors.shape[0], factors.shape[1]
    const = np.empty(n_components, dtype=np.float64)
    for k in range(n_components):
        log_det = 0.0
        for d in range(n_features):
            log_det += math.log(factors[k, d, d])
        const[k] = log_weights[k] - 0.5 * n_features * LOG_2PI + log_det
    return const


@njit(**JIT_OPTIONS)
def _block_weighted_log_prob_full(X, start, stop, means, factors, const, xb, lp):
    """As `_block_weighted_log_prob`, for full precisions given by their upper Cholesky factors U_k.

    lp[k, b] = const_k - ½ |(x_b - μ_k) U_k|². ``xb`` has 2 D + 1 rows: the
    block, then the deviations x - μ_k of the current component, then one
    coordinate of y = (x - μ_k) U_k at a time.
    """
    n_components, n_features = means.shape
    n = stop - start
    for d in range(n_features):
        for b in range(n):
            xb[d, b] = X[start + b, d]
    if n_features == 3:
        # RGB: one pass per component, y and its square summed in registers, with the additions of
        # the general loop below in the same order (0 + a is a), so it rounds the same
        x0, x1, x2 = xb[0], xb[1], xb[2]
        for k in range(n_components):
            m0, m1, m2 = means[k, 0], means[k, 1], means[k, 2]
            u00, u01, u02 = factors[k, 0, 0], factors[k, 0, 1], factors[k, 0, 2]
            u11, u12, u22 = factors[k, 1, 1], factors[k, 1, 2], factors[k, 2, 2]
            for b in range(n):
                t0, t1, t2 = x0[b] - m0, x1[b] - m1, x2[b] - m2
                y0, y1, y2 = t0 * u00, t0 * u01 + t1 * u11, t0 * u02 + t1 * u12 + t2 * u22
                lp[k, b] = const[k] - 0.5 * (y0 * y0 + y1 * y1 + y2 * y2)
        return
    y = xb[2 * n_features]
    for k in range(n_components):
        for d in range(n_features):
            mean = means[k, d]
            for b in range(n):
                xb[n_features + d, b] = xb[d, b] - mean  # centred first: no large terms to cancel
        for b in range(n):
            lp[k, b] = 0.0
        for e in range(n_features):  # y_e = Σ_{d <= e} (x - μ)_d U_de, U upper triangular
            for b in range(n):
                y[b] = 0.0
            for d in range(e + 1):
                factor = factors[k, d, e]
                for b in range(n):
                    y[b] += xb[n_features + d, b] * factor
            for b in range(n):
                lp[k, b] += y[b] * y[b]
        for b in range(n):
            lp[k, b] = const[k] - 0.5 * lp[k, b]


@njit(**JIT_OPTIONS)
def _log_const(precisions, log_weights):
    """`_log_gaussian_const_full` for full Cholesky factors (3-D), `_log_gaussian_const` for diagonal precisions.

    numba resolves the branch on ``ndim`` when it compiles, so each covariance
    form gets its own machine code. The kernels used to take the two functions
    as arguments instead; but numba types a function argument by the
    function's address in memory, so the on-disk cache never matched in a new
    process, and every ``emseg`` run compiled `_predict` again.
    """
    if precisions.ndim == 3:
        return _log_gaussian_const_full(precisions, log_weights)
    return _log_gaussian_const(precisions, log_weights)


@njit(**JIT_OPTIONS)
def _block_log_prob(X, start, stop, means, precisions, const, xb, lp):
    """`_block_weighted_log_prob_full` or `_block_weighted_log_prob`, by ``precisions.ndim``, as `_log_const`."""
    if precisions.ndim == 3:
        _block_weighted_log_prob_full(X, start, stop, means, precisions, const, xb, lp)
    else:
        _block_weighted_log_prob(X, start, stop, means, precisions, const, xb, lp)


@njit(**JIT_OPTIONS)
def _block_e_step(lp, n, resp, log_norm, work):
    """resp[k, b] = γ_bk and log_norm[b] = log p(x_b) from the weighted log-probabilities lp.

    ``work`` is scratch of two rows of ``BLOCK``; lp is left as it was.
    """
    n_components = lp.shape[0]
    total, spare = work[0], work[1]
    for b in range(n):
        log_norm[b] = lp[0, b]
    for k in range(1, n_components):
        for b in range(n):
            log_norm[b] = max(log_norm[b], lp[k, b])
    # subtract the row max so exp() cannot overflow and one term is exactly 1
    for k in range(n_components):
        for b in range(n):
            resp[k, b] = lp[k, b] - log_norm[b]
        _exp_nonpositive(resp[k], spare, n)
    for b in range(n):
        total[b] = 0.0
    for k in range(n_components):
        for b in range(n):
            total[b] += resp[k, b]
    for b in range(n):  # one division per sample, then multiplications: a division costs several
        spare[b] = 1.0 / total[b]
    for k in range(n_components):
        for b in range(n):
            resp[k, b] *= spare[b]
    # the total is at least 1 (one term is exp(0)), or 0 when the row had no finite log-probability
    _log_nonnegative(total, spare, n)
    for b in range(n):
        log_norm[b] += total[b]


@njit(**JIT_OPTIONS)
def _block_weights(sample_weight, start, n, work):
    """The block's weights, copied to ``work[0]`` once the E-step is done with it: read from there, the
    statistics loops ran 6-12% faster than indexing ``sample_weight[start + b]`` (the same products)."""
    w = work[0]
    for b in range(n):
        w[b] = sample_weight[start + b]
    return w


@njit(**JIT_OPTIONS)
def _scratch(n_components, n_features):
    """Per-chunk scratch: the transposed block, log-probabilities, responsibilities, log p(x), two rows of work."""
    return (
        np.empty((2 * n_features + 1, BLOCK), dtype=np.float64),  # the full path's deviations and y after the block
        np.empty((n_components, BLOCK), dtype=np.float64),
        np.empty((n_components, BLOCK), dtype=np.float64),
        np.empty(BLOCK, dtype=np.float64),
        np.empty((2, BLOCK), dtype=np.float64),
    )


def e_step_stats(X, sample_weight, means, precisions, log_weights):
    """Numba version of `reference.e_step_stats`: one fused E-step and sufficient-statistics pass.

    Parameters
    ----------
    X : ndarray of shape (n_samples, n_features)
    sample_weight : ndarray of shape (n_samples,)
    means, precisions : ndarray of shape (n_components, n_features)
    log_weights : ndarray of shape (n_components,)

    Returns
    -------
    nk : ndarray of shape (n_components,)
    sum_x, sum_xx : ndarray of shape (n_components, n_features)
        sum_xx is the scatter about the new means, as in the reference.
    log_lik : float
        Σ_n w_n log p(x_n) under the parameters passed in.
    """
    nk, sum_x, sum_dd, log_lik = e_step_sums(X, sample_weight, means, precisions, log_weights)
    return (*scatter_about_new_means(nk, sum_x, sum_dd, means), log_lik)


def e_step_sums(X, sample_weight, means, precisions, log_weights):
    """Numba version of `reference.e_step_sums`: N_k, Σ w γ x, the scatter about the *current* means, log-likelihood.

    Sums of several row blocks add up to the sums of their union, so the
    dask path calls this on each block and corrects the scatter once.
    ``precisions`` (n_components, n_features, n_features) are the Cholesky factors
    of full precisions, and the scatter is then a matrix per component.
    """
    # the chunks' rows are added here, in NumPy, in chunk order: inside a parallel numba
    # function a sum(axis=0) may become a parallel reduction that rounds by thread count
    chunk_sums = _chunk_sums_full if precisions.ndim == 3 else _chunk_sums
    return tuple(rows.sum(axis=0) for rows in chunk_sums(X, sample_weight, means, precisions, log_weights))


@dynamic_chunks
@njit(parallel=True, **JIT_OPTIONS)
def _chunk_sums(X, sample_weight, means, precisions, log_weights):
    """`e_step_sums` of each chunk of ``CHUNK_SIZE`` samples, one row per chunk."""
    n_samples, n_features = X.shape
    n_components = means.shape[0]
    n_chunks = count_chunks(n_samples, CHUNK_SIZE)
    const = _log_gaussian_const(precisions, log_weights)
    nk = np.zeros((n_chunks, n_components), dtype=np.float64)
    sum_x = np.zeros((n_chunks, n_components, n_features), dtype=np.float64)
    # scatter about the *current* means: centred sums cannot cancel the way Σ γ x² - N μ² does
    sum_dd = np.zeros((n_chunks, n_components, n_features), dtype=np.float64)
    log_lik = np.zeros(n_chunks, dtype=np.float64)
    for c in prange(n_chunks):
        xb, lp, resp, log_norm, work = _scratch(n_components, n_features)
        lane_n = np.zeros((n_components, BLOCK), dtype=np.float64)
        lane_x = np.zeros((n_components, n_features, BLOCK), dtype=np.float64)
        lane_dd = np.zeros((n_components, n_features, BLOCK), dtype=np.float64)
        lane_ll = np.zeros(BLOCK, dtype=np.float64)
        chunk_start, chunk_stop = chunk_bounds(c, n_samples, CHUNK_SIZE)
        for start in range(chunk_start, chunk_stop, BLOCK):
            stop = min(start + BLOCK, chunk_stop)
            n = stop - start
            _block_weighted_log_prob(X, start, stop, means, precisions, const, xb, lp)
            _block_e_step(lp, n, resp, log_norm, work)
            w = _block_weights(sample_weight, start, n, work)
            for b in range(n):
                lane_ll[b] += w[b] * log_norm[b]
            if n_features == 3:
                # RGB: one pass per component, the block's colour in registers
                x0, x1, x2 = xb[0], xb[1], xb[2]
                for k in range(n_components):
                    m0, m1, m2 = means[k, 0], means[k, 1], means[k, 2]
                    for b in range(n):
                        r = resp[k, b] * w[b]
                        t0, t1, t2 = x0[b] - m0, x1[b] - m1, x2[b] - m2
                        lane_n[k, b] += r
                        lane_x[k, 0, b] += r * x0[b]
                        lane_x[k, 1, b] += r * x1[b]
                        lane_x[k, 2, b] += r * x2[b]
                        lane_dd[k, 0, b] += r * t0 * t0
                        lane_dd[k, 1, b] += r * t1 * t1
                        lane_dd[k, 2, b] += r * t2 * t2
                continue
            for k in range(n_components):
                for b in range(n):
                    resp[k, b] *= w[b]
                    lane_n[k, b] += resp[k, b]
                for d in range(n_features):
                    mean = means[k, d]
                    for b in range(n):
                        diff = xb[d, b] - mean
                        lane_x[k, d, b] += resp[k, b] * xb[d, b]
                        lane_dd[k, d, b] += resp[k, b] * diff * diff
        for b in range(BLOCK):
            log_lik[c] += lane_ll[b]
            for k in range(n_components):
                nk[c, k] += lane_n[k, b]
                for d in range(n_features):
                    sum_x[c, k, d] += lane_x[k, d, b]
                    sum_dd[c, k, d] += lane_dd[k, d, b]
    return nk, sum_x, sum_dd, log_lik


@dynamic_chunks
@njit(parallel=True, **JIT_OPTIONS)
def _chunk_sums_full(X, sample_weight, means, factors, log_weights):
    """`e_step_sums` of each chunk for full precisions (Cholesky factors U_k), one row per chunk.

    The scatter Σ w γ (x - μ_k)ᵀ(x - μ_k) about the current means is summed
    over the upper triangle d <= e and mirrored once per chunk.
    """
    n_samples, n_features = X.shape
    n_components = means.shape[0]
    n_chunks = count_chunks(n_samples, CHUNK_SIZE)
    const = _log_gaussian_const_full(factors, log_weights)
    nk = np.zeros((n_chunks, n_components), dtype=np.float64)
    sum_x = np.zeros((n_chunks, n_components, n_features), dtype=np.float64)
    sum_dd = np.zeros((n_chunks, n_components, n_features, n_features), dtype=np.float64)
    log_lik = np.zeros(n_chunks, dtype=np.float64)
    for c in prange(n_chunks):
        xb, lp, resp, log_norm, work = _scratch(n_components, n_features)
        lane_n, lane_x, lane_dd = full_lanes(n_components, n_features)
        lane_ll = np.zeros(BLOCK, dtype=np.float64)
        chunk_start, chunk_stop = chunk_bounds(c, n_samples, CHUNK_SIZE)
        for start in range(chunk_start, chunk_stop, BLOCK):
            stop = min(start + BLOCK, chunk_stop)
            n = stop - start
            _block_weighted_log_prob_full(X, start, stop, means, factors, const, xb, lp)
            _block_e_step(lp, n, resp, log_norm, work)
            w = _block_weights(sample_weight, start, n, work)
            for b in range(n):
                lane_ll[b] += w[b] * log_norm[b]
            for k in range(n_components):
                for b in range(n):
                    resp[k, b] *= w[b]
            accumulate_full(xb, resp, n, means, lane_n, lane_x, lane_dd)
        for b in range(BLOCK):
            log_lik[c] += lane_ll[b]
        reduce_lanes_full(lane_n, lane_x, lane_dd, nk[c], sum_x[c], sum_dd[c])
    return nk, sum_x, sum_dd, log_lik


@njit(**JIT_OPTIONS)
def full_lanes(n_components, n_features):
    """Zeroed lane sums of `accumulate_full`: N_k, Σ w γ x and the upper triangle of the scatter, one slot per block position."""
    n_pairs = n_features * (n_features + 1) // 2
    return (np.zeros((n_components, BLOCK), dtype=np.float64),
            np.zeros((n_components, n_features, BLOCK), dtype=np.float64),
            np.zeros((n_components, n_pairs, BLOCK), dtype=np.float64))


@njit(**JIT_OPTIONS)
def accumulate_full(xb, resp, n, means, lane_n, lane_x, lane_dd):
    """Add a block's weighted responsibilities resp[k, b] = w_b γ_bk to the lane sums (`full_lanes`).

    N_k, Σ w γ x and the upper triangle d <= e of Σ w γ (x - μ_k)ᵀ(x - μ_k) about
    the *current* means; ``xb`` holds the block in rows 0..D-1 and uses rows D..2D-1 as scratch.
    """
    n_components, n_features = means.shape
    for k in range(n_components):
        for b in range(n):
            lane_n[k, b] += resp[k, b]
        for d in range(n_features):
            mean = means[k, d]
            for b in range(n):
                lane_x[k, d, b] += resp[k, b] * xb[d, b]
                xb[n_features + d, b] = resp[k, b] * (xb[d, b] - mean)  # w γ (x - μ)_d
        pair = 0
        for d in range(n_features):
            for e in range(d, n_features):
                mean = means[k, e]
                for b in range(n):
                    lane_dd[k, pair, b] += xb[n_features + d, b] * (xb[e, b] - mean)
                pair += 1


@njit(**JIT_OPTIONS)
def reduce_lanes_full(lane_n, lane_x, lane_dd, nk, sum_x, sum_dd):
    """Add the lane sums of `accumulate_full` to one chunk's row: nk (K,), sum_x (K, D), sum_dd (K, D, D) mirrored."""
    n_components, n_features = sum_x.shape
    for b in range(lane_n.shape[1]):
        for k in range(n_components):
            nk[k] += lane_n[k, b]
            for d in range(n_features):
                sum_x[k, d] += lane_x[k, d, b]
    for k in range(n_components):
        pair = 0
        for d in range(n_features):
            for e in range(d, n_features):
                total = 0.0
                for b in range(lane_dd.shape[2]):
                    total += lane_dd[k, pair, b]
                sum_dd[k, d, e] += total
                if e != d:
                    sum_dd[k, e, d] += total
                pair += 1


@dynamic_chunks
@njit(parallel=True, **JIT_OPTIONS)
def _e_step_into(X, means, precisions, log_weights, out, want):
    """Fill ``out`` (n_samples, n_components) with log γ (want=0), γ (want=1) or log π_k N(x | k) (want=2); return log p(x_n)."""
    n_samples, n_features = X.shape
    n_components = means.shape[0]
    const = _log_const(precisions, log_weights)
    log_p = np.empty(n_samples, dtype=np.float64)
    for c in prange(count_chunks(n_samples, CHUNK_SIZE)):
        xb, lp, resp, log_norm, work = _scratch(n_components, n_features)
        chunk_start, chunk_stop = chunk_bounds(c, n_samples, CHUNK_SIZE)
        for start in range(chunk_start, chunk_stop, BLOCK):
            stop = min(start + BLOCK, chunk_stop)
            n = stop - start
            _block_log_prob(X, start, stop, means, precisions, const, xb, lp)
            _block_e_step(lp, n, resp, log_norm, work)
            for b in range(n):
                log_p[start + b] = log_norm[b]
                for k in range(out.shape[1]):
                    if want == 2:
                        out[start + b, k] = lp[k, b]
                    else:
                        out[start + b, k] = lp[k, b] - log_norm[b] if want == 0 else resp[k, b]
    return log_p


def e_step(X, means, precisions, log_weights):
    """Numba version of `reference.e_step`: log_resp of shape (n_samples, n_components), log_norm of shape (n_samples,)."""
    log_resp = np.empty((X.shape[0], means.shape[0]), dtype=np.float64)
    log_norm = _e_step_into(X, means, precisions, log_weights, log_resp, 0)
    return log_resp, log_norm


def weighted_log_prob(X, means, precisions, log_weights):
    """Numba version of `reference.weighted_log_prob`: log π_k + log N(x_n | k), shape (n_samples, n_components)."""
    out = np.empty((X.shape[0], means.shape[0]), dtype=np.float64)
    _e_step_into(X, means, precisions, log_weights, out, 2)
    return out


def predict_proba(X, means, precisions, log_weights):
    """Numba version of `reference.predict_proba`: responsibilities, shape (n_samples, n_components)."""
    resp = np.empty((X.shape[0], means.shape[0]), dtype=np.float64)
    _e_step_into(X, means, precisions, log_weights, resp, 1)
    return resp


def score_samples(X, means, precisions, log_weights):
    """Numba version of `reference.score_samples`: log p(x_n), shape (n_samples,)."""
    # no responsibilities are kept, so nothing of size (n_samples, n_components) is allocated
    return _e_step_into(X, means, precisions, log_weights, np.empty((X.shape[0], 0), dtype=np.float64), 1)


def predict(X, means, precisions, log_weights):
    """Numba version of `reference.predict`: the most responsible component, ties to the lowest k.

    Pixels (three features, every value a whole number 0..255, at least
    ``COLOR_MIN_SAMPLES`` C-contiguous rows, at most 254 components) go through
    `_predict_colors`, which labels each distinct colour once, with the same
    arithmetic, and gives the same labels bit for bit; any other X through
    `_predict`, row by row.
    """
    # allocated by NumPy, which asks Linux for huge pages for large arrays: a label array allocated
    # inside numba is mapped in 4 KB pages, and their faults took 2x as long as writing it (12 MP)
    labels = np.empty(X.shape[0], dtype=np.int64)
    if X.shape[0] >= COLOR_MIN_SAMPLES and X.shape[1] == 3 and means.shape[0] < ABSENT and X.flags.c_contiguous:
        table = np.full(1 << 24, ABSENT, dtype=np.uint8)
        if _predict_colors(X, means, precisions, log_weights, table, labels):
            return labels
    _predict(X, means, precisions, log_weights, labels)
    return labels


# filling the 16 MB colour table and labelling each colour's first rows cost as much as the per-row path
# saves on about 1 M rows (rows spread over the 12 MP mosaic, one thread); at 2 M rows it was 1.15x faster
COLOR_MIN_SAMPLES = 1 << 21
ABSENT = 255  # a colour-table entry not labelled yet: mixtures of at most 254 components (labels 0..253) use the table


@dynamic_chunks
@njit(parallel=True, **JIT_OPTIONS)
def _predict(X, means, precisions, log_weights, labels):
    """`predict` into ``labels``, row by row, for diagonal precisions or full Cholesky factors."""
    n_samples, n_features = X.shape
    n_components = means.shape[0]
    const = _log_const(precisions, log_weights)
    for c in prange(count_chunks(n_samples, CHUNK_SIZE)):
        scratch = _label_scratch(n_components, n_features)
        chunk_start, chunk_stop = chunk_bounds(c, n_samples, CHUNK_SIZE)
        for start in range(chunk_start, chunk_stop, BLOCK):
            stop = min(start + BLOCK, chunk_stop)
            most = _label_block(X, start, stop, means, precisions, const, scratch)
            for b in range(stop - start):
                labels[start + b] = most[b]


@dynamic_chunks
@njit(parallel=True, **JIT_OPTIONS)
def _predict_colors(X, means, precisions, log_weights, table, labels):
    """`predict` into ``labels`` of (n_samples, 3) whole numbers 0..255, through ``table``, the 2**24 colours' labels.

    A label depends only on the row's values. Each chunk checks its values,
    writes each row's key r·2¹⁶ + g·2⁸ + b where its label goes, then looks
    the keys up. Rows whose colour has no label yet are gathered and labelled
    a block at a time by `_label_block`, as `_predict` labels them, and the
    labels stored in the table; later rows of those colours read them. Two
    threads may label the same colour: both store the same label, so the
    labels do not depend on the threads or their order.

    Returns False, with the labels unfinished, if some value is not a whole
    number in 0..255. ``table`` starts filled with ``ABSENT``.
    """
    n_samples, n_features = X.shape
    n_components = means.shape[0]
    const = _log_const(precisions, log_weights)
    n_chunks = count_chunks(n_samples, CHUNK_SIZE)
    whole = np.ones(n_chunks, dtype=np.bool_)
    values = X.reshape(-1)
    for c in prange(n_chunks):
        chunk_start, chunk_stop = chunk_bounds(c, n_samples, CHUNK_SIZE)
        # views indexed from 0: numba then knows no index is negative, and the loops vectorise (6x on the check)
        rows, chunk_labels = X[chunk_start:chunk_stop], labels[chunk_start:chunk_stop]
        if not _whole_bytes(values[3 * chunk_start:3 * chunk_stop]):
            whole[c] = False
            continue
        for i in range(rows.shape[0]):  # the keys, for now, where the labels go; exact for whole numbers 0..255
            chunk_labels[i] = np.int32(rows[i, 0] * 65536.0 + rows[i, 1] * 256.0 + rows[i, 2])
        scratch = _label_scratch(n_components, n_features)
        new = np.empty((2, BLOCK), dtype=np.int64)  # rows whose colour had no label yet, and their keys
        n_new = 0
        for i in range(rows.shape[0]):
            key = chunk_labels[i]
            chunk_labels[i] = table[key]
            if chunk_labels[i] == ABSENT:
                new[0, n_new], new[1, n_new] = i, key
                n_new += 1
                if n_new == BLOCK:  # a whole block at a time: 28 ms on 4 M rows, against 33.6 ms a few at a time
                    _label_new_colors(rows, new, n_new, means, precisions, const, scratch, chunk_labels, table)
                    n_new = 0
        _label_new_colors(rows, new, n_new, means, precisions, const, scratch, chunk_labels, table)
    return whole.all()


@njit(**JIT_OPTIONS)
def _label_new_colors(rows, new, n_new, means, precisions, const, scratch, labels, table):
    """Label rows[new[0, j]] for j < n_new with `_label_block`; store each label in ``labels`` and under its key new[1, j] in ``table``.

    A colour that occurs again before its block is labelled is labelled again, to the same label.
    """
    colors = scratch[4]
    for j in range(n_new):
        for d in range(rows.shape[1]):
            colors[j, d] = rows[new[0, j], d]
    most = _label_block(colors, 0, n_new, means, precisions, const, scratch)
    for j in range(n_new):
        labels[new[0, j]] = table[new[1, j]] = most[j]


@njit(**JIT_OPTIONS)
def _whole_bytes(values):
    """True if every value is a whole number in 0..255 (False for NaN)."""
    outside = False
    for j in range(values.shape[0]):
        outside |= (values[j] < 0.0) | (values[j] > 255.0) | (math.floor(values[j]) != values[j])
    return not outside


@njit(**JIT_OPTIONS)
def _label_scratch(n_components, n_features):
    """Per-chunk scratch of `_label_block`, and rows to label gathered (`_label_new_colors`)."""
    xb, lp, _, best, _ = _scratch(n_components, n_features)
    return xb, lp, best, np.empty((2, BLOCK), dtype=np.int64), np.empty((BLOCK, n_features), dtype=np.float64)


@njit(**JIT_OPTIONS)
def _label_block(X, start, stop, means, precisions, const, scratch):
    """The labels of rows start..stop-1 of X, in the first stop - start entries of the array returned."""
    xb, lp, best, indices, _ = scratch
    _block_log_prob(X, start, stop, means, precisions, const, xb, lp)
    return _most_probable(lp, stop - start, best, indices)


@njit(**JIT_OPTIONS)
def _most_probable(lp, n, best, indices):
    """The row of ``indices`` (shape (2, BLOCK)) holding argmax_k lp[k, b] for b < n; ties to the lowest k.

    ``best`` is scratch. Each pass over the block reads the indices so far
    from one row and writes them to the other, so the loop vectorises to a
    blend and a plain store, as in `kmeans._kernels._nearest_in_block`; a
    branch writing the labels in place did not vectorise.
    """
    top, updated = indices[0], indices[1]
    for b in range(n):
        best[b] = lp[0, b]
        top[b] = 0
    for k in range(1, lp.shape[0]):
        for b in range(n):
            updated[b] = k if lp[k, b] > best[b] else top[b]
            best[b] = lp[k, b] if lp[k, b] > best[b] else best[b]
        top, updated = updated, top
    return top
