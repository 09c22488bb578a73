"""Benchmark emseg against scikit-learn: speed, peak memory and scaling, with quality beside every number.

Run from the repository root::

    python benchmarks/run.py            # the full run (about 25 minutes on 2 cores)
    python benchmarks/run.py --quick    # a tiny image and a few repeats: checks the script works

It writes ``results.json`` and ``scaling.png`` to ``--out`` (default
``benchmarks/results``) and the markdown tables to ``--markdown`` (default
``benchmarks/RESULTS.md``), and prints the tables.
"""

import argparse
import datetime
import json
import os
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import cases  # noqa: E402
import photos  # noqa: E402
import report  # noqa: E402
import scaling  # noqa: E402
from timing import cpu_pressure, machine_info, summary  # noqa: E402

TIMED_CASES = list(cases.CASES)
ALL_CASES = TIMED_CASES + ["memory", "startup", "scaling"]
MEMORY_CASES = [("gmm", "emseg", "all"), ("gmm", "emseg", "distinct"), ("gmm", "sklearn", "all"),
                ("kmeans", "emseg", "all"), ("kmeans", "emseg", "distinct"), ("kmeans", "sklearn", "all"),
                ("kmeans", "sklearn", "distinct")]
FULL = dict(images="china,flower,mosaic12", repeats=5, iterations=5,
            pixel_sizes=[100_000, 300_000, 1_000_000, 3_000_000, 12_000_000], ks=[2, 4, 8, 16, 32, 64])
QUICK = dict(images="tiny", repeats=2, iterations=2, pixel_sizes=[5_000, 20_000], ks=[2, 4])
METHOD = [
    "Photos: `china` and `flower` are the JPEG files bundled with scikit-learn (427 × 640); `mosaic12` is a "
    "3 × 3 mosaic of both, alternately mirrored, resized with Lanczos to 4000 × 3000 and saved as JPEG (quality 95). "
    "Every case reads the pixels back from these files. Never random noise.",
    "'all pixels' fits every pixel as float64; 'distinct colours' fits each distinct colour once with its pixel "
    "count as `sample_weight`, which is the same fit (emseg's image pipeline, `segment.image.fit_labels`).",
    "gmm-iter: both libraries start from identical parameters (emseg's k-means start on the distinct colours, passed "
    "to both as weights_init / means_init / precisions_init), tol=0, max_iter = n + 1. The times are the intervals "
    "between the ends of consecutive EM iterations (emseg: its `callback`; scikit-learn: a subclass noting the time "
    "after each `_m_step`), so validation, initialisation and scikit-learn's extra final E-step are not counted.",
    "kmeans-iter: both start from the same centres (weighted k-means++ seeds, shifted off the pixel grid so no "
    "distance ties), tol=0; time per iteration = (time of 1 + n iterations − time of 1) / n.",
    "gmm-fit, kmeans-fit: default parameters, k=10, random_state = r in round r for both libraries; quality is the "
    "median lower bound or inertia over those seeds, the adjusted Rand index (ARI) compares the seed-0 labelings "
    "on every pixel. The distinct-colour runs include the time to find the distinct colours.",
    "predict, sample: models fitted from the same start; sample draws as many pixels as the image has, with the "
    "same random_state, so both draw the same numbers (quality: the largest difference between the draws).",
    "segment: `emseg segment IMAGE -k 10` (cli.main, in process) against the notebook's pipeline with "
    "scikit-learn (Pillow load, fit on every pixel, predict, paint each pixel with its component's mean, save "
    "PNG). ARI of the two label maps.",
    "Repeats: every time is the median [min – max] of n measurements, emseg's and scikit-learn's interleaved round "
    "by round with the order rotated. scikit-learn's slow runs on the 12 MP photo (default GMM fit, segment, "
    "per-iteration fits) run in one round only: scikit-learn needs minutes there. Its per-iteration figure then "
    "still has n iteration intervals from that one fit.",
    "Threads: each library uses its default, all cores: numba's threads for emseg; OpenBLAS and OpenMP for "
    "scikit-learn (see the machine section).",
    "The machine is shared with other work, so absolute times are noisy; the ratios come from runs made side by "
    "side. CPU pressure is recorded above. The test suite checks that this script runs, never a time.",
]


