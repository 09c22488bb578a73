"""Spatial smoothing (--smooth): time per iteration and peak memory against the plain fit, on china.jpg and 12 MP.

    python benchmarks/bench_smooth.py [--photos china mosaic12] [-k 10] [--beta 1] [--repeats 3]

For each photo, in one process and interleaved repeat by repeat:

- the plain fit: ``GaussianMixture(k, random_state=0)`` on the distinct colours
  (what ``emseg segment`` does), its time and time per iteration; and one
  plain EM iteration on *every* pixel (``_kernels.e_step_stats``), the
  per-pixel work a smoothed iteration is to be compared with;
- the smoothed fit: the same plain fit, then mean-field EM on the pixel grid
  (`segment.smooth.refine`, β and 4 neighbours), its time and time per grid
  iteration; and ICM for k-means, time per sweep.

Medians of ``--repeats`` runs; numba's compile (or cache load) time is taken
on a 64 x 64 crop first and reported on its own. Peak memory is measured in a
fresh process per case (``--memory``), above the baseline after loading the
image, as ``memory.py`` does (VmHWM after clear_refs).
"""

import argparse
import json
import statistics
import subprocess
import sys
import time
import warnings
from pathlib import Path

import numba
import numpy as np
from sklearn.exceptions import ConvergenceWarning

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from memory import _reset_peak, _status_mib  # noqa: E402
from photos import benchmark_photos, read_rgb  # noqa: E402

from em import GaussianMixture, _kernels  # noqa: E402
from kmeans import KMeans  # noqa: E402
from segment import image, smooth  # noqa: E402

SEED = 0


def smoothed_fit(picture, method, k, beta):
    """The plain fit on the distinct colours, then the refinement on the grid; (model, labels)."""
    model = GaussianMixture(k, random_state=SEED) if method == "gmm" else KMeans(k, random_state=SEED)
    color_labels = image.fit_color_labels(model, picture)
    return model, smooth.refine(model, picture, color_labels, beta=beta, neighbours=4)[0]


def run_once(rgb, k, beta):
    """One interleaved round: plain fit, one plain iteration on every pixel, smoothed gmm, smoothed kmeans."""
    row = {}
    picture = image.Picture(rgb)
    start = time.perf_counter()
    plain = GaussianMixture(k, random_state=SEED)
    image.fit_color_labels(plain, picture)
    row["plain_fit_s"] = time.perf_counter() - start
    row["plain_n_iter"] = plain.n_iter_
    pixels = picture.distinct[0][picture.distinct[2]]
    weights = np.ones(len(pixels))
    start = time.perf_counter()
    _kernels.e_step_stats(pixels, weights, plain.means_, plain.precisions_, np.log(plain.weights_))
    row["plain_iter_all_pixels_s"] = time.perf_counter() - start
    del pixels, weights
    for method in ("gmm", "kmeans"):
        picture = image.Picture(rgb)  # distinct colours counted again, as a fresh command would
        ticks = [time.perf_counter()]
        model = GaussianMixture(k, random_state=SEED) if method == "gmm" else KMeans(k, random_state=SEED)
        color_labels = image.fit_color_labels(model, picture)
        ticks.append(time.perf_counter())
        counter = []
        smooth.refine(model, picture, color_labels, beta=beta, neighbours=4,
                      callback=lambda n_iter, objective: counter.append(objective))
        ticks.append(time.perf_counter())
        row[f"{method}_smoothed_total_s"] = ticks[2] - ticks[0]
        row[f"{method}_grid_s"] = ticks[2] - ticks[1]
        row[f"{method}_grid_n_iter"] = len(counter)
        row[f"{method}_grid_iter_s"] = (ticks[2] - ticks[1]) / max(len(counter), 1)
    return row


def memory(path, method, k, beta):
    """Peak resident memory (MiB) of the plain (beta 0) or smoothed segmentation, above the loaded image."""
    rgb = read_rgb(path)
    smoothed_fit(image.Picture(np.ascontiguousarray(rgb[:64, :64])), method, k, beta)  # loads the kernels
    baseline = _status_mib("VmRSS")
    _reset_peak()
    start = time.perf_counter()
    smoothed_fit(image.Picture(rgb), method, k, beta)
    seconds = time.perf_counter() - start
    return dict(peak_mib=_status_mib("VmHWM") - baseline, seconds=seconds)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--photos", nargs="+", default=["china", "mosaic12"])
    parser.add_argument("-k", type=int, default=10)
    parser.add_argument("--beta", type=float, default=1.0)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--folder", default="/tmp")
    parser.add_argument("--memory", nargs=3, metavar=("IMAGE", "METHOD", "BETA"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    warnings.simplefilter("ignore", ConvergenceWarning)
    if args.memory:
        path, method, beta = args.memory
        print(json.dumps(memory(path, method, args.k, float(beta))))
        return 0
    paths = benchmark_photos(args.folder, args.photos)
    start = time.perf_counter()
    crop = np.ascontiguousarray(read_rgb(paths[args.photos[0]])[:64, :64])
    run_once(crop, args.k, args.beta)
    print(f"numba compile or cache load (64 x 64 crop, both methods): {time.perf_counter() - start:.2f} s")
    print(f"threads {numba.get_num_threads()}, k={args.k}, beta={args.beta}, 4 neighbours, seed {SEED}, "
          f"medians of {args.repeats}")
    for name, path in paths.items():
        rgb = read_rgb(path)
        rows = [run_once(rgb, args.k, args.beta) for _ in range(args.repeats)]
        median = {key: statistics.median(row[key] for row in rows) for key in rows[0]}
        print(f"\n{name}: {rgb.shape[1]} x {rgb.shape[0]} = {rgb.shape[0] * rgb.shape[1]:,} pixels")
        for key, value in median.items():
            print(f"  {key:<28} {value:10.3f}")
        print(f"  smoothed gmm iteration / plain iteration on every pixel: "
              f"{median['gmm_grid_iter_s'] / median['plain_iter_all_pixels_s']:.2f}x")
        for method, beta in (("gmm", 0.0), ("gmm", args.beta), ("kmeans", 0.0), ("kmeans", args.beta)):
            result = subprocess.run([sys.executable, __file__, "-k", str(args.k), "--memory", str(path), method, str(beta)],
                                    capture_output=True, text=True, check=True)
            measured = json.loads(result.stdout)
            print(f"  peak memory {method}, beta {beta:g}: {measured['peak_mib']:8.0f} MiB "
                  f"({measured['seconds']:.2f} s in that process)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
