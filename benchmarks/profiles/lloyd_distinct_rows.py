"""Lloyd's steps on the distinct rows of integer pixels, against every row and scikit-learn. Run from the repo root.

    python benchmarks/profiles/lloyd_distinct_rows.py [--threads 1] [--repeats 7] [--fit-repeats 3] [--photos china ...]

For each photo, X = rgb.reshape(-1, 3).astype(np.float64), k = 10, the same
number of threads for numba and scikit-learn's OpenMP, rounds interleaved,
medians of wall and CPU time (time.process_time: every thread of this
process, so a busy machine's waiting is not counted, but threads spinning
while they wait for work are; one thread measures the work alone):

1. one Lloyd iteration on all pixels from the same centres (off the pixel
   grid): emseg's step on the distinct colours (`_kernels.lloyd_step` plus
   `_update_centers`, which is what `kmeans.estimator._lloyd` runs per
   iteration), emseg's step on every pixel (before), and scikit-learn's
   `lloyd_iter_chunked_dense` on every pixel;
2. finding the distinct rows, once per fit (`distinct_weighted_rows`: the integer
   checks and the bitmap);
3. whole default fits from the same seeds: ``KMeans(10, random_state=r)``
   against scikit-learn's and against emseg with the steps on every row
   (before), with emseg's k-means++ seeding alone (on every row, in both),
   and ``GaussianMixture(10, random_state=r)`` against before (its EM iterates on the distinct rows
   as well, so its parameters agree with before's to rounding, reported).

"Before" is this code with `distinct_weighted_rows` returning None: exactly the
previous loop. Every pair's results are checked equal (KMeans: labels,
centres, inertia, n_iter_).
"""
import argparse
import sys
import time
import warnings
from pathlib import Path

import numba
import numpy as np
from sklearn.cluster import KMeans as SkKMeans
from sklearn.cluster._k_means_lloyd import lloyd_iter_chunked_dense
from threadpoolctl import threadpool_info, threadpool_limits

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
import photos  # noqa: E402
import kmeans.estimator as estimator  # noqa: E402
import em.estimator  # noqa: E402
from em import GaussianMixture  # noqa: E402
from kmeans import KMeans, _kernels, kmeans_plusplus  # noqa: E402
from kmeans.reference import update_centers  # noqa: E402

K = 10
RESULTS = Path(__file__).resolve().parents[1] / "results"
warnings.simplefilter("ignore")  # ConvergenceWarning of the mixtures' fits


def timed(f):
    wall, cpu = time.perf_counter(), time.process_time()
    result = f()
    return time.perf_counter() - wall, time.process_time() - cpu, result


def interleaved(runs, repeats):
    """{name: (wall seconds, CPU seconds, last result)} of ``runs[name](r)``, round by round, in rotating order."""
    out = {name: ([], [], None) for name in runs}
    names = list(runs)
    for r in range(repeats):
        for name in names[r % len(names):] + names[:r % len(names)]:
            wall, cpu, result = timed(lambda: runs[name](r))
            out[name][0].append(wall)
            out[name][1].append(cpu)
            out[name] = (out[name][0], out[name][1], result)
    return out


def print_rows(title, results, unit, scale, baselines):
    print(f"  {title}")
    for name, (wall, cpu, _) in results.items():
        ratios = "  ".join(f"{np.median(results[b][1]) / np.median(cpu):6.2f}x vs {b}" for b in baselines if b != name)
        print(f"    {name:<28} wall {np.median(wall) * scale:9.2f} {unit}   CPU {np.median(cpu) * scale:9.2f} {unit}"
              f"  [{min(cpu) * scale:.2f} - {max(cpu) * scale:.2f}]   CPU ratio {ratios}")


def before(fit):
    """``fit()`` with the steps on every row: `distinct_weighted_rows` answers None, in KMeans and the mixture."""
    modules = (estimator, em.estimator)
    keep = [module.distinct_weighted_rows for module in modules]
    for module in modules:
        module.distinct_weighted_rows = lambda X, sample_weight: None
    try:
        return fit()
    finally:
        for module, function in zip(modules, keep):
            module.distinct_weighted_rows = function


def iteration_runs(X, centers):
    """One Lloyd iteration each way; each call starts from the same centres and fresh labels."""
    w = np.ones(len(X))
    rows = estimator.distinct_weighted_rows(X, w)
    sk_centers, sk_weight = np.empty_like(centers), np.empty(K)
    sk_labels, sk_shift = np.empty(len(X), dtype=np.int32), np.empty(K)
    n_threads = numba.get_num_threads()

    def distinct(r):
        labels = np.full(len(rows.X), -1, dtype=np.int64)
        sum_x, nk, _, _ = _kernels.lloyd_step(rows.X, rows.sample_weight, centers, labels)
        return estimator._update_centers(X, w, centers, labels, sum_x, nk, rows)

    def every_row(r):
        labels = np.full(len(X), -1, dtype=np.int64)
        sum_x, nk, _, _ = _kernels.lloyd_step(X, w, centers, labels)
        return update_centers(X, w, centers, labels, sum_x, nk)

    def sklearn(r):
        lloyd_iter_chunked_dense(X, w, centers, sk_centers, sk_weight, sk_labels, sk_shift, n_threads, True)
        return sk_centers.copy()

    return rows, {"emseg, distinct colours": distinct, "emseg, every pixel (before)": every_row,
                  "scikit-learn, every pixel": sklearn}


