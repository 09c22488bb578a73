"""Timing helpers: interleaved repeats, summaries, and what machine the numbers come from."""

import os
import platform
import time
from pathlib import Path

import numpy as np


def summary(seconds):
    """Median, min and max of a list of times, and how many there are."""
    seconds = np.asarray(seconds, dtype=np.float64)
    return dict(median=float(np.median(seconds)), min=float(seconds.min()), max=float(seconds.max()), n=int(seconds.size))


def timed(function):
    """Call ``function()`` once; return ([seconds], result)."""
    start = time.perf_counter()
    result = function()
    return [time.perf_counter() - start], result


def interleave(runs, repeats):
    """Run each timed function in turn, ``repeats`` rounds, rotating who goes first.

    Parameters
    ----------
    runs : dict of name -> (function, n_rounds)
        ``function(r)`` runs round r and returns (list of seconds, result). It
        runs in the first ``n_rounds`` rounds only (1 for a run too slow to repeat).
    repeats : int
        Number of rounds.

    Returns
    -------
    seconds : dict of name -> list of float
        Every time measured, over all rounds.
    results : dict of name -> list
        What each function returned, one item per round it ran in.
    """
    names = list(runs)
    seconds = {name: [] for name in names}
    results = {name: [] for name in names}
    for r in range(repeats):
        # rotate the order so neither library always runs right after the other
        for name in names[r % len(names):] + names[: r % len(names)]:
            function, n_rounds = runs[name]
            if r < n_rounds:
                times, result = function(r)
                seconds[name].extend(times)
                results[name].append(result)
    return seconds, results


def cpu_pressure():
    """Share of the last 10 s that some task waited for a CPU (Linux PSI), or None where not available."""
    path = Path("/proc/pressure/cpu")
    if not path.exists():
        return None
    fields = dict(item.split("=") for item in path.read_text().split()[1:4])
    return float(fields["avg10"]) / 100.0


def cpu_model():
    """The processor's name from /proc/cpuinfo, else what platform reports."""
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


def machine_info():
    """Processor, cores, memory, threads, BLAS and library versions, as a JSON-ready dict."""
    import numba
    import numpy
    import PIL
    import sklearn
    import threadpoolctl

    memory_gib = None
    if Path("/proc/meminfo").exists():
        memory_gib = int(Path("/proc/meminfo").read_text().split()[1]) / 2**20
    flags = Path("/proc/cpuinfo").read_text() if Path("/proc/cpuinfo").exists() else ""
    return dict(
        cpu=cpu_model(),
        logical_cpus=os.cpu_count(),
        simd=[flag for flag in ("avx2", "avx512f", "fma") if f" {flag}" in flags],
        memory_gib=round(memory_gib, 1) if memory_gib else None,
        platform=platform.platform(),
        python=platform.python_version(),
        versions=dict(numpy=numpy.__version__, numba=numba.__version__, scikit_learn=sklearn.__version__,
                      pillow=PIL.__version__, threadpoolctl=threadpoolctl.__version__),
        numba_threads=numba.get_num_threads(),
        numba_threading_layer=numba.threading_layer(),
        threadpools=[
            {key: pool.get(key) for key in ("user_api", "internal_api", "num_threads", "version", "architecture", "prefix")}
            for pool in threadpoolctl.threadpool_info()
        ],
        environment={name: os.environ[name] for name in sorted(os.environ)
                     if name.startswith(("OPENBLAS", "OMP_", "MKL_", "NUMBA_"))},
        load_average=list(os.getloadavg()),
        cpu_pressure=cpu_pressure(),
    )
