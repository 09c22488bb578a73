"""`-k auto --covariance auto` on china.jpg: the model search, and the whole command, in each thread set-up.

Run from the repository root::

    python benchmarks/selection.py            # 3 rounds, the set-ups interleaved
    python benchmarks/selection.py --rounds 5

Issue 14's target: ``emseg segment china.jpg -k auto --covariance auto`` (k = 2..16,
the four covariance types) under 3 s. Each round runs, each in a fresh process
so that the OpenMP runtime reads its environment anew:

- ``select_model`` on china.jpg's distinct colours, the types one after another
  (``n_jobs=1``, every kernel on both numba threads) and at the same time
  (``n_jobs=2``, one thread each), with GNU OpenMP's threads spinning between kernels
  (its default, ``OMP_WAIT_POLICY=ACTIVE``) and asleep (``PASSIVE``, what
  ``emseg`` sets); wall and CPU seconds;
- the whole ``emseg segment`` command (which sets ``PASSIVE`` itself), wall seconds.

The rows of every set-up are checked to be the same. Medians, and the CPU
pressure the machine was under (Linux PSI).
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import photos  # noqa: E402
from timing import cpu_pressure  # noqa: E402

SETUPS = [(n_jobs, policy) for n_jobs in (1, 2) for policy in ("ACTIVE", "PASSIVE")]


def child(n_jobs):
    """One search in this process; prints JSON: wall and CPU seconds, and a digest of the table."""
    import warnings

    from em import select_model
    from segment import image

    colors, counts, _ = image.distinct_colors(photos.read_rgb(photos.bundled_path("china.jpg")))
    X = colors.astype(np.float64)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        select_model(X[:2000], [2, 3], ("full", "tied", "diag", "spherical"), sample_weight=counts[:2000],
                     random_state=0)  # kernels loaded from numba's cache, threads launched
        wall, cpu = time.perf_counter(), time.process_time()
        table, best = select_model(X, range(2, 17), ("full", "tied", "diag", "spherical"), sample_weight=counts,
                                   random_state=0, n_jobs=n_jobs)
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    print(json.dumps(dict(wall=wall, cpu=cpu, table=repr(table), best=[best.covariance_type, best.n_components])))


def run(n_jobs, policy):
    env = dict(os.environ, OMP_WAIT_POLICY=policy)
    completed = subprocess.run([sys.executable, __file__, "--child", str(n_jobs)], env=env, check=True,
                               capture_output=True, text=True)
    return json.loads(completed.stdout.splitlines()[-1])


def command(output):
    start = time.perf_counter()
    subprocess.run([str(Path(sys.executable).parent / "emseg"), "segment", str(photos.bundled_path("china.jpg")),
                    "-k", "auto", "--covariance", "auto", "-o", str(output)], check=True, capture_output=True)
    return time.perf_counter() - start


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--child", type=int, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child is not None:
        return child(args.child)
    results = {setup: [] for setup in SETUPS}
    commands, pressures = [], []
    with tempfile.TemporaryDirectory() as folder:
        for r in range(args.rounds):
            for setup in SETUPS[r % len(SETUPS):] + SETUPS[:r % len(SETUPS)]:  # who goes first rotates
                results[setup].append(run(*setup))
            commands.append(command(Path(folder) / "auto.png"))
            pressures.append(cpu_pressure())
    tables = {record["table"] for records in results.values() for record in records}
    assert len(tables) == 1, "the set-ups gave different tables"
    print(f"rounds: {args.rounds}; CPU pressure: {pressures}; best: {results[SETUPS[0]][0]['best']}")
    print("| types | OpenMP threads between kernels | select_model wall | CPU |\n|---|---|---|---|")
    for (n_jobs, policy), records in results.items():
        print(f"| {'one after another' if n_jobs == 1 else 'at the same time'} | "
              f"{'spin' if policy == 'ACTIVE' else 'sleep'} | {np.median([r['wall'] for r in records]):.2f} s | "
              f"{np.median([r['cpu'] for r in records]):.2f} s |")
    print(f"\nemseg segment china.jpg -k auto --covariance auto, whole process: median {np.median(commands):.2f} s "
          f"(min {min(commands):.2f} s, max {max(commands):.2f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
