"""emseg: segment images with a Gaussian mixture or k-means, and generate new pixels from the mixture."""

import argparse
import gc
import json
import logging
import os
import signal
import sys
import time
from pathlib import Path

# numba's OpenMP threads sleep when a kernel ends instead of spinning for the next (GNU OpenMP spins by
# default). With the cores shared, a spinning thread holds the core the next kernel's threads need:
# `-k auto --covariance auto` on china.jpg took 3-4x longer with the other core busy (benchmarks/NOTES.md).
# Set before anything loads an OpenMP runtime; a user's own OMP_WAIT_POLICY is kept.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import numpy as np  # noqa: E402 (after the environment is set)

from segment._startup import defer_import  # noqa: E402

# scikit-learn imports scipy.stats as it starts, and only `compare` uses it. `segment` never imports
# scikit-learn (test_installed_command_segments_without_importing_scikit_learn); `demo`, `compare` and `batch` do
defer_import("scipy.stats")
defer_import("yaml")  # numba imports it at start-up, for a .numba_config.yaml that is hardly ever there
# numba imports this on the first call of a cached kernel, to see that BLAS is there; that import runs all of
# scipy.linalg's. No kernel on the command's path calls BLAS (the full and tied Cholesky factors are NumPy's), and
# numba's own first use of it asks the stand-in for an attribute, which imports the real module
defer_import("scipy.linalg.cython_blas")

from em.reference import COVARIANCE_TYPES  # noqa: E402
from kmeans.shared import convergence_warnings_ignored  # noqa: E402
from segment import colour, image, learn, modelfile, models, quality, report, smooth  # noqa: E402

PROG = "emseg"
# Pillow also logs the reason of some errors it raises (such as a TIFF's impossible samples per pixel);
# with no handler, Python would print that as a second stderr line beside the one `emseg: error:` line
logging.getLogger("PIL").addHandler(logging.NullHandler())
# the objectives of `_objective` as the demo's table and captions name them; all but the inertia are per pixel
OBJECTIVE_NAMES = dict(lower_bound="log-likelihood", inertia="inertia", free_energy="free energy", icm_cost="ICM cost")


# ---------------------------------------------------------------- helpers

def _positive_int(text):
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{value} is below 1; use a whole number of at least 1")
    return value


def _k_or_auto(text):
    return text if text == "auto" else _positive_int(text)


def _non_negative_float(text):
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not value >= 0:
        raise argparse.ArgumentTypeError(f"{text} is negative; use a number of at least 0")
    return value


def _say(message):
    print(f"{PROG}: {message}", file=sys.stderr)


class Progress:
    """Iteration and lower bound on one stderr line, only on a terminal and once a fit has run a second.

    ``last`` keeps the last (iteration, value) reported, shown or not.
    """

    def __init__(self, label, quiet):
        self.label, self.start, self.shown, self.last = label, time.perf_counter(), False, None
        self.enabled = not quiet and sys.stderr.isatty()

    def __call__(self, n_iter, value):
        self.last = (n_iter, value)
        if self.enabled and time.perf_counter() - self.start > 1.0:
            sys.stderr.write(f"\r{self.label}: iteration {n_iter}, {value:.6f}   ")
            self.shown = True

    def close(self):
        if self.shown:
            sys.stderr.write("\n")


def _make_model(method, k, args, progress):
    options = _fit_options(args)
    if progress is not None:
        options["callback"] = progress
    if method == "gmm":
        options["covariance_type"] = args.covariance
    if _wants_trace(args):
        options["trace"] = True
    return models.make_model(method, k, **options)


def _fit(method, picture, args):
    """Fit the method to the picture's pixels in ``args.space``; returns (model, labels per distinct colour, seconds)."""
    if method == "gmm" and "auto" in (args.k, args.covariance):
        return _select(picture, args)
    _refuse_kmeans_auto(method, args)
    k = _usable_k(picture, args.k)
    progress = Progress(method, args.quiet)
    model = _make_model(method, k, args, progress)
    start = time.perf_counter()
    with convergence_warnings_ignored():  # reported in the table, not as a Python warning
        color_labels = image.fit_color_labels(model, picture, args.space)
    progress.close()
    return model, color_labels, time.perf_counter() - start


def _refuse_kmeans_auto(method, args):
    """-k auto ranks mixtures by BIC, a likelihood k-means does not have: say so rather than fall back on a k."""
    if method == "kmeans" and args.k == "auto":
        raise ValueError("-k auto chooses k by BIC, which needs a likelihood; k-means has none: give --method kmeans "
                         "a number, -k N, or use --method gmm (segment --quality DELTA_E picks k-means' k by colour quality)")


def _refine(model, color_labels, picture, args):
    """--smooth: the fit refined on the pixel grid; returns (pixel labels, soft maps, grid fit, seconds).

    Without --smooth: (None, None, None, 0). The grid fit is (iterations, objective name, its last value per
    pixel): the mean-field free energy for gmm, the ICM cost (`kmeans.spatial.icm`) for kmeans; soft maps
    only for gmm.
    """
    if not args.smooth:
        return None, None, None, 0.0
    start = time.perf_counter()
    progress = Progress("smooth", args.quiet)
    labels, soft = smooth.refine(model, picture, color_labels, args.space, args.smooth, args.neighbours, progress)
    progress.close()
    seconds = time.perf_counter() - start
    if not args.quiet:
        _say(f"--smooth {args.smooth:g}, {args.neighbours} neighbours: refined on the pixel grid in {seconds:.2f} s")
    n_iter, value = progress.last
    return labels, soft, (n_iter, "free_energy" if models.method_of(model) == "gmm" else "icm_cost", value), seconds


