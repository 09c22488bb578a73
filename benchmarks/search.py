"""The two searches over k, each against its version without the reuse, side by side in one process.

1. `emseg segment china.jpg -k auto --covariance auto` (k = 2..16, four
   covariance types; issue target under 3 s), timed as the command runs it
   (in this process, decoding to written file), and `em.select_model` alone on
   china's distinct colours: warm starts (the default) against
   ``warm_start=False``, every fit from its own k-means start.
2. `quality.smallest_k`, mean ΔE00 target 5, on the 12 MP mosaic (issue target
   under 5 s), timed from the decoded picture (distinct colours, conversions
   and every fit): the default search on a sample of ``quality.SEARCH_SAMPLE``
   pixels, verified on every colour, against the exact search, every step on
   every colour (``sample`` above the number of colours: the search before
   the sample was added).

Each pair runs interleaved, round by round, after a warm-up that compiles
every kernel (its time is reported apart); the tables give medians.

    .venv/bin/python benchmarks/search.py [--repeats 3] [--quick] [--out benchmarks/results]

writes search.json and search.md there. --quick runs each case once on the tiny photo.
"""

import argparse
import contextlib
import io
import json
import os
import statistics
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numba
from sklearn.exceptions import ConvergenceWarning

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "benchmarks")]

import cli  # noqa: E402
from em import select_model  # noqa: E402
from em.reference import COVARIANCE_TYPES  # noqa: E402
from photos import benchmark_photos  # noqa: E402
from segment import image, quality  # noqa: E402
from timing import interleave  # noqa: E402

SEED = 0
K_RANGE = range(2, 17)
TARGET = 5.0
SEARCH_SETTINGS = [("kmeans", "lab"), ("kmeans", "oklab"), ("gmm", "lab")]
EXACT = 1 << 62  # a sample larger than any picture: the search runs on every colour


def run_command(path, out):
    """`emseg segment PATH -k auto --covariance auto` in this process, its table kept off the terminal."""
    start = time.perf_counter()
    with contextlib.redirect_stdout(io.StringIO()):
        code = cli.main(["segment", str(path), "-k", "auto", "--covariance", "auto", "--quiet", "-o", str(out)])
    assert code == 0
    return [time.perf_counter() - start], None


def run_selection(colors, counts, warm_start):
    start = time.perf_counter()
    table, best = select_model(colors, K_RANGE, COVARIANCE_TYPES, sample_weight=counts, random_state=SEED,
                               warm_start=warm_start)
    seconds = time.perf_counter() - start
    return [seconds], dict(best=f"{best.covariance_type} k={best.n_components}", bic=min(row["bic"] for row in table),
                           n_iter=sum(row["n_iter"] for row in table))


def run_search(rgb, method, space, sample):
    picture = image.Picture(rgb)  # distinct colours and conversions timed too
    start = time.perf_counter()
    found = quality.smallest_k(picture, method, TARGET, 64, space, sample=sample, random_state=SEED)
    seconds = time.perf_counter() - start
    return [seconds], dict(k=found.k, delta_e=found.quality.delta_e2000_mean, tried=list(found.tried),
                           verified=list(found.verified))


