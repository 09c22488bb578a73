"""Whole `emseg segment` processes of two source trees, interleaved: wall and CPU seconds.

Usage, from anywhere: python segment_process.py OLD_TREE NEW_TREE IMAGE [ROUNDS]
(OLD_TREE from e.g. `git archive <commit> | tar -x -C /tmp/old`). Each tree
gets its own numba cache (NUMBA_CACHE_DIR under /tmp), filled by one untimed
run first. CPU time is the children's user + system time from getrusage, which a
busy machine's waiting does not inflate. PYTHONDONTWRITEBYTECODE is dropped for the
children: with it, as in some sandboxes, each process compiles the trees' own modules
from source again (0.1-0.4 s), which an installed emseg never does.
"""
import os, resource, subprocess, sys, time
import numpy as np

CODE = "import sys; sys.argv[0] = 'emseg'; import cli; sys.exit(cli.run())"


def run_once(tree, image, label):
    env = dict(os.environ, PYTHONPATH=tree, NUMBA_CACHE_DIR=f"/tmp/emseg_cache_{label}")
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    before, start = resource.getrusage(resource.RUSAGE_CHILDREN), time.perf_counter()
    subprocess.run([sys.executable, "-c", CODE, "segment", image, "-o", f"/tmp/emseg_segment_{label}.png", "--quiet"],
                   env=env, check=True, stdout=subprocess.DEVNULL)
    wall, after = time.perf_counter() - start, resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime


trees = {"old": sys.argv[1], "new": sys.argv[2]}
image, rounds = sys.argv[3], int(sys.argv[4]) if len(sys.argv) > 4 else 5
for label, tree in trees.items():
    run_once(tree, image, label)  # fills this tree's cache
times = {label: [] for label in trees}
for _ in range(rounds):
    for label, tree in trees.items():
        times[label].append(run_once(tree, image, label))
for label, rows in times.items():
    wall, cpu = np.array(rows).T
    print(f"{label}: wall {np.median(wall):.2f} s [{wall.min():.2f}-{wall.max():.2f}], "
          f"CPU {np.median(cpu):.2f} s [{cpu.min():.2f}-{cpu.max():.2f}], x{rounds}")
print("load average", os.getloadavg())