def _objective(model, grid):
    """(iterations, objective name, value) of the fit that chose the labels: the grid fit when smoothed."""
    if grid is not None:
        return grid
    objective = "lower_bound" if models.method_of(model) == "gmm" else "inertia"
    return model.n_iter_, objective, getattr(model, objective + "_")


def _search(picture, args):
    """--quality: the smallest k that reaches the target; returns (model, labels per distinct colour, seconds)."""
    with convergence_warnings_ignored():
        found = quality.smallest_k(picture, args.method, args.quality, args.k_max or 64, args.space,
                                   **_fit_options(args))
    tried, verified = (", ".join(f"k={k}: {value:.3f}" for k, value in values.items())
                       for values in (found.tried, found.verified))
    _say(f"--quality {args.quality:g}: k={found.k} (mean ΔE00 searched: {tried}; verified on every colour: {verified})")
    return found.model, found.color_labels, found.seconds


def _select(picture, args):
    """``-k auto`` or ``--covariance auto``: every candidate fitted on the distinct colours, the table printed.

    The table goes to stdout, or to stderr under ``--json``, whose stdout is one JSON object.
    """
    k = args.k if args.k == "auto" else _usable_k(picture, args.k)
    start = time.perf_counter()
    options = dict(_fit_options(args), trace=True) if _wants_trace(args) else _fit_options(args)
    table, model = models.select(picture.in_space(args.space), picture.distinct[1], k, args.covariance,
                                 args.k_max or 16, **options)
    print(models.criterion_table(table, model), end="", file=sys.stderr if getattr(args, "json", False) else sys.stdout)
    return model, model.predict(picture.in_space(args.space)), time.perf_counter() - start


def _fit_options(args):
    """The estimator options given on the command line: seed, and the iteration limit and tolerance if set."""
    options = dict(random_state=args.seed, max_iter=args.max_iter, tol=args.tol)
    return {key: value for key, value in options.items() if value is not None}  # None: the model's default


def _chose(args, model):
    """After ``-k auto`` / ``--covariance auto``: the k and type chosen become the arguments, for the fits that follow."""
    if "auto" in (args.k, args.covariance):
        _say(f"BIC chose covariance {model.covariance_type}, k={model.n_components}")
        args.k, args.covariance = model.n_components, model.covariance_type


def _wants_trace(args):
    """True when the iterations are to be shown: `report`, or a view of them that `segment` was asked for."""
    return args.command == "report" or any(getattr(args, name, None) for name in ("trace", "animate", "plot_convergence"))


def _usable_k(picture, k):
    n_colors = len(picture.distinct[0])
    if k > n_colors:
        _say(f"warning: the image has only {n_colors} distinct colour{'s' * (n_colors > 1)}; using k={n_colors} instead of {k}.")
        return n_colors
    return k


def _load(args):
    picture = image.load(args.image, max_pixels=args.max_pixels)
    for note in picture.notes:
        _say(f"note: {note}")
    return picture


def _default_output(args, suffix):
    return Path(f"{Path(args.image).stem}_{suffix}.png")


def _write(path, rgb, picture, inputs, show=True):
    image.check_output_path(path, inputs)
    written = image.save(path, rgb, picture.alpha)
    if show:
        print(written)
    return str(written)


def _report_quality(label, measured, args):
    """The quality of a painted image on stderr: 'emseg: LABEL: PSNR ... dB, mean ΔE00 ..., 95th percentile ...'."""
    if not args.quiet:
        _say(f"{label}: {measured.line()}")


# ------------------------------------------------------------- subcommands