def warm_up(paths, names):
    """Compile every kernel the timed runs use (the table-counting colour path too), on small inputs."""
    start = time.perf_counter()
    small = image.thumbnail(image.load(paths[names[0]]), 48)
    colors, counts = small.in_space("rgb"), small.distinct[1]
    for warm_start in (True, False):
        select_model(colors, [2, 3], COVARIANCE_TYPES, sample_weight=counts, random_state=SEED, warm_start=warm_start)
    for method, space in SEARCH_SETTINGS:
        quality.smallest_k(small, method, 100.0, 2, space, sample=64, random_state=SEED)
    image.Picture(image.load(paths[names[-1]]).rgb).distinct  # noqa: B018 (counting by table, above 2 MP)
    return time.perf_counter() - start


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="each case once, on the tiny photo")
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results"))
    args = parser.parse_args(argv)
    repeats = 1 if args.quick else args.repeats
    names = ["tiny"] if args.quick else ["china", "mosaic12"]
    folder = tempfile.mkdtemp(prefix="emseg-search-")
    paths = benchmark_photos(folder, names)
    warnings.simplefilter("ignore", ConvergenceWarning)
    load_before = os.getloadavg()
    compile_seconds = warm_up(paths, names)
    print(f"numba threads {numba.get_num_threads()}, seed {SEED}, warm-up (compilation) {compile_seconds:.1f} s, "
          f"load average {load_before}", flush=True)

    picture = image.load(paths[names[0]])
    colors, counts = picture.in_space("rgb"), picture.distinct[1]
    runs = {"command": (lambda r: run_command(paths[names[0]], Path(folder) / "auto.png"), repeats),
            "warm": (lambda r: run_selection(colors, counts, True), repeats),
            "independent": (lambda r: run_selection(colors, counts, False), repeats)}
    seconds, results = interleave(runs, repeats)
    selection = {name: dict(seconds=seconds[name], median=statistics.median(seconds[name]), **results[name][0])
                 for name in runs if name != "command"}
    selection["command"] = dict(seconds=seconds["command"], median=statistics.median(seconds["command"]))
    print(json.dumps(selection), flush=True)

    rgb = image.load(paths[names[-1]]).rgb
    searches = []
    for method, space in SEARCH_SETTINGS:
        runs = {"sampled": (lambda r: run_search(rgb, method, space, quality.SEARCH_SAMPLE), repeats),
                "exact": (lambda r: run_search(rgb, method, space, EXACT), repeats)}
        seconds, results = interleave(runs, repeats)
        row = dict(method=method, space=space, **{name: dict(seconds=seconds[name], median=statistics.median(seconds[name]),
                                                           **results[name][0]) for name in runs})
        searches.append(row)
        print(json.dumps(row), flush=True)
    report = dict(threads=numba.get_num_threads(), seed=SEED, compile_seconds=compile_seconds, photos=names,
                  load_average_before=load_before, load_average_after=os.getloadavg(), selection=selection,
                  searches=searches)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "search.json").write_text(json.dumps(report, indent=1) + "\n")
    (out / "search.md").write_text(markdown(report))
    print(markdown(report))


def markdown(report):
    s = report["selection"]
    lines = [f"numba threads {report['threads']}, seed {report['seed']}, compilation (warm-up) "
             f"{report['compile_seconds']:.1f} s excluded, load average {report['load_average_before'][0]:.1f} before, "
             f"{report['load_average_after'][0]:.1f} after, on 2 cores", "",
             f"| {report['photos'][0]}: k = 2..16, four covariance types | median s | runs | best | EM iterations |",
             "|---|---|---|---|---|",
             f"| `emseg segment -k auto --covariance auto` (warm starts) | {s['command']['median']:.2f} | "
             f"{len(s['command']['seconds'])} | | |"]
    for name, label in (("warm", "select_model, warm starts"), ("independent", "select_model, warm_start=False")):
        lines.append(f"| {label} | {s[name]['median']:.2f} | {len(s[name]['seconds'])} | {s[name]['best']} | "
                     f"{s[name]['n_iter']} |")
    lines += ["", f"| {report['photos'][-1]}: mean ΔE00 ≤ {TARGET:g} | search | median s | runs | k | mean ΔE00 | "
              "k searched | k verified |", "|---|---|---|---|---|---|---|---|"]
    for row in report["searches"]:
        for name in ("sampled", "exact"):
            r = row[name]
            lines.append(f"| {row['method']} {row['space']} | {name} | {r['median']:.2f} | {len(r['seconds'])} | {r['k']} | "
                         f"{r['delta_e']:.3f} | {', '.join(map(str, r['tried']))} | {', '.join(map(str, r['verified']))} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
