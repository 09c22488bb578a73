"""Colour quality at equal k: emseg (GMM and k-means in RGB, L*a*b* and Oklab) against Pillow's quantizers and scikit-learn.

For each photo (china.jpg, flower.jpg, the 12-megapixel mosaic) and each k
(8, 16, 64) every method paints the photo with k colours, without dithering,
and is scored on every pixel against the original: PSNR and mean / 95th
percentile CIEDE2000 ΔE (segment/quality.py), with the time it took. Then the
`--quality` search on the mosaic: the smallest k reaching a mean ΔE00 target,
timed from the decoded picture (distinct colours, conversions and every fit
included), median of the repeats.

    .venv/bin/python benchmarks/quality.py [--quick] [--out benchmarks/results]

writes quality.json and quality.md there. --quick runs the tiny photo at k=8.
"""

import argparse
import json
import statistics
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numba
import numpy as np
from PIL import Image, features
from sklearn.cluster import KMeans as SkKMeans
from sklearn.exceptions import ConvergenceWarning

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "benchmarks")]

from photos import benchmark_photos  # noqa: E402
from segment import colour, image, models, quality  # noqa: E402

SEED = 0
PILLOW_METHODS = {"median cut": Image.Quantize.MEDIANCUT, "max coverage": Image.Quantize.MAXCOVERAGE,
                  "fast octree": Image.Quantize.FASTOCTREE}
if features.check("libimagequant"):
    PILLOW_METHODS["libimagequant"] = Image.Quantize.LIBIMAGEQUANT


def labels_image(picture, pixel_labels):
    labels = np.full(picture.rgb.shape[:2], -1, dtype=np.int64)
    labels[picture.mask] = pixel_labels
    return labels


def run_emseg(picture, method, space, k):
    fresh = image.Picture(picture.rgb)  # conversions timed too
    start = time.perf_counter()
    model = models.make_model(method, k, random_state=SEED)
    color_labels = image.fit_color_labels(model, fresh, space)
    palette = image.model_colors(model, space)
    seconds = time.perf_counter() - start
    return quality.measure_colors(fresh, color_labels, palette), seconds


def run_pillow(picture, method, k):
    start = time.perf_counter()
    quantized = Image.fromarray(picture.rgb).quantize(colors=k, method=method, dither=Image.Dither.NONE)
    seconds = time.perf_counter() - start
    palette = np.array(quantized.getpalette()[: 3 * 256], dtype=np.uint8).reshape(-1, 3)
    return quality.measure_pixels(picture, np.asarray(quantized).astype(np.int64), palette), seconds


def run_sklearn(picture, k):
    pixels = picture.rgb.reshape(-1, 3).astype(np.float64)
    start = time.perf_counter()
    model = SkKMeans(k, random_state=SEED).fit(pixels)
    seconds = time.perf_counter() - start
    palette = colour.from_space(model.cluster_centers_, "rgb")
    return quality.measure_pixels(picture, labels_image(picture, model.labels_), palette), seconds


def quality_table(paths, ks):
    rows = []
    for name, path in paths.items():
        picture = image.load(path)
        for k in ks:
            def add(library, setting, result):
                measured, seconds = result
                rows.append(dict(photo=name, k=k, library=library, setting=setting, seconds=seconds, **measured.as_dict()))
                print(f"{name:<9} k={k:<3} {library:<8} {setting:<15} {seconds:>8.2f} s  {measured.line()}", flush=True)

            for method in ("gmm", "kmeans"):
                for space in colour.SPACES:
                    add("emseg", f"{method} {space}", run_emseg(picture, method, space, k))
            for label, method in PILLOW_METHODS.items():
                add("Pillow", label, run_pillow(picture, method, k))
            add("sklearn", "KMeans rgb", run_sklearn(picture, k))
    return rows