def _segment(args):
    picture = _load(args)
    model, palette, space = modelfile.read(args.model) if args.model else (None, None, args.space)
    if model is not None and (_wants_trace(args) or args.quality is not None):
        raise image.ImageError("--model paints without fitting, so there are no iterations for --trace, --animate, "
                               "--plot-convergence or --quality.")
    if args.quality is not None and _wants_trace(args):
        raise image.ImageError("--quality fits several k, so there is no one fit for --trace, --animate or "
                               "--plot-convergence; run them with the k it finds.")
    if model is not None and args.space != "rgb" and args.space != space:
        raise image.ImageError(f"--space {args.space}: the model in {args.model} was fitted in {space}; drop --space.")
    if model is not None and args.smooth:
        raise image.ImageError("--model paints without fitting, so there is no fit for --smooth to refine; drop one.")
    if args.quality is not None and args.method == "gmm" and args.covariance != "diag":
        raise image.ImageError(f"--quality searches k with diagonal mixtures (or --method kmeans); drop --covariance "
                               f"{args.covariance}, or give -k N with it.")
    if args.smooth and args.dither != "none":
        raise image.ImageError("--dither and --smooth both choose each pixel's label; use one of them.")
    args.space = space
    method, k = (args.method, args.k) if model is None else (models.method_of(model), len(palette))
    if method == "kmeans" and (args.proba or args.uncertainty):
        raise image.ImageError("k-means assigns each pixel wholly to one cluster, so it has no --proba or "
                               "--uncertainty maps; use --method gmm.")
    output = args.output
    for path in filter(None, (output, args.labels)):
        image.check_output_path(path, [args.image])
    if args.uncertainty:
        image.check_output_path(args.uncertainty, [args.image], (".png",))
    if args.proba and not Path(args.proba).is_dir():
        raise image.ImageError(f"--proba {args.proba}: no such folder; create it first.")
    for path, suffixes in ((args.trace, (".csv", ".json")), (args.animate, (".gif",)),
                           (args.plot_convergence, (".png",))):
        if path:
            image.check_output_path(path, [args.image], suffixes)
    if args.plot_convergence:
        learn.require_matplotlib()
    outputs = [Path(p).resolve() for p in (output, args.labels, args.trace, args.animate, args.plot_convergence,
                                           args.uncertainty) if p]
    if len(set(outputs)) < len(outputs):
        raise image.ImageError("two outputs name the same file; give each output its own path.")
    start = time.perf_counter()
    if model is None:
        model, color_labels, _ = _search(picture, args) if args.quality is not None else _fit(args.method, picture, args)
        refined, soft, grid, _ = _refine(model, color_labels, picture, args)
        colors = image.model_colors(model, space)
        seconds = time.perf_counter() - start
    else:
        color_labels, colors, refined, soft, grid = model.predict(picture.in_space(space)), palette, None, None, None
        seconds = time.perf_counter() - start
    k = len(colors)
    labels, palette, measured = quality.paint(picture, model, color_labels, colors, space, args.palette, args.dither,
                                              labels=refined, label_map=bool(args.labels),
                                              measure=args.json or not args.quiet)
    output = output or _default_output(args, f"{method}_k{k}")
    painted = image.paint_colors(picture, color_labels, palette) if labels is None else image.paint(labels, palette)
    written = [_write(output, painted, picture, [args.image], show=not args.json)]
    if args.labels:
        written.append(str(image.save_labels(args.labels, labels)))
    if args.proba or args.uncertainty:
        soft = soft or smooth.SoftMaps.of_model(model, picture, space)
        if args.proba:
            written += [str(path) for path in soft.save(args.proba, Path(args.image).stem)]
        if args.uncertainty:
            written.append(str(soft.save_uncertainty(args.uncertainty)))
    written += _write_iteration_views(args, model, picture, k=k)
    if args.json:
        # the fit that chose the labels: with --smooth the grid fit (its free energy or ICM cost per pixel), and
        # the fit on the distinct colours it started from under color_fit; 0 and None for a --model, not fitted here
        n_iter, objective, value = _objective(model, grid) if hasattr(model, "n_iter_") else (0, None, None)
        color_fit = _objective(model, None) if grid is not None else None
        print(json.dumps(dict(
            image=str(args.image), k=k, method=method, space=space, palette=args.palette, dither=args.dither,
            smooth=args.smooth, neighbours=args.neighbours,
            n_iter=int(n_iter), objective=objective, objective_value=None if value is None else float(value),
            color_fit=None if color_fit is None else dict(n_iter=int(color_fit[0]), objective=color_fit[1],
                                                          objective_value=float(color_fit[2])),
            seconds=seconds,
            **measured.as_dict(), outputs=written)))
        return 0
    for path in written[1:]:
        print(path)
    _report_quality(f"{method}, k={k}, {space}", measured, args)
    return 0


def _write_iteration_views(args, model, picture, k):
    """The --trace, --animate and --plot-convergence outputs of `segment`; returns the paths written."""
    written = []
    if args.trace:
        text = learn.trace_csv(model.trace_) if args.trace.lower().endswith(".csv") else learn.trace_json(model.trace_)
        written.append(image.save_text(args.trace, text))
    if args.animate:
        frames = learn.animation_frames(model.trace_, picture, longest=args.animate_size, space=args.space,
                                        covariance_type=getattr(model, "covariance_type", None))
        written.append(image.save_animation(args.animate, frames, learn.captions(model.trace_)))
    if args.plot_convergence:
        title = f"{Path(args.image).name}: {args.method}, k={k}"
        written.append(image.save_figure(args.plot_convergence, learn.convergence_figure(model.trace_, title)))
    return [str(path) for path in written]


def _report(args):
    if args.method == "gmm" and args.covariance != "diag":
        raise ValueError(f"emseg report draws diagonal mixtures and their bound term by term; --covariance "
                         f"{args.covariance} is not drawn: use --covariance diag, or emseg explain --covariance for "
                         "full and tied.")
    picture = _load(args)
    if args.output:
        image.check_output_path(args.output, [args.image], (".html",))  # before the fit; a default name waits for k
    model, _, _ = _fit(args.method, picture, args)
    output = args.output or Path(f"{Path(args.image).stem}_{args.method}_k{models.k_of(model)}_report.html")
    image.check_output_path(output, [args.image], (".html",))
    page = report.build(picture, model, name=Path(args.image).name, longest=args.size, max_points=args.points,
                        random_state=args.seed)
    print(image.save_text(output, page))
    return 0


def _sample(args):
    picture = _load(args)
    if args.output:
        image.check_output_path(args.output, [args.image])  # before the fit; a default name waits for the k chosen
    model, color_labels, _ = _fit("gmm", picture, args)
    output = args.output or _default_output(args, f"sample_{args.order}_k{model.n_components}")
    pixels = image.sample_pixels(model, picture, args.order, image.pixel_labels(picture, color_labels),
                                 random_state=args.seed)
    _write(output, pixels, picture, [args.image])
    return 0


