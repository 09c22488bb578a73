"""Time kmeans.KMeans (reference and numba engines) against scikit-learn's KMeans, side by side.

Run:  .venv/bin/python benchmarks/bench_kmeans.py [--repeats 7] [--image china.jpg] [--threads N] [--no-cold]

1. Compile: a cold numba compile (a subprocess with an empty cache), and the
   first fit in this process (a cache load once compiled).
2. Per Lloyd iteration: the same init array (off the 1/255 grid), k=10,
   tol=0, max_iter=20, on all pixels and on the distinct colours weighted by
   their counts. Time of a whole fit divided by its n_iter_; every engine runs
   the same iterations (n_iter_ is printed).
3. A full default fit (k-means++, tol=1e-4), ours and scikit-learn's from the
   same seed on all pixels: the same inertia, so the times compare directly.

Runs are interleaved (each round times every engine once, in a rotating
order), so a busy machine slows all of them alike. Quote the ratios.
"""

import argparse
import os
import subprocess
import sys
import tempfile
import time

import numba
import numpy as np
from sklearn.cluster import KMeans as SkKMeans
from sklearn.datasets import load_sample_image
from threadpoolctl import threadpool_info, threadpool_limits

from kmeans import KMeans

SEED = 0
K = 10
MAX_ITER = 20

COLD_SCRIPT = """
import time, numpy as np
start = time.perf_counter()
from kmeans import KMeans
X = np.random.default_rng(0).uniform(0, 255, (5000, 3))
KMeans(10, random_state=0).fit(X).predict(X)
print(time.perf_counter() - start)
"""


def cold_compile_seconds():
    """Import plus first fit in a fresh process whose numba cache is empty: the one-off compile cost."""
    with tempfile.TemporaryDirectory() as cache:
        env = dict(os.environ, NUMBA_CACHE_DIR=cache)
        out = subprocess.run([sys.executable, "-c", COLD_SCRIPT], env=env, capture_output=True, text=True, check=True)
    return float(out.stdout)


def shared_init(X, seed=SEED):
    """k rows of X moved off the 1/255 grid: no exact distance ties, so every engine takes the same steps."""
    rng = np.random.default_rng(seed)
    return X[rng.choice(len(X), K, replace=False)] + rng.uniform(0.1, 0.9, (K, X.shape[1]))


def fit_once(make, X, sample_weight):
    start = time.perf_counter()
    model = make().fit(X, sample_weight=sample_weight)
    return time.perf_counter() - start, model


def interleaved(makers, X, sample_weight, repeats):
    """Fit every engine ``repeats`` times, round by round; return {name: (times, last model)}."""
    results = {name: ([], None) for name in makers}
    names = list(makers)
    for r in range(repeats):
        for name in names[r % len(names) :] + names[: r % len(names)]:
            seconds, model = fit_once(makers[name], X, sample_weight)
            results[name][0].append(seconds)
            results[name] = (results[name][0], model)
    return results


def print_rows(title, results, per_iteration, baseline="sklearn"):
    """One row per engine: median, min and max time, n_iter_, inertia, and how many times faster than sklearn."""
    print(f"\n{title}")
    unit = "ms per iteration" if per_iteration else "ms per fit"
    print(f"  {'engine':<10} {'n_iter':>6} {'median':>9} {'min':>9} {'max':>9}   {'inertia':>20} {'speed-up':>9}   ({unit})")
    times = {name: np.array(seconds) * 1e3 / (model.n_iter_ if per_iteration else 1) for name, (seconds, model) in results.items()}
    for name, (_, model) in results.items():
        t = times[name]
        speed_up = np.median(times[baseline]) / np.median(t)
        print(f"  {name:<10} {model.n_iter_:>6} {np.median(t):9.2f} {t.min():9.2f} {t.max():9.2f}   {model.inertia_:20.6f} {speed_up:8.2f}x")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=7, help="timed rounds per engine (median of these)")
    parser.add_argument("--image", default="china.jpg", help="photo bundled with scikit-learn")
    parser.add_argument("--threads", type=int, help="threads for both numba and scikit-learn's OpenMP (default: all)")
    parser.add_argument("--no-cold", action="store_true", help="skip the cold-compile subprocess (about 15-30 s)")
    args = parser.parse_args(argv)
    if args.threads:
        numba.set_num_threads(args.threads)
    with threadpool_limits(limits=args.threads, user_api="openmp"):
        run(args)


def run(args):
    """Print the table for ``args`` (parsed by `main`)."""
    X = load_sample_image(args.image).reshape(-1, 3).astype(np.float64)
    colors, counts = np.unique(X, axis=0, return_counts=True)
    counts = counts.astype(np.float64)
    init = shared_init(X)
    openmp = [info["num_threads"] for info in threadpool_info() if info["user_api"] == "openmp"]
    print(f"image {args.image}: all pixels {X.shape}, distinct colours {colors.shape}; k={K}, seed={SEED}")
    print(f"numba {numba.__version__}, threads={numba.get_num_threads()}; scikit-learn OpenMP threads={openmp}; repeats={args.repeats}")

    print("\ncompile")
    if not args.no_cold:
        print(f"  cold (empty cache, import + first fit, subprocess): {cold_compile_seconds():8.2f} s")
    start = time.perf_counter()
    KMeans(K, random_state=SEED).fit(X)
    KMeans(K, random_state=SEED).fit(colors, sample_weight=counts)
    print(f"  first fits in this process (cache load or compile):  {time.perf_counter() - start:8.2f} s")
    print(f"  numba threading layer: {numba.threading_layer()}")

    lloyd = dict(init=init, n_init=1, tol=0.0, max_iter=MAX_ITER)
    makers = {
        "reference": lambda: KMeans(K, engine="reference", **lloyd),
        "numba": lambda: KMeans(K, **lloyd),
        "sklearn": lambda: SkKMeans(K, **lloyd),
    }
    for label, data, weights in [("all pixels", X, None), ("distinct colours, weighted by counts", colors, counts)]:
        reference_rounds = max(3, args.repeats // 2)  # the reference is slow; fewer rounds suffice
        results = interleaved({n: m for n, m in makers.items() if n != "reference"}, data, weights, args.repeats)
        results = {"reference": interleaved({"reference": makers["reference"]}, data, weights, reference_rounds)["reference"], **results}
        print_rows(f"Lloyd iterations, same init, tol=0, max_iter={MAX_ITER}: {label} {data.shape}", results, per_iteration=True)

    default = {"numba": lambda: KMeans(K, random_state=SEED), "sklearn": lambda: SkKMeans(K, random_state=SEED)}
    results = interleaved(default, X, None, args.repeats)
    print_rows(f"full default fit (k-means++, tol=1e-4, random_state={SEED}): all pixels {X.shape}", results, per_iteration=False)
    ours, theirs = results["numba"][1], results["sklearn"][1]
    print(f"  same labels: {np.array_equal(ours.labels_, theirs.labels_)}; inertia ratio - 1: {ours.inertia_ / theirs.inertia_ - 1:.1e}")


if __name__ == "__main__":
    main()
