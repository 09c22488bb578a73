"""Where an EM iteration's time goes: the phases of emseg's fused kernel, and emseg against scikit-learn per iteration.

Run from the repository root; set NUMBA_NUM_THREADS=1 OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 for one thread each.
The phase timings call the kernel's private block helpers, one thread, min of 7 on china.jpg, k=10.
"""
import os, sys, time, warnings
from pathlib import Path
import numpy as np
from numba import njit
warnings.simplefilter("ignore")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from cases import Photo, initial_mixture, emseg_em_intervals, sklearn_em_intervals
import photos
from em import _kernels
from em._kernels import BLOCK, _block_weighted_log_prob, _block_e_step, _log_gaussian_const, _scratch

@njit
def only_lp(X, means, precisions, const):
    xb, lp, resp, log_norm, work = _scratch(means.shape[0], X.shape[1])
    for start in range(0, X.shape[0], BLOCK):
        stop = min(start + BLOCK, X.shape[0])
        _block_weighted_log_prob(X, start, stop, means, precisions, const, xb, lp)
    return lp[0, 0]

@njit
def lp_and_e(X, means, precisions, const):
    xb, lp, resp, log_norm, work = _scratch(means.shape[0], X.shape[1])
    s = 0.0
    for start in range(0, X.shape[0], BLOCK):
        stop = min(start + BLOCK, X.shape[0])
        _block_weighted_log_prob(X, start, stop, means, precisions, const, xb, lp)
        _block_e_step(lp, stop - start, resp, log_norm, work)
        s += log_norm[0]
    return s

def best(f, n=7):
    f(); ts = []
    for _ in range(n):
        t = time.perf_counter(); f(); ts.append(time.perf_counter() - t)
    return min(ts), float(np.median(ts))

photo = Photo.load("china", photos.bundled_path("china.jpg"))
init = initial_mixture(photo, 10)
means, prec = init["means_init"], init["precisions_init"]
lw = np.log(init["weights_init"])
const = _log_gaussian_const(prec, lw)
for name, X, w in (("all pixels", photo.X, np.ones(photo.n_pixels)), ("distinct colours", photo.colors, photo.counts)):
    n = len(X) * 10
    a = best(lambda: only_lp(X, means, prec, const))
    b = best(lambda: lp_and_e(X, means, prec, const))
    c = best(lambda: _kernels.e_step_stats(X, w, means, prec, lw))
    print(f"{name}: log-prob {a[0]*1e3:.1f} ms ({a[0]/n*1e9:.2f} ns/px/k); +E-step (exp, normalise) {b[0]*1e3:.1f} ms; "
          f"whole fused pass {c[0]*1e3:.1f} ms ({c[0]/n*1e9:.2f} ns/px/k)  [min of 7; threads={os.environ.get('NUMBA_NUM_THREADS')}]")
ours = [emseg_em_intervals(photo.X, None, init, 5)[0] for _ in range(3)]
oursd = [emseg_em_intervals(photo.colors, photo.counts, init, 5)[0] for _ in range(3)]
theirs = [sklearn_em_intervals(photo.X, init, 5)[0] for _ in range(2)]
o, od, t = np.median(sum(ours, [])), np.median(sum(oursd, [])), np.median(sum(theirs, []))
print(f"per EM iteration: emseg all {o*1e3:.1f} ms, emseg distinct {od*1e3:.1f} ms, sklearn {t*1e3:.1f} ms -> {t/o:.1f}x, {t/od:.1f}x")