def _demo(args):
    if args.image is None:
        from sklearn.datasets import load_sample_image

        picture, args.image = image.Picture(load_sample_image("china.jpg")), "china.jpg"
    else:
        picture = _load(args)
    out = Path(args.output)
    fits = [_fit("gmm", picture, args)]
    _chose(args, fits[0][0])  # k-means gets the k the mixture chose, and the files are named by it
    names = {n: out / f"{n}_k={args.k}.png" for n in ("k_GMM", "kmeans", "GEN_GMM", "summary")}
    for path in names.values():
        image.check_output_path(path, [args.image])
    fits.append(_fit("kmeans", picture, args))
    refined = [_refine(model, color_labels, picture, args) for model, color_labels, _ in fits]
    painted = [quality.paint(picture, model, color_labels, image.model_colors(model, args.space), args.space,
                             dither=args.dither, labels=labels)
               for (model, color_labels, _), (labels, *_) in zip(fits, refined)]
    (gmm, _, gmm_seconds), (km, _, km_seconds) = fits
    gmm_seconds, km_seconds = gmm_seconds + refined[0][3], km_seconds + refined[1][3]  # the seconds include smoothing
    (gmm_iter, gmm_objective, gmm_value), (km_iter, km_objective, km_value) = (
        _objective(model, grid) for (model, _, _), (_, _, grid, _) in zip(fits, refined))
    panels = [
        picture.rgb,
        *(image.paint(labels, palette) for labels, palette, _ in painted),
        image.sample_pixels(gmm, picture, "grouped", random_state=args.seed, space=args.space),
    ]
    for name, panel in zip(("k_GMM", "kmeans", "GEN_GMM"), panels[1:]):
        _write(names[name], panel, picture, [args.image])
    smoothed = f", smoothed (β={args.smooth:g}, {args.neighbours} neighbours)" if args.smooth else ""
    captions = ["original", f"GMM, k={models.k_of(gmm)}, {OBJECTIVE_NAMES[gmm_objective]} {gmm_value:.4f}{smoothed}",
                f"k-means, k={models.k_of(km)}, {OBJECTIVE_NAMES[km_objective]} {km_value:.4g}{smoothed}",
                "generated: pixels drawn from the GMM"]
    sheet = image.summary_sheet(panels, [[], painted[0][1], painted[1][1], []], captions)
    _write(names["summary"], sheet, image.Picture(sheet), [args.image])
    rows = [("gmm", gmm_iter, OBJECTIVE_NAMES[gmm_objective], gmm_value, gmm_seconds, painted[0][2]),
            ("kmeans", km_iter, OBJECTIVE_NAMES[km_objective], km_value, km_seconds, painted[1][2])]
    print(f"{'method':<8} {'iterations':>10} {'objective':>15} {'value':>16} {'seconds':>8} "
          f"{'PSNR dB':>8} {'mean ΔE00':>10} {'p95 ΔE00':>9}  (space {args.space})")
    for method, n_iter, objective, value, seconds, measured in rows:
        print(f"{method:<8} {n_iter:>10} {objective:>15} {value:>16.6g} {seconds:>8.3f} "
              f"{measured.psnr_db:>8.2f} {measured.delta_e2000_mean:>10.3f} {measured.delta_e2000_p95:>9.3f}")
    return 0


def _explain(args):
    picture = image.thumbnail(_load(args), args.size)
    k = _usable_k(picture, args.k)
    print(learn.explain(picture, k, random_state=args.seed, n_iter=args.iterations, n_shown=args.pixels,
                        name=Path(args.image).name, covariance_type=args.covariance), end="")
    return 0