def search_times(path, settings, repeats):
    picture = image.load(path)
    results = []
    for method, space, target in settings:
        times = []
        for _ in range(repeats):
            fresh = image.Picture(picture.rgb)
            start = time.perf_counter()
            found = quality.smallest_k(fresh, method, target, 64, space, random_state=SEED)
            times.append(time.perf_counter() - start)
        results.append(dict(method=method, space=space, target=target, k=found.k, tried=found.tried,
                            seconds_median=statistics.median(times), seconds=times, **found.quality.as_dict()))
        print(f"search {method} {space} target {target}: k={found.k}, median {statistics.median(times):.2f} s "
              f"of {times}", flush=True)
    return results


def markdown(rows, searches):
    lines = ["| photo | k | library | setting | seconds | PSNR dB | mean ΔE00 | p95 ΔE00 |", "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['photo']} | {r['k']} | {r['library']} | {r['setting']} | {r['seconds']:.2f} | "
                     f"{r['psnr_db']:.2f} | {r['delta_e2000_mean']:.3f} | {r['delta_e2000_p95']:.3f} |")
    lines += ["", "| best emseg vs best Pillow | k | emseg | mean ΔE00 | Pillow | mean ΔE00 | emseg lower by |", "|---|---|---|---|---|---|---|"]
    for photo in dict.fromkeys(r["photo"] for r in rows):
        for k in dict.fromkeys(r["k"] for r in rows):
            ours = min((r for r in rows if r["photo"] == photo and r["k"] == k and r["library"] == "emseg"),
                       key=lambda r: r["delta_e2000_mean"])
            theirs = min((r for r in rows if r["photo"] == photo and r["k"] == k and r["library"] == "Pillow"),
                         key=lambda r: r["delta_e2000_mean"])
            gain = 1 - ours["delta_e2000_mean"] / theirs["delta_e2000_mean"]
            lines.append(f"| {photo} | {k} | {ours['setting']} | {ours['delta_e2000_mean']:.3f} | {theirs['setting']} | "
                         f"{theirs['delta_e2000_mean']:.3f} | {100 * gain:.1f} % |")
    lines += ["", "| quality search | target mean ΔE00 | k found | mean ΔE00 | k tried | median seconds |", "|---|---|---|---|---|---|"]
    for s in searches:
        lines.append(f"| {s['method']} {s['space']} | {s['target']} | {s['k']} | {s['delta_e2000_mean']:.3f} | "
                     f"{', '.join(map(str, s['tried']))} | {s['seconds_median']:.2f} |")
    return "\n".join(lines) + "\n"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="the tiny photo at k=8 only")
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results"))
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    names, ks = (["tiny"], [8]) if args.quick else (["china", "flower", "mosaic12"], [8, 16, 64])
    paths = benchmark_photos(tempfile.mkdtemp(prefix="emseg-quality-"), names)  # generated photos stay out of results/
    print(f"numba threads {numba.get_num_threads()}, seed {SEED}, Pillow methods {', '.join(PILLOW_METHODS)}")
    warm = image.thumbnail(image.load(paths[names[0]]), 32)  # compile the kernels before any timing
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        for method in ("gmm", "kmeans"):
            for space in colour.SPACES:
                run_emseg(warm, method, space, 4)
        quality.measure_pixels(warm, image.fit_labels(models.make_model("kmeans", 4), warm), np.zeros((4, 3), np.uint8))
        quality.smallest_k(warm, "kmeans", 100.0, 4)
        rows = quality_table(paths, ks)
        search_path = paths[names[-1]]
        settings = [("kmeans", "lab", 5.0), ("kmeans", "oklab", 5.0), ("gmm", "lab", 5.0)]
        searches = search_times(search_path, settings[:1] if args.quick else settings, 1 if args.quick else args.repeats)
    (out / "quality.json").write_text(json.dumps(dict(
        threads=numba.get_num_threads(), seed=SEED, rows=rows, searches=searches), indent=1) + "\n")
    (out / "quality.md").write_text(markdown(rows, searches))
    print(markdown(rows, searches))


if __name__ == "__main__":
    main()
