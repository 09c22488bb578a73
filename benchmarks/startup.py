"""How long a fresh process takes to import emseg and make its first fits.

Run by ``run.py`` twice with the same ``NUMBA_CACHE_DIR``: the first time
the cache is empty and numba compiles every kernel; the second time the
compiled kernels are loaded from the on-disk cache, which is what every
later ``emseg`` command sees. Prints one JSON line of seconds.
"""

import time

START = time.perf_counter()

import json  # noqa: E402
import sys  # noqa: E402
import warnings  # noqa: E402

import numpy as np  # noqa: E402


def main():
    from em import GaussianMixture  # noqa: F401 (timed: the import loads numba and scikit-learn)
    from kmeans import KMeans

    imported = time.perf_counter()
    rng = np.random.default_rng(0)
    X = rng.integers(0, 256, size=(5000, 3)).astype(np.float64)  # any pixels will do: only the types matter
    weights = rng.integers(1, 10, size=5000).astype(np.float64)
    times = []
    warnings.simplefilter("ignore")  # five iterations do not converge, on purpose
    for _ in range(2):
        start = time.perf_counter()
        gm = GaussianMixture(10, random_state=0, max_iter=5).fit(X, sample_weight=weights)
        gm.predict(X), gm.score(X)
        km = KMeans(10, random_state=0, max_iter=5).fit(X, sample_weight=weights)
        km.predict(X)
        times.append(time.perf_counter() - start)
    print(json.dumps(dict(import_seconds=imported - START, first_call_seconds=times[0],
                          second_call_seconds=times[1], ready_seconds=imported - START + times[0])))
    return 0


if __name__ == "__main__":
    sys.exit(main())
