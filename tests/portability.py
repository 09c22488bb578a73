"""Rerun the exactness tests under other kernels: the portability matrix of `make exactness`.

CI machines differ in CPU, SIMD width, BLAS kernels and core count. The
exactness tests (``pytest -m exactness``: every comparison with scikit-learn,
scipy or the reference engine) must pass on all of them, so this script
reruns them once per configuration below, on this machine:

- OpenBLAS with its Haswell kernels (AVX2, FMA), two threads everywhere;
- OpenBLAS with its Nehalem kernels (SSE4.2, no AVX), one thread everywhere;
- NumPy limited to its baseline: every SIMD dispatch target disabled
  (on x86-64 with NumPy 2.4, X86_V3, X86_V4 and the AVX-512 groups);
- numba compiled for a generic CPU (no AVX, no FMA), with its own cache in a
  temporary folder so it neither reuses nor pollutes the host-compiled one.

Each run writes a report of the kernels it really used (threadpoolctl's
OpenBLAS architecture and thread counts, NumPy's enabled CPU features,
numba's target CPU; see ``pytest_sessionfinish`` in conftest.py), and the
configuration fails if its setting did not take effect. One line is printed
per configuration; the exit status is 1 if any failed.

Every exactness test runs in every configuration: about 23 s each here with a
warm numba cache on a quiet machine, 40 s for the generic CPU's cold compile.
(Leaving out scikit-learn's estimator checks and the flower.jpg copies of the
photo comparisons would save only 6 s of those 23.)

Usage: .venv/bin/python tests/portability.py [extra pytest arguments]
"""

import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SELECTION = ["-m", "exactness"]
THREAD_VARIABLES = ("NUMBA_NUM_THREADS", "OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS")
# One run may compile every kernel cold (the generic-CPU configuration) on a busy machine.
TIMEOUT_SECONDS = 900

def numpy_dispatch_targets():
    """NumPy's SIMD dispatch targets this CPU supports: disabling them all leaves NumPy's baseline."""
    try:
        from numpy._core import _multiarray_umath as umath
    except ImportError:  # NumPy 1.x
        from numpy.core import _multiarray_umath as umath
    return [name for name in umath.__cpu_dispatch__ if umath.__cpu_features__.get(name)]


def threads(n):
    return {name: str(n) for name in THREAD_VARIABLES}


def configurations(numba_cache):
    """(name, environment changes, check of the kernels report) for each run, or (name, None, reason) to skip."""
    def openblas_is(coretype):
        def check(report):
            pools = [p for p in report["threadpools"] if p["internal_api"] == "openblas"]
            wrong = [p for p in pools if (p["architecture"] or "").lower() != coretype.lower()]
            return None if pools and not wrong else f"OPENBLAS_CORETYPE={coretype} not in effect: {pools}"
        return check

    def numpy_without(targets):
        def check(report):
            left = sorted(set(targets) & set(report["numpy_features"]))
            return f"NumPy still dispatches to {left}" if left else None
        return check

    def numba_generic(report):
        return None if report["numba_cpu"] == "generic" else f"numba compiled for {report['numba_cpu']}"

    yield "openblas-haswell-2-threads", dict(OPENBLAS_CORETYPE="Haswell", **threads(2)), openblas_is("Haswell")
    yield "openblas-nehalem-1-thread", dict(OPENBLAS_CORETYPE="Nehalem", **threads(1)), openblas_is("Nehalem")
    targets = numpy_dispatch_targets()
    if targets:
        yield "numpy-baseline-simd", dict(NPY_DISABLE_CPU_FEATURES=" ".join(targets)), numpy_without(targets)
    else:
        yield "numpy-baseline-simd", None, "NumPy has no SIMD dispatch target this CPU supports; nothing to disable"
    yield "numba-generic-cpu", dict(NUMBA_CPU_NAME="generic", NUMBA_CACHE_DIR=numba_cache), numba_generic


def describe(report):
    """What the run used, in one short phrase."""
    blas = sorted({f"{p['architecture']} x{p['num_threads']}" for p in report["threadpools"]
                   if p["internal_api"] == "openblas"})
    return f"OpenBLAS {', '.join(blas)}; numba {report['numba_cpu']} x{report['numba_threads']}"


def run(name, changes, check, extra_args):
    with tempfile.TemporaryDirectory(prefix="emseg-kernels-") as folder:
        report_path = Path(folder) / "kernels.json"
        env = {key: value for key, value in os.environ.items() if key not in THREAD_VARIABLES}
        env.update(changes, EMSEG_KERNELS_REPORT=str(report_path))
        start = time.perf_counter()
        try:
            completed = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *SELECTION,
                                        *extra_args], cwd=ROOT, env=env, capture_output=True, text=True,
                                       timeout=TIMEOUT_SECONDS)
        except subprocess.TimeoutExpired:
            return False, f"{name:28} TIMEOUT after {TIMEOUT_SECONDS} s", ""
        seconds = time.perf_counter() - start
        summary = completed.stdout.strip().splitlines()[-1] if completed.stdout.strip() else "no output"
        report = json.loads(report_path.read_text()) if report_path.exists() else None
    problems = ["no kernels report"] if report is None else [check(report)]
    problems = [problem for problem in problems if problem]
    passed = completed.returncode == 0 and not problems
    status = "passed" if passed else "FAILED"
    used = describe(report) if report else "?"
    line = f"{name:28} {status} {seconds:6.1f} s  [{used}]  {summary}"
    if problems:
        line += f"  ({'; '.join(problems)})"
    return passed, line, "" if passed else completed.stdout[-6000:] + completed.stderr[-3000:]


def main(extra_args):
    print(f"exactness matrix on {platform.machine()}, {os.cpu_count()} CPUs: pytest {' '.join(SELECTION)}",
          flush=True)
    numba_cache = tempfile.mkdtemp(prefix="emseg-numba-generic-")
    failures = []
    try:
        for name, changes, check in configurations(numba_cache):
            if changes is None:
                print(f"{name:28} skipped  ({check})", flush=True)
                continue
            passed, line, output = run(name, changes, check, extra_args)
            print(line, flush=True)
            if not passed:
                failures.append((name, output))
    finally:
        shutil.rmtree(numba_cache, ignore_errors=True)
    for name, output in failures:
        print(f"\n---------------- {name} ----------------\n{output}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