def parse_args(argv):
    parser = argparse.ArgumentParser(prog="benchmarks/run.py", description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true",
                        help="a 20,000-pixel image, 2 repeats, small scaling series, no cold compile: a smoke test")
    parser.add_argument("--cases", default=",".join(ALL_CASES),
                        help=f"comma-separated subset of: {', '.join(ALL_CASES)} (default: all)")
    parser.add_argument("--images", help="comma-separated subset of china, flower, mosaic12, tiny "
                                         "(default: china,flower,mosaic12; with --quick: tiny)")
    parser.add_argument("--repeats", type=int, help="rounds per case (default: 5; with --quick: 2)")
    parser.add_argument("--iterations", type=int, help="EM or Lloyd iterations timed per fit (default: 5; with --quick: 2)")
    parser.add_argument("--out", default=str(HERE / "results"), help="folder for results.json and scaling.png")
    parser.add_argument("--update", action="store_true",
                        help="re-measure only --cases among memory, startup, scaling and replace them in "
                             "OUT/results.json; the rest of the results stay as they were")
    parser.add_argument("--render", action="store_true",
                        help="measure nothing: redraw the plot and rewrite the markdown from OUT/results.json")
    parser.add_argument("--markdown", help="where to write the markdown (default: benchmarks/RESULTS.md, "
                                           "or OUT/RESULTS.md when --out is given)")
    args = parser.parse_args(argv)
    preset = QUICK if args.quick else FULL
    args.images = (args.images or preset["images"]).split(",")
    args.repeats = args.repeats or preset["repeats"]
    args.iterations = args.iterations or preset["iterations"]
    args.cases = args.cases.split(",")
    unknown = set(args.cases) - set(ALL_CASES)
    if unknown:
        parser.error(f"unknown case(s) {', '.join(sorted(unknown))}; choose from {', '.join(ALL_CASES)}")
    if args.update and set(args.cases) - {"memory", "startup", "scaling"}:
        parser.error("--update re-measures only memory, startup and scaling; give --cases among those")
    if args.markdown is None:
        args.markdown = HERE / "RESULTS.md" if Path(args.out) == HERE / "results" else Path(args.out) / "RESULTS.md"
    return args, preset


def say(message):
    print(f"[{datetime.datetime.now():%H:%M:%S}] {message}", file=sys.stderr, flush=True)


def warm_up():
    """Run every emseg code path once on a small image so no later time includes compiling or cache loading.

    Returns the seconds it took (loading the kernels from numba's cache, or compiling them).
    """
    from em import GaussianMixture
    from kmeans import KMeans
    from sklearn.cluster import KMeans as SkKMeans
    from sklearn.mixture import GaussianMixture as SkGaussianMixture

    X = photos.read_rgb(photos.bundled_path("china.jpg"))[:50, :100].reshape(-1, 3).astype(np.float64)
    weights = np.arange(len(X)) % 3 + 1.0
    with cases.quiet():
        start = time.perf_counter()
        gm = GaussianMixture(4, random_state=0).fit(X, sample_weight=weights)
        gm.predict(X), gm.score(X), gm.predict_proba(X), gm.sample(10)
        KMeans(4, random_state=0).fit(X, sample_weight=weights).predict(X)
        seconds = time.perf_counter() - start
        SkGaussianMixture(4, covariance_type="diag", random_state=0).fit(X).predict(X)
        SkKMeans(4, random_state=0).fit(X).predict(X)
    return seconds


def run_child(script, *args, env=None):
    """Run a benchmark script in a fresh Python process; return (its JSON output, wall seconds)."""
    start = time.perf_counter()
    completed = subprocess.run([sys.executable, str(HERE / script), *map(str, args)], capture_output=True,
                               text=True, env=env, check=False)
    seconds = time.perf_counter() - start
    if completed.returncode != 0:
        raise RuntimeError(f"{script} {' '.join(map(str, args))} failed:\n{completed.stderr}")
    return json.loads(completed.stdout.strip().splitlines()[-1]), seconds