def _compare(args):
    from sklearn.cluster import KMeans as SkKMeans
    from sklearn.metrics import adjusted_rand_score
    from sklearn.mixture import GaussianMixture as SkGaussianMixture

    def theirs_for(method, k):
        if method == "gmm":
            return SkGaussianMixture(k, covariance_type=args.covariance, random_state=args.seed)
        return SkKMeans(k, random_state=args.seed)

    picture = _load(args)
    pixels = picture.in_space(args.space)[picture.distinct[2]]  # every opaque pixel, in the fit's space
    if "auto" in (args.k, args.covariance):  # chosen first; then both libraries fit the chosen model, timed
        _chose(args, _select(picture, args)[0])
    k = _usable_k(picture, args.k)
    # first an untimed fit of each model, both libraries, on a thumbnail: no time
    # below then includes a one-time cost, such as numba loading emseg's kernels
    few = image.thumbnail(picture, 32)
    few_k = min(k, len(few.distinct[0]))
    with convergence_warnings_ignored():
        for method in ("gmm", "kmeans"):
            warm = _make_model(method, few_k, args, None)
            smooth.refine(warm, few, image.fit_color_labels(warm, few, args.space), args.space, args.smooth,
                          args.neighbours)
            theirs_for(method, few_k).fit(few.in_space(args.space)[few.distinct[2]])
    rows = []
    for method, objective in (("gmm", "lower_bound_"), ("kmeans", "inertia_")):
        theirs = theirs_for(method, k)
        ours, color_labels, seconds = _fit(method, picture, args)
        refined, _, _, smooth_seconds = _refine(ours, color_labels, picture, args)
        seconds += smooth_seconds
        our_labels = color_labels[picture.distinct[2]] if refined is None else refined[picture.mask]
        start = time.perf_counter()
        with convergence_warnings_ignored():
            their_labels = theirs.fit(pixels).predict(pixels)
        their_seconds = time.perf_counter() - start
        their_centers = theirs.means_ if method == "gmm" else theirs.cluster_centers_
        _, _, our_quality = quality.paint(picture, ours, color_labels, image.model_colors(ours, args.space), args.space,
                                          labels=refined)
        their_image_labels = np.full(picture.rgb.shape[:2], -1, dtype=np.int64)
        their_image_labels[picture.mask] = their_labels
        their_quality = quality.measure_pixels(picture, their_image_labels, colour.from_space(their_centers, args.space))
        rows.append(dict(
            method=method, k=k, n_pixels=len(pixels), objective=objective.rstrip("_"),
            space=args.space, smooth=args.smooth, neighbours=args.neighbours,
            emseg=dict(seconds=seconds, n_iter=int(ours.n_iter_), value=float(getattr(ours, objective)),
                       **our_quality.as_dict()),
            sklearn=dict(seconds=their_seconds, n_iter=int(theirs.n_iter_), value=float(getattr(theirs, objective)),
                         **their_quality.as_dict()),
            adjusted_rand_index=float(adjusted_rand_score(our_labels, their_labels)),
            speedup=their_seconds / seconds,
        ))
    if args.json:
        print(json.dumps(dict(image=str(args.image), seed=args.seed, results=rows), indent=2))
        return 0
    print(f"{args.image}: {len(pixels):,} pixels, k={k}, seed={args.seed}, space {args.space}")
    print(f"{'method':<7} {'library':<8} {'seconds':>8} {'iters':>6} {'objective':>12} {'value':>16} "
          f"{'PSNR dB':>8} {'mean ΔE00':>10} {'p95 ΔE00':>9} {'ARI':>7} {'speedup':>8}")
    for row in rows:
        for library in ("emseg", "sklearn"):
            r = row[library]
            tail = f"{row['adjusted_rand_index']:>7.4f} {row['speedup']:>7.1f}x" if library == "emseg" else ""
            print(f"{row['method']:<7} {library:<8} {r['seconds']:>8.3f} {r['n_iter']:>6} "
                  f"{row['objective']:>12} {r['value']:>16.8g} {r['psnr_db']:>8.2f} {r['delta_e2000_mean']:>10.3f} "
                  f"{r['delta_e2000_p95']:>9.3f} {tail}")
    return 0


def _batch(args):
    try:
        from segment import batch
    except ImportError:
        raise learn.MissingDependency("emseg batch runs on Dask, which is not installed; pip install 'emseg[distributed]'") from None
    if args.smooth and not args.per_image:
        raise ValueError("--smooth refines each image's own fit on its pixel grid; use it with --per-image.")
    _refuse_kmeans_auto(args.method, args)
    paths = image.expand_inputs(args.inputs)
    out = Path(args.output)
    out.mkdir(parents=True, exist_ok=True)
    outputs = [out / f"{path.stem}_{args.method}_k{args.k}.png" for path in paths]
    for output in outputs:
        image.check_output_path(output, paths)
    clashes = [path for path, output in zip(paths, outputs) if outputs.count(output) > 1]
    if clashes:
        raise image.ImageError(f"{clashes[0]} and {clashes[1]} would both be written as {outputs[paths.index(clashes[0])]}; rename one.")
    # -k auto / --covariance auto: a mixture chosen by BIC (per image, or on the shared histogram)
    chosen = args.method == "gmm" and "auto" in (args.k, args.covariance)
    auto = (args.k, args.covariance, args.k_max or 16) if chosen else None
    model = _make_model(args.method, 10 if args.k == "auto" else args.k, args, None)  # 10: only a start, select refits
    with batch.connect(args.scheduler, args.workers) as client:
        if args.per_image:
            recipe = dict(method=args.method, parameters=model.get_params(), space=args.space, auto=auto,
                          smooth=args.smooth, neighbours=args.neighbours, version=modelfile.version())
            paths, outputs, keys = _still_to_do(batch, paths, outputs, recipe, args)
            progress = BatchProgress("fitted and painted", len(paths), args.quiet)
            written, failures = batch.run_on_workers(client, batch.fit_and_paint_file, paths, outputs, keys, model,
                                                     args.max_pixels, args.space, auto, args.smooth, args.neighbours,
                                                     on_done=progress)
        else:
            written, failures = _batch_shared(client, batch, model, paths, outputs, args, auto)
    for path, measured in written:
        print(path)
        if measured is not None:
            _report_quality(Path(path).name, quality.Quality(**measured), args)
    if failures:
        _say(f"error: {len(failures)} of {len(paths)} input{'s' * (len(paths) > 1)} failed:")
        for path in paths:
            if path in failures:
                print(f"  {failures[path]}", file=sys.stderr)
        return 1
    return 0


