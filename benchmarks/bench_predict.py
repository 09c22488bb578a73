"""Time GaussianMixture.predict on every pixel: before (the per-row kernel), after, and scikit-learn, side by side.

Run:  .venv/bin/python benchmarks/bench_predict.py [--repeats 5] [--before 4a31dd6] [--images china mosaic12]

For each image (china.jpg, and the 12 MP mosaic benchmarks/results/mosaic12.jpg,
made by benchmarks/photos.py if missing) and each covariance type, one
k = 10 mixture is fitted on the distinct colours (two EM iterations from
k-means); scikit-learn's GaussianMixture is given the same fitted parameters.
Then, interleaved in rounds with a rotating order:

- before: ``em/_kernels.py`` as it was at commit ``--before``, its ``predict`` on X
  (the per-row kernel, labels allocated inside numba);
- per row: today's per-row kernel (`_kernels._predict`), labels allocated by NumPy;
- after: ``GaussianMixture.predict(X)``, the estimator as a user calls it
  (validation of X included), which takes the colour table on pixels;
- scikit-learn: ``sklearn.mixture.GaussianMixture.predict(X)`` with the same parameters.

Wall time and CPU time (``time.process_time``: every thread of the process)
are printed as medians; numba compilation happens in a warm-up call before
the rounds and is printed separately. Above 2 M pixels scikit-learn runs once. The labels of every run are checked equal
to before's (and scikit-learn's adjusted Rand index is printed).
"""

import argparse
import importlib.util
import os
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numba
import numpy as np
from sklearn.exceptions import ConvergenceWarning
from sklearn.metrics import adjusted_rand_score
from sklearn.mixture import GaussianMixture as SkGaussianMixture

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

import photos  # noqa: E402
from em import GaussianMixture, _kernels  # noqa: E402
from em.estimator import evaluation_precisions  # noqa: E402
from segment import image  # noqa: E402

K = 10
SLOW_PIXELS = 2_000_000  # above this scikit-learn (up to minutes per call for 'full') is timed once, with no warm-up
TYPES = ("diag", "spherical", "full", "tied")


def kernels_at(revision, folder):
    """``em/_kernels.py`` as it was at ``revision``, imported as a module of its own (its numba cache beside it)."""
    source = subprocess.run(["git", "-C", str(ROOT), "show", f"{revision}:em/_kernels.py"], check=True,
                            capture_output=True, text=True).stdout
    path = Path(folder) / "kernels_before.py"
    path.write_text(source.replace("from .reference import", "from em.reference import"))
    spec = importlib.util.spec_from_file_location("kernels_before", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def pixels(name):
    if name == "china":
        return photos.read_rgb(photos.bundled_path("china.jpg"))
    path = ROOT / "benchmarks" / "results" / "mosaic12.jpg"
    if not path.exists():
        photos.write_jpeg(path, photos.mosaic())
    return photos.read_rgb(path)


def models(rgb, covariance_type):
    """emseg's mixture fitted on the distinct colours, and scikit-learn's holding the same parameters."""
    colors, counts, _ = image.distinct_colors(rgb)
    ours = GaussianMixture(K, covariance_type=covariance_type, max_iter=2, tol=0.0, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)  # two iterations, on purpose
        ours.fit(colors, sample_weight=counts)
    theirs = SkGaussianMixture(K, covariance_type=covariance_type)
    for name in ("weights_", "means_", "covariances_", "precisions_cholesky_", "precisions_", "n_features_in_"):
        setattr(theirs, name, getattr(ours, name))
    return ours, theirs


def kernel_params(model):
    """(means, precisions, log_weights) as `GaussianMixture.predict` passes them to the kernels."""
    diagonal = model.covariance_type in ("diag", "spherical")
    factors = model.precisions_ if diagonal else model.precisions_cholesky_
    precisions = evaluation_precisions(model.covariance_type, None, factors, model.means_.shape)
    return model.means_, precisions, np.log(model.weights_)


def per_row(X, params):
    labels = np.empty(len(X), dtype=np.int64)
    _kernels._predict(X, *params, labels)
    return labels


def timed(function):
    wall, cpu = time.perf_counter(), time.process_time()
    result = function()
    return time.perf_counter() - wall, time.process_time() - cpu, result


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--before", default="4a31dd6", help="the commit whose predict kernel is 'before'")
    parser.add_argument("--images", nargs="+", default=["china", "mosaic12"], choices=["china", "mosaic12"])
    parser.add_argument("--types", nargs="+", default=list(TYPES), choices=TYPES)
    args = parser.parse_args(argv)
    print(f"numba threads {numba.get_num_threads()}, k = {K}, medians of {args.repeats}; "
          f"load average {', '.join(f'{x:.1f}' for x in os.getloadavg())}")
    with tempfile.TemporaryDirectory() as folder:
        before = kernels_at(args.before, folder)
        for name in args.images:
            rgb = pixels(name)
            X = rgb.reshape(-1, 3).astype(np.float64)
            for covariance_type in args.types:
                ours, theirs = models(rgb, covariance_type)
                params = kernel_params(ours)
                runs = {
                    f"before ({args.before})": lambda: before.predict(X, *params),
                    "per row (today)": lambda: per_row(X, params),
                    "after (GaussianMixture.predict)": lambda: ours.predict(X),
                    "scikit-learn": lambda: theirs.predict(X),
                }
                slow = len(X) > SLOW_PIXELS
                # first calls: numba compiles or loads its cache
                compile_seconds = {key: timed(run)[0] for key, run in runs.items() if not (slow and key == "scikit-learn")}
                walls, cpus = {key: [] for key in runs}, {key: [] for key in runs}
                labels = {}
                keys = list(runs)
                for r in range(args.repeats):
                    for key in keys[r % len(keys):] + keys[:r % len(keys)]:
                        if slow and key == "scikit-learn" and r > 0:
                            continue
                        wall, cpu, labels[key] = timed(runs[key])
                        walls[key].append(wall)
                        cpus[key].append(cpu)
                want = labels[keys[0]]
                for key in keys:
                    same = ("ARI %.4f" % adjusted_rand_score(want, labels[key]) if key == "scikit-learn"
                            else "labels equal" if np.array_equal(labels[key], want) else "LABELS DIFFER")
                    print(f"{name:8s} {len(X):>10,} px {covariance_type:9s} {key:34s} wall {np.median(walls[key]) * 1e3:8.1f} ms "
                          f"CPU {np.median(cpus[key]) * 1e3:8.1f} ms  n={len(walls[key])}  first call "
                          f"{compile_seconds.get(key, float('nan')):6.2f} s  {same}", flush=True)


if __name__ == "__main__":
    main()
