"""Peak memory of one fit, measured in a fresh process.

Run by ``run.py`` once per case, as::

    python benchmarks/memory.py {gmm,kmeans} {emseg,sklearn} {all,distinct} IMAGE [-k 10] [--covariance diag]

The process loads the image, warms both libraries up on a small crop, notes
its resident memory (the baseline), then builds the fit's input from the
pixels (float64 pixels, or the distinct colours and their counts) and fits.
It prints one JSON line: the peak resident memory minus the baseline, and the
raw numbers.

Why the peak is read from ``VmHWM``: ``resource.getrusage(RUSAGE_SELF).ru_maxrss``
is the larger of this process's own peak and the peak of the process it was
started from (Linux carries that over through ``exec`` when the parent starts
the child with ``vfork``, as Python's ``subprocess`` does). A 10 MB child of a
1.2 GB parent reports 1.2 GB. ``VmHWM`` in ``/proc/self/status`` is the
process's own peak, the number ``ru_maxrss`` gives when nothing is carried
over; it is also reset to the baseline before the fit (``/proc/self/clear_refs``),
so a spike while loading the image cannot count as the fit's.
"""

import argparse
import gc
import json
import resource
import sys
import time
import warnings
from pathlib import Path

import numpy as np
from sklearn.cluster import KMeans as SkKMeans
from sklearn.exceptions import ConvergenceWarning
from sklearn.mixture import GaussianMixture as SkGaussianMixture

from em import GaussianMixture
from kmeans import KMeans
from segment import image

SEED = 0
MIB = 2**20


def estimator(model, library, k, covariance_type="diag"):
    """A default-parameter estimator of either library (the mixture's covariance type named)."""
    if model == "gmm":
        if library == "emseg":
            return GaussianMixture(k, covariance_type=covariance_type, random_state=SEED)
        return SkGaussianMixture(k, covariance_type=covariance_type, random_state=SEED)
    return (KMeans if library == "emseg" else SkKMeans)(k, random_state=SEED)


def fit(model, library, data, k, rgb, covariance_type="diag"):
    """Build the input from the pixels and fit; return what must stay alive (model, inverse index)."""
    if data == "all":
        return estimator(model, library, k, covariance_type).fit(rgb.reshape(-1, 3).astype(np.float64)), None
    colors, counts, inverse = image.distinct_colors(rgb)  # the inverse stays alive, as in the pipeline
    return estimator(model, library, k, covariance_type).fit(colors, sample_weight=counts), inverse


def _status_mib(key):
    """A memory line of /proc/self/status in MiB, or None off Linux."""
    status = Path("/proc/self/status")
    if not status.exists():
        return None
    for line in status.read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1]) * 1024 / MIB
    return None


def _reset_peak():
    """Set this process's peak resident memory to its current value; False where the kernel does not allow it."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
        return True
    except OSError:
        return False


def measure(model, library, data, path, k, covariance_type="diag"):
    """Peak memory of one fit above the baseline after loading the image, in MiB, and the fit's time."""
    rgb = image.load(path).rgb
    crop = np.ascontiguousarray(rgb[:64, :64])
    fit(model, library, data, k, crop, covariance_type)  # loads the compiled kernels and the libraries' lazy parts
    gc.collect()
    baseline = _status_mib("VmRSS")
    reset = _reset_peak()
    start = time.perf_counter()
    fitted, _ = fit(model, library, data, k, rgb, covariance_type)
    seconds = time.perf_counter() - start
    ru_maxrss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 / MIB  # kB on Linux
    peak = _status_mib("VmHWM") if reset else ru_maxrss
    objective = fitted.lower_bound_ if model == "gmm" else fitted.inertia_
    return dict(model=model, library=library, data=data, image=Path(path).name, k=k, covariance_type=covariance_type,
                n_pixels=int(rgb.shape[0] * rgb.shape[1]),
                peak_mib=peak - baseline, baseline_mib=baseline, peak_rss_mib=peak, ru_maxrss_mib=ru_maxrss,
                peak_reset=reset, seconds=seconds, n_iter=int(fitted.n_iter_), objective=float(objective))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("model", choices=("gmm", "kmeans"))
    parser.add_argument("library", choices=("emseg", "sklearn"))
    parser.add_argument("data", choices=("all", "distinct"))
    parser.add_argument("image")
    parser.add_argument("-k", type=int, default=10)
    parser.add_argument("--covariance", choices=("diag", "full", "tied", "spherical"), default="diag",
                        help="the mixture's covariance type (default: diag)")
    args = parser.parse_args(argv)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        print(json.dumps(measure(args.model, args.library, args.data, args.image, args.k,
                                         args.covariance)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