def _batch_shared(client, batch, model, paths, outputs, args, auto):
    """The --shared-model run: one histogram, one fit here, painting on the workers; (written, failures).

    With ``auto`` = (k, covariance type, k_max), the model is chosen by BIC and its table printed.
    """
    colors, counts, failures = batch.shared_histogram(
        client, paths, args.max_pixels, on_done=BatchProgress("colours counted", len(paths), args.quiet))
    if len(colors) == 0:
        return [], failures
    k = models.k_of(model)
    if k > len(colors) and (auto is None or auto[0] != "auto"):
        _say(f"warning: the images have only {len(colors)} distinct colours; using k={len(colors)} instead of {k}.")
        models.set_k(model, len(colors))
        auto = auto and (len(colors), *auto[1:])
    if auto is not None:
        table, model = models.select(colour.to_space(colors, args.space), counts, *auto, **_fit_options(args))
        print(models.criterion_table(table, model), end="")
    else:
        with convergence_warnings_ignored():
            model.fit(colour.to_space(colors, args.space), sample_weight=counts)
    palette = image.model_colors(model, args.space)
    print(modelfile.save(Path(args.output) / "model.json", model, palette, args.space))
    readable = [i for i, path in enumerate(paths) if path not in failures]
    recipe = modelfile.document(model, palette, modelfile.version(), args.space)
    paths, outputs, keys = _still_to_do(batch, [paths[i] for i in readable], [outputs[i] for i in readable],
                                        recipe, args)
    written, more = batch.run_on_workers(
        client, batch.paint_file, paths, outputs, keys, model, palette,
        args.max_pixels, args.space, on_done=BatchProgress("painted", len(paths), args.quiet))
    return written, {**failures, **more}


def _still_to_do(batch, paths, outputs, recipe, args):
    """(paths, outputs, keys) of the images to paint: all of them, or with --resume those whose output is not
    complete and made by the same ``recipe`` from the same input (`batch.is_done`)."""
    keys = [batch.job_key(path, recipe) for path in paths]
    if args.resume:
        for output in outputs:
            batch.remove_leftovers(output)
    todo = [i for i, (output, key) in enumerate(zip(outputs, keys)) if not (args.resume and batch.is_done(output, key))]
    if len(todo) < len(paths):
        _say(f"note: --resume: {len(paths) - len(todo)} of {len(paths)} outputs are complete and made by the same "
             "model from the same input; kept.")
    return [paths[i] for i in todo], [outputs[i] for i in todo], [keys[i] for i in todo]


class BatchProgress:
    """"LABEL: done/total" on one stderr line, only on a terminal."""

    def __init__(self, label, total, quiet):
        self.label, self.total, self.done = label, total, 0
        self.enabled = not quiet and sys.stderr.isatty()

    def __call__(self):
        self.done += 1
        if self.enabled:
            sys.stderr.write(f"\r{PROG} batch: {self.done}/{self.total} images {self.label}")
            if self.done == self.total:
                sys.stderr.write("\n")


# ------------------------------------------------------------------ parser

def _add_max_pixels(sub):
    sub.add_argument("--max-pixels", type=_positive_int, default=image.DEFAULT_MAX_PIXELS,
                     help="refuse larger images, a guard against decompression bombs (default: %(default)s)")


def _add_fit_options(sub):
    """The options every fitting subcommand shares: k, seed, iteration limit, tolerance, pixel limit, quiet."""
    sub.add_argument("-k", type=_k_or_auto, default=10,
                     help="number of components or clusters, or 'auto' to choose k by BIC for gmm (default: 10)")
    sub.add_argument("--k-max", type=_positive_int,
                     help="largest k tried by -k auto (default: 16) or by segment --quality (default: 64)")
    sub.add_argument("--covariance", choices=(*COVARIANCE_TYPES, "auto"), default="diag",
                     help="covariance type of the gmm; 'auto' chooses it by BIC (default: diag)")
    sub.add_argument("--seed", type=int, default=0, help="random seed; the same seed gives the same files (default: 0)")
    sub.add_argument("--max-iter", type=_positive_int, default=None, help="iteration limit (default: the model's, 100 for gmm, 300 for kmeans)")
    sub.add_argument("--tol", type=_non_negative_float, default=None, help="convergence tolerance (default: the model's)")
    _add_max_pixels(sub)
    sub.add_argument("--quiet", action="store_true", help="no progress display on stderr")


def _add_space(sub):
    sub.add_argument("--space", choices=colour.SPACES, default="rgb",
                     help="colour space of the fit: rgb (the 8-bit values), lab (CIE L*a*b*, D65) or oklab "
                          "(times 100); the painted colours are the means converted back to sRGB (default: rgb)")


def _add_smooth(sub):
    sub.add_argument("--smooth", type=_non_negative_float, default=0.0, metavar="BETA",
                     help="refine the fit on the pixel grid with a Potts prior of strength BETA: neighbouring "
                          "pixels prefer one segment (mean-field EM for gmm, ICM for kmeans; about 0.5 to 2 "
                          "cleans up noise; 0: no smoothing, the ordinary fit) (default: 0)")
    sub.add_argument("--neighbours", type=int, choices=(4, 8), default=4,
                     help="the neighbourhood of --smooth: 4 (edges) or 8 (edges and corners) (default: 4)")


def _add_dither(sub):
    sub.add_argument("--dither", choices=quality.DITHERS, default="none",
                     help="paint with Floyd-Steinberg error diffusion in the fit's space, towards the model's "
                          "colours (--palette means only) (default: none)")