def same_kmeans(a, b):
    return (a.n_iter_ == b.n_iter_ and a.inertia_ == b.inertia_ and np.array_equal(a.labels_, b.labels_)
            and np.array_equal(a.cluster_centers_, b.cluster_centers_))


def run_photo(name, rgb, args):
    X = rgb.reshape(-1, 3).astype(np.float64)
    centers = X[np.random.default_rng(0).choice(len(X), K, replace=False)] + 0.37  # off the pixel grid: no ties
    rows, runs = iteration_runs(X, centers)
    print(f"\n{name}: {len(X):,} pixels, {len(rows.X):,} distinct colours ({len(rows.X) / len(X):.1%})")
    for run in runs.values():  # compile or load every kernel first
        run(0)
    results = interleaved(runs, args.repeats)
    new_centers = [result[2] for result in results.values()]
    assert np.array_equal(new_centers[0], new_centers[1])  # the same step, bit for bit
    print_rows(f"one Lloyd iteration, k={K}, medians of {args.repeats}", results, "ms", 1e3,
               ["scikit-learn, every pixel", "emseg, every pixel (before)"])
    find = interleaved({"finding the distinct rows": lambda r: estimator.distinct_weighted_rows(X, np.ones(len(X)))},
                       args.repeats)
    print_rows("once per fit", find, "ms", 1e3, [])

    if args.fit_repeats:
        run_fits(X, args)


def run_fits(X, args):
    fits = {
        "emseg KMeans": lambda r: KMeans(K, random_state=r).fit(X),
        "emseg KMeans (before)": lambda r: before(lambda: KMeans(K, random_state=r).fit(X)),
        "scikit-learn KMeans": lambda r: SkKMeans(K, random_state=r).fit(X),
        "emseg k-means++ alone": lambda r: kmeans_plusplus(X, K, random_state=r),
    }
    results = interleaved(fits, args.fit_repeats)
    ours, old, theirs, _ = (result[2] for result in results.values())
    print_rows(f"KMeans({K}, random_state=r).fit(X), r = 0..{args.fit_repeats - 1}, n_iter_ of the last: "
               f"{ours.n_iter_} (scikit-learn {theirs.n_iter_}); same as before: {same_kmeans(ours, old)}",
               results, "s", 1, ["scikit-learn KMeans", "emseg KMeans (before)"])
    fits = {
        "emseg GaussianMixture": lambda r: GaussianMixture(K, random_state=r).fit(X),
        "emseg GaussianMixture (before)": lambda r: before(lambda: GaussianMixture(K, random_state=r).fit(X)),
    }
    results = interleaved(fits, args.fit_repeats)
    ours, old = (result[2] for result in results.values())
    # EM iterates on the distinct rows too (in another order of addition): equal to rounding, not to the bit
    moved = max(float(np.max(np.abs(getattr(ours, name) - getattr(old, name)) / np.abs(getattr(old, name))))
                for name in ("weights_", "means_", "covariances_"))
    print_rows(f"GaussianMixture({K}, random_state=r).fit(X); n_iter_ {ours.n_iter_} (before {old.n_iter_}), "
               f"parameters within {moved:.1e} relative of before", results, "s", 1, ["emseg GaussianMixture (before)"])


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=7, help="rounds of the per-iteration timings")
    parser.add_argument("--fit-repeats", type=int, default=3, help="rounds (seeds) of the whole fits; 0: none")
    parser.add_argument("--photos", nargs="+", default=["china", "flower", "mosaic12"])
    parser.add_argument("--threads", type=int, help="threads for numba and scikit-learn's OpenMP (default: all)")
    args = parser.parse_args()
    if args.threads:
        numba.set_num_threads(args.threads)
    with threadpool_limits(limits=args.threads, user_api="openmp"):
        run(args)


def run(args):
    openmp = [info["num_threads"] for info in threadpool_info() if info["user_api"] == "openmp"]
    print(f"numba {numba.__version__}, threads {numba.get_num_threads()}; scikit-learn OpenMP threads {openmp}")
    paths = photos.benchmark_photos(RESULTS, args.photos)  # mosaic12.jpg is written there, as run.py does
    for name in args.photos:
        run_photo(name, photos.read_rgb(paths[name]), args)


if __name__ == "__main__":
    main()