def measure_memory(paths, quick):
    """Peak memory of each fit, each in its own process (flower.jpg left out: it has china.jpg's size)."""
    chosen = [("gmm", "emseg", "distinct"), ("gmm", "sklearn", "all")] if quick else MEMORY_CASES
    records = []
    for name, path in ((name, path) for name, path in paths.items() if name != "flower"):
        for model, library, data in chosen:
            say(f"memory: {model} {library} {data} on {name}")
            record, _ = run_child("memory.py", model, library, data, path)
            records.append({**record, "image_name": name})
    return records


def measure_startup(quick):
    """Start-up of a fresh process: with an empty numba cache (compiling) and then with the cache it wrote;
    then whole ``emseg segment`` processes with that cache.

    With --quick only the warm starts are measured, with numba's usual cache.
    """
    if quick:
        record, seconds = run_child("startup.py")
        return {"warm": {**record, "process_seconds": seconds}, "command": time_command(os.environ, 2)}
    results = {}
    with tempfile.TemporaryDirectory() as cache:
        env = {**os.environ, "NUMBA_CACHE_DIR": cache}
        for name in ("cold", "warm"):
            say(f"startup: {name} numba cache")
            record, seconds = run_child("startup.py", env=env)
            results[name] = {**record, "process_seconds": seconds}
        say("startup: the emseg command")
        results["command"] = time_command(env, 5)
    return results


def time_command(env, repeats):
    """Wall seconds of whole ``emseg segment`` processes on a 64 × 64 crop of china.jpg, after one untimed run.

    The untimed run puts the kernels the command uses, and startup.py does not, in numba's cache.
    PYTHONDONTWRITEBYTECODE is dropped, as in profiles/segment_process.py: with it, every process
    compiles emseg's own modules from source again (0.1-0.4 s), which an installed emseg never does.
    """
    env = {name: value for name, value in env.items() if name != "PYTHONDONTWRITEBYTECODE"}
    with tempfile.TemporaryDirectory() as scratch:
        crop = photos.write_jpeg(Path(scratch) / "china_64.jpg", photos.read_rgb(photos.bundled_path("china.jpg"))[:64, :64])
        script = Path(sys.executable).with_name("emseg")
        command = [str(script)] if script.exists() else [sys.executable, "-m", "cli"]
        argv = ["segment", str(crop), "-o", str(Path(scratch) / "out.png"), "--quiet"]
        seconds = []
        for _ in range(repeats + 1):
            start = time.perf_counter()
            subprocess.run(command + argv, env=env, cwd=HERE.parent, check=True, capture_output=True)
            seconds.append(time.perf_counter() - start)
    return dict(command="emseg segment china_64.jpg (64 × 64 pixels, k=10)", seconds=summary(seconds[1:]))


def measure_scaling(paths, preset, settings, out, markdown_path):
    """Time per iteration against pixels (resized mosaic, or the tiny photo) and against k, and the plot."""
    source = "tiny" if "tiny" in paths else "mosaic12"
    base = photos.read_rgb(paths[source]) if source in paths else photos.mosaic()
    say(f"scaling: pixels {preset['pixel_sizes']}")
    pixel_records = scaling.pixel_series(base, preset["pixel_sizes"], settings)
    k_photo = cases.Photo.load(*next(iter(paths.items())))
    say(f"scaling: k {preset['ks']} on {k_photo.name}")
    k_records = scaling.k_series(k_photo, preset["ks"], settings)
    k_image = f"{k_photo.name}, {k_photo.n_pixels:,} pixels"
    plot = scaling.plot(pixel_records, k_records, Path(out) / "scaling.png", k_image)
    return dict(pixels=pixel_records, k=k_records, k_image=k_image,
                pixel_slopes=scaling.slopes(pixel_records, "n_pixels"), k_slopes=scaling.slopes(k_records, "k"),
                plot=None if plot is None else os.path.relpath(plot, Path(markdown_path).parent))