def build_parser():
    parser = argparse.ArgumentParser(prog=PROG, description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def add(name, help, handler, image_optional=False):
        sub = commands.add_parser(name, help=help, description=help)
        if image_optional:
            sub.add_argument("image", nargs="?", metavar="IMAGE", help="any image Pillow reads (default: china.jpg from scikit-learn)")
        else:
            sub.add_argument("image", metavar="IMAGE", help="any image Pillow reads")
        _add_fit_options(sub)
        sub.set_defaults(handler=handler)
        return sub

    segment = add("segment", "Fit a model to the image's pixels and paint each pixel by its cluster.", _segment)
    segment.add_argument("--method", choices=("gmm", "kmeans"), default="gmm", help="diagonal Gaussian mixture or k-means (default: gmm)")
    segment.add_argument("-o", "--output", help="output image; the format follows the extension (default: IMAGE-STEM_METHOD_kK.png here)")
    segment.add_argument("--labels", metavar="LABELS", help="also write the label map: an 8-bit image (.png) for k <= 256, or .npy")
    segment.add_argument("--model", metavar="MODEL",
                         help="paint with a model written by emseg batch (model.json) instead of fitting one; -k and --method are ignored")
    segment.add_argument("--palette", choices=("means", "distinct"), default="means",
                         help="paint with each cluster's mean colour, or with k well-separated colours (default: means)")
    _add_space(segment)
    _add_dither(segment)
    _add_smooth(segment)
    segment.add_argument("--proba", metavar="DIR",
                         help="write each component's responsibility per pixel to DIR/IMAGE-STEM_pKK.png, 16-bit "
                              "grey (65535 = 1; 8 bits would round away responsibilities below 0.002); gmm only")
    segment.add_argument("--uncertainty", metavar="FILE",
                         help="write each pixel's entropy of the responsibilities divided by log k as a 16-bit "
                              "grey .png (0: certain, 65535: all components equally likely); gmm only")
    segment.add_argument("--quality", type=_non_negative_float, metavar="DELTA_E",
                         help="fit the smallest k whose mean CIEDE2000 ΔE is at most DELTA_E (doubling, then "
                              "bisection, warm-started, on a sample of pixels; the k found and k-1 verified on every "
                              "colour; -k is ignored); exit status 1 if even --k-max misses it")
    segment.add_argument("--json", action="store_true",
                         help="print one JSON object: k, method, space, n_iter, objective, seconds, psnr_db, "
                              "delta_e2000_mean, delta_e2000_p95 and the paths written")
    segment.add_argument("--trace", metavar="TRACE", help="write every iteration's parameters and objective: .csv or .json; with --smooth, those "
                              "of the fit on the distinct colours that the grid refinement starts from (--json "
                              "reports the grid fit's iterations and free energy)")
    segment.add_argument("--animate", metavar="GIF", help="write an animated .gif, one frame per iteration")
    segment.add_argument("--animate-size", type=_positive_int, default=480, metavar="PIXELS",
                         help="longest side of the animation's frames; the fit keeps full resolution (default: 480)")
    segment.add_argument("--plot-convergence", metavar="PLOT",
                         help="plot the objective per iteration as a .png (needs matplotlib: pip install 'emseg[bench]')")

    report_ = add("report", "Write a self-contained HTML page that shows the fit iteration by iteration.", _report)
    report_.set_defaults(space="rgb")  # the page shows the fit in the pixels' own channels
    report_.add_argument("--method", choices=("gmm", "kmeans"), default="gmm", help="diagonal Gaussian mixture or k-means (default: gmm)")
    report_.add_argument("-o", "--output", help="the .html page (default: IMAGE-STEM_METHOD_kK_report.html here)")
    report_.add_argument("--size", type=_positive_int, default=report.IMAGE_SIDE, metavar="PIXELS",
                         help="longest side of the image view's copy; the fit keeps full resolution (default: %(default)s)")
    report_.add_argument("--points", type=_positive_int, default=report.MAX_POINTS,
                         help="most distinct colours drawn in the scatter (default: %(default)s)")

    sample = add("sample", "Fit a mixture and generate a new image of the same size from it.", _sample)
    sample.set_defaults(space="rgb")  # draws are pixels: the mixture is fitted in RGB
    sample.add_argument("-o", "--output", help="output image (default: IMAGE-STEM_sample_ORDER_kK.png here)")
    sample.add_argument("--order", choices=("grouped", "shuffled", "per-pixel"), default="grouped",
                        help="grouped: scikit-learn's order, in bands by component (the notebook's picture); "
                             "shuffled: the same draws in random order; per-pixel: each pixel drawn from its "
                             "own pixel's component, which keeps the layout (default: grouped)")

    demo = add("demo", "The notebook end to end: mixture, k-means, generated image and a summary sheet.", _demo, image_optional=True)
    demo.add_argument("-o", "--output", default=".", metavar="OUTDIR", help="folder for the four images (default: .)")
    _add_space(demo)
    _add_dither(demo)
    _add_smooth(demo)

    explain = commands.add_parser(
        "explain", help="Print the first EM iterations on a tiny copy of the image, step by step.",
        description="Shrink the image to a few hundred pixels, fit a k-component mixture with the readable "
                    "NumPy steps of em/reference.py, and print every number of the first iterations.")
    explain.add_argument("image", metavar="IMAGE", help="any image Pillow reads")
    explain.add_argument("-k", type=_positive_int, default=3, help="number of components (default: 3)")
    explain.add_argument("--seed", type=int, default=0, help="random seed of the k-means start (default: 0)")
    explain.add_argument("--iterations", type=_positive_int, default=2, help="EM iterations to show (default: 2)")
    explain.add_argument("--pixels", type=_positive_int, default=4, help="pixels whose responsibilities are shown (default: 4)")
    explain.add_argument("--size", type=_positive_int, default=16, help="longest side of the tiny copy, in pixels (default: 16)")
    explain.add_argument("--covariance", choices=COVARIANCE_TYPES, default="diag",
                         help="covariance type; full and tied print their covariance and scatter matrices (default: diag)")
    _add_max_pixels(explain)
    explain.set_defaults(handler=_explain)

    batch = commands.add_parser(
        "batch", help="Segment a collection of images on a Dask cluster, with one shared model or one model per image.",
        description="Segment every image named by INPUTS (files, folders, glob patterns) on a Dask cluster. "
                    "--shared-model fits one model on the colour histogram of the whole collection, writes it to "
                    "OUTDIR/model.json and paints every image with it; --per-image fits each image on its own. "
                    "Unreadable files are reported and skipped; the exit status is 1 if any input failed.")
    batch.add_argument("inputs", nargs="+", metavar="INPUTS", help="image files, folders of images, or glob patterns")
    batch.add_argument("-o", "--output", required=True, metavar="OUTDIR", help="folder for the painted images and model.json (created if missing)")
    batch.add_argument("--method", choices=("gmm", "kmeans"), default="gmm", help="diagonal Gaussian mixture or k-means (default: gmm)")
    mode = batch.add_mutually_exclusive_group()
    mode.add_argument("--shared-model", dest="per_image", action="store_false", help="one model for the whole collection (the default)")
    mode.add_argument("--per-image", dest="per_image", action="store_true", help="fit each image on its own, in parallel")
    batch.add_argument("--scheduler", metavar="ADDRESS", help="run on an existing Dask cluster, such as tcp://host:8786 (default: start a local one)")
    batch.add_argument("--workers", type=_positive_int, default=2, help="worker processes of the local cluster (default: 2)")
    batch.add_argument("--resume", action="store_true",
                       help="keep the outputs that are complete and were made by the same model from the same input "
                            "(each output's record, OUTDIR/.NAME.emseg.json, says), make only the others, and remove "
                            "the temporary files an interrupted run left")
    _add_fit_options(batch)
    _add_space(batch)
    _add_smooth(batch)
    batch.set_defaults(handler=_batch, per_image=False)

    compare = add("compare", "Fit emseg's and scikit-learn's models on the same pixels and seed; report time (after an untimed warm-up fit of both on a thumbnail) and agreement.", _compare)
    compare.add_argument("--json", action="store_true", help="machine-readable output")
    _add_space(compare)
    _add_smooth(compare)
    return parser


class Interrupted(BaseException):
    """SIGINT or SIGTERM arrived: unwinds like KeyboardInterrupt, so atomic writes remove their temporary file."""

    def __init__(self, signum):
        super().__init__(signum)
        self.signum = signum


def _interrupt(signum, frame):
    """The handler of SIGINT and SIGTERM: the first one unwinds the command; later ones are ignored."""
    for other in (signal.SIGINT, signal.SIGTERM):
        signal.signal(other, signal.SIG_IGN)  # so cleaning up cannot itself be interrupted
    raise Interrupted(signum)


def main(argv=None):
    args = build_parser().parse_args(argv)
    try:
        return args.handler(args)
    except (image.ImageError, ValueError, OSError, learn.MissingDependency) as error:  # QualityNotReached too
        print(f"{PROG}: error: {error}", file=sys.stderr)
        return 1
    except (Interrupted, KeyboardInterrupt) as stop:
        return _stopped(stop)
    except SystemError as error:  # the handler ran inside numba's C code, which wraps what it raised, maybe twice
        stop = error
        while stop is not None and not isinstance(stop, (Interrupted, KeyboardInterrupt)):
            stop = stop.__cause__
        if stop is None:
            raise
        return _stopped(stop)


def _stopped(stop):
    """The one line and the exit status (128 + the signal's number) of a command a signal stopped."""
    signum = getattr(stop, "signum", signal.SIGINT)
    print(f"{PROG}: error: stopped by {signal.Signals(signum).name}; the file being written was discarded, "
          "files already there are as they were.", file=sys.stderr)
    return 128 + signum


def run():
    """The ``emseg`` command: `main` with SIGINT and SIGTERM turned into `Interrupted`, then exit.

    Exit status 130 (SIGINT) or 143 (SIGTERM), as a shell reports a command a
    signal stopped. The process ends right after, so the garbage collector is
    told to leave the objects that exist now alone: otherwise its passes over
    every imported module's objects at interpreter shutdown take 0.6 s. `main`
    itself stays free of both, as tests and benchmarks call it in a long-lived process.
    """
    signums = (signal.SIGINT, signal.SIGTERM)
    previous = [signal.signal(signum, _interrupt) for signum in signums]
    try:
        status = main()
    finally:  # as they were, for a caller that lives on (a test)
        for signum, handler in zip(signums, previous):
            signal.signal(signum, handler)
    gc.freeze()
    return status


if __name__ == "__main__":
    raise SystemExit(run())
