"""scikit-learn's default fit on the 12 MP mosaic, run for real, against emseg's through distinct colours.

Run from the repository root::

    python benchmarks/large_fits.py                # the four covariance types (about an hour of CPU)
    python benchmarks/large_fits.py --types diag   # one
    python benchmarks/large_fits.py --types full --sklearn-max-iter 3   # a measured lower bound

Issue 14's target: every covariance type's default fit (k=10, k-means init,
tol=1e-3, random_state=0) at least 100x scikit-learn's on 12 MP through the
distinct colours. `covariance_types.py` estimates scikit-learn's side from one
iteration; this script runs the whole fit once per type (minutes each, a peak
of several GB), between emseg's fits (finding the distinct colours included),
in one process. It records wall and CPU seconds: on a machine shared with other
work the CPU seconds are the steadier measure (emseg's two threads count twice
in them, so the CPU ratio is the lower one when the cores are free).

``--sklearn-max-iter N`` stops scikit-learn's fit after N iterations (its default
is 100). When that fit has not converged, the default fit runs those same N
iterations from the same start and more after them, so the time measured is a
lower bound of the default fit's, and the speed-up is printed as "≥". For
'full', whose iterations take minutes each on 12 MP, that is the only way the
comparison fits in an afternoon.
"""

import argparse
import json
import sys
import time
import warnings
from pathlib import Path

import numpy as np
from sklearn.exceptions import ConvergenceWarning
from sklearn.mixture import GaussianMixture as SkGaussianMixture

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import photos  # noqa: E402
from timing import cpu_pressure  # noqa: E402

from em import GaussianMixture  # noqa: E402
from em.reference import COVARIANCE_TYPES  # noqa: E402
from segment import image  # noqa: E402

K, SEED, EMSEG_REPEATS = 10, 0, 3


def clocked(function):
    """(wall seconds, CPU seconds of every thread of this process, result) of one call."""
    wall, cpu = time.perf_counter(), time.process_time()
    result = function()
    return time.perf_counter() - wall, time.process_time() - cpu, result


def row(rgb, covariance_type, sklearn_max_iter=100):
    """emseg's distinct-colour fit before and after scikit-learn's all-pixel fit; medians of emseg's."""
    def ours():
        colors, counts, _ = image.distinct_colors(rgb)
        return GaussianMixture(K, covariance_type=covariance_type, random_state=SEED).fit(
            colors, sample_weight=counts)

    X = rgb.reshape(-1, 3).astype(np.float64)
    emseg = [clocked(ours)]
    theirs = clocked(lambda: SkGaussianMixture(K, covariance_type=covariance_type, random_state=SEED,
                                               max_iter=sklearn_max_iter).fit(X))
    emseg += [clocked(ours) for _ in range(EMSEG_REPEATS - 1)]
    wall, cpu = (float(np.median([run[i] for run in emseg])) for i in (0, 1))
    return dict(covariance_type=covariance_type, n_pixels=len(X),
                emseg=dict(wall=wall, cpu=cpu, n_iter=int(emseg[-1][2].n_iter_),
                           lower_bound=float(emseg[-1][2].lower_bound_)),
                sklearn=dict(wall=theirs[0], cpu=theirs[1], n_iter=int(theirs[2].n_iter_), max_iter=sklearn_max_iter,
                             converged=bool(theirs[2].converged_), lower_bound=float(theirs[2].lower_bound_)),
                speedup_wall=theirs[0] / wall, speedup_cpu=theirs[1] / cpu, pressure=cpu_pressure())


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--types", default=",".join(COVARIANCE_TYPES), help="comma-separated covariance types")
    parser.add_argument("--sklearn-max-iter", type=int, default=100,
                        help="stop scikit-learn's fit after this many iterations: a lower bound if it has not converged")
    parser.add_argument("--out", type=Path, default=HERE / "results" / "large_fits.json")
    args = parser.parse_args(argv)
    rgb = photos.read_rgb(photos.benchmark_photos(HERE / "results", ["mosaic12"])["mosaic12"])
    GaussianMixture(3, random_state=SEED).fit(rgb[:40, :40].reshape(-1, 3).astype(np.float64))  # load the kernels
    rows = json.loads(args.out.read_text()) if args.out.exists() else []
    print("| type | emseg distinct colours, wall / CPU | scikit-learn all pixels, wall / CPU | iterations emseg / "
          "scikit-learn | speed-up wall / CPU |\n|---|---|---|---|---|")
    for covariance_type in args.types.split(","):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            r = row(rgb, covariance_type, args.sklearn_max_iter)
        rows = [old for old in rows if old["covariance_type"] != covariance_type] + [r]
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(rows, indent=1))
        e, s = r["emseg"], r["sklearn"]
        at_least = "" if s["converged"] or s["max_iter"] >= 100 else "≥ "
        print(f"| {covariance_type} | {e['wall']:.2f} s / {e['cpu']:.2f} s | {at_least}{s['wall']:.0f} s / "
              f"{at_least}{s['cpu']:.0f} s | {e['n_iter']} / {s['n_iter']}{'' if s['converged'] else ' (stopped)'} | "
              f"**{at_least}{r['speedup_wall']:.0f}× / {at_least}{r['speedup_cpu']:.0f}×** |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