def git_state():
    """The commit measured, and the library files that differ from it (other work in progress)."""
    def git(*args):
        done = subprocess.run(["git", *args], cwd=HERE.parent, capture_output=True, text=True, check=False)
        return done.stdout if done.returncode == 0 else ""

    changed = git("status", "--porcelain", "--", "em", "kmeans", "cli.py")
    return dict(commit=git("rev-parse", "--short", "HEAD").strip() or None,
                uncommitted=[line.split(maxsplit=1)[1] for line in changed.splitlines() if line.strip()])


def save_partial(results, out):
    """Keep what is measured so far in OUT/partial.json, so a long run that fails is not all lost."""
    (Path(out) / "partial.json").write_text(json.dumps(results, indent=1) + "\n")


def render(args):
    """Redraw the plot and rewrite the markdown from a results.json written earlier."""
    results = json.loads((Path(args.out) / "results.json").read_text())
    scaling_results = results.get("scaling")
    if scaling_results:
        plot = scaling.plot(scaling_results["pixels"], scaling_results["k"], Path(args.out) / "scaling.png",
                            scaling_results["k_image"])
        scaling_results["plot"] = None if plot is None else os.path.relpath(plot, Path(args.markdown).parent)
        scaling_results["pixel_slopes"] = scaling.slopes(scaling_results["pixels"], "n_pixels")
        scaling_results["k_slopes"] = scaling.slopes(scaling_results["k"], "k")
    results["method"] = METHOD
    results["targets"] = report.targets(results)
    print(report.write(results, args.out, args.markdown))
    return 0


def main(argv=None):
    args, preset = parse_args(argv)
    if args.render:
        return render(args)
    started = time.perf_counter()
    warnings.simplefilter("ignore", category=UserWarning)  # e.g. threadpoolctl's note about several OpenMP libraries
    settings = cases.Settings(repeats=args.repeats, n_iter=args.iterations)
    Path(args.out).mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as scratch:
        paths = photos.benchmark_photos(scratch, args.images)
        say("warming up")
        command = "python benchmarks/run.py" + (" " + " ".join(argv if argv is not None else sys.argv[1:])).rstrip()
        now = datetime.datetime.now().isoformat(timespec="minutes")
        this_run = dict(date=now, command=command, git=git_state(), warmup_seconds=warm_up(), machine=machine_info())
        if args.update:
            results = json.loads((Path(args.out) / "results.json").read_text())
            results.setdefault("updates", []).append(dict(**this_run, cases=args.cases))
        else:
            results = dict(**this_run, settings=vars(settings), method=METHOD, cases=[],
                           images={name: dict(path=f"sklearn bundled: {path.name}" if name in ("china", "flower") else f"generated: {path.name}")
                                   for name, path in paths.items()})
        for name, path in paths.items():
            photo = cases.Photo.load(name, path)
            results["images"][name].update(n_pixels=photo.n_pixels, n_colors=len(photo.colors))
            for case in (c for c in TIMED_CASES if c in args.cases):
                say(f"{case} on {name} ({photo.n_pixels:,} pixels)")
                function = cases.CASES[case]
                rows = function(photo, settings, scratch) if case == "segment" else function(photo, settings)
                results["cases"] += [{**row, "cpu_pressure": cpu_pressure()} for row in rows]
                save_partial(results, args.out)
            del photo
        if "memory" in args.cases:
            results["memory"] = measure_memory(paths, args.quick)
            save_partial(results, args.out)
        if "startup" in args.cases:
            results["startup"] = measure_startup(args.quick)
            save_partial(results, args.out)
        if "scaling" in args.cases:
            results["scaling"] = measure_scaling(paths, preset, settings, args.out, args.markdown)
    summary = results["updates"][-1] if args.update else results
    summary["machine"]["cpu_pressure_end"] = cpu_pressure()
    summary["total_seconds"] = time.perf_counter() - started
    results["targets"] = report.targets(results)
    print(report.write(results, args.out, args.markdown))
    (Path(args.out) / "partial.json").unlink(missing_ok=True)
    say(f"wrote {Path(args.out) / 'results.json'} and {args.markdown}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
