"""How the time per iteration grows with the number of pixels and with k, for both libraries."""

import dataclasses
import sys

import numpy as np

from cases import ALL, DISTINCT, Photo, gmm_iteration_runs, initial_centers, initial_mixture, kmeans_iteration_runs
from photos import resized
from timing import interleave, summary

SERIES = (("emseg", ALL), ("emseg", DISTINCT), ("sklearn", ALL))
LABELS = {("emseg", ALL): "emseg, all pixels", ("emseg", DISTINCT): "emseg, distinct colours",
          ("sklearn", ALL): "scikit-learn, all pixels"}


def point(photo, settings):
    """Time per EM and per Lloyd iteration at one (image size, k), for the three series.

    Returns
    -------
    list of dict
        One record per model: the image size, number of distinct colours, k,
        and for each series its time summary and the lower bound or inertia reached.
    """
    records = []
    for model in ("gmm", "kmeans"):
        if model == "gmm":
            runs = gmm_iteration_runs(photo, settings, initial_mixture(photo, settings.k))
            objective = "lower_bound_"
        else:
            runs = kmeans_iteration_runs(photo, settings, initial_centers(photo, settings.k), sklearn_distinct=False)
            objective = "inertia_"
        seconds, models = interleave(runs, settings.repeats)
        records.append(dict(
            model=model, n_pixels=photo.n_pixels, n_colors=len(photo.colors), k=settings.k,
            series={LABELS[key]: dict(seconds=summary(seconds[key]), value=float(getattr(models[key][-1], objective)))
                    for key in SERIES},
        ))
    return records


def pixel_series(rgb, sizes, settings):
    """:func:`point` on ``rgb`` resized to each number of pixels in ``sizes``."""
    records = []
    for n_pixels in sizes:
        photo = rgb if rgb.shape[0] * rgb.shape[1] == n_pixels else resized(rgb, n_pixels)
        records += point(Photo(f"{n_pixels / 1e6:g} MP", photo), settings)
    return records


def k_series(photo, ks, settings):
    """:func:`point` on one photo for each number of components or clusters in ``ks``."""
    records = []
    for k in ks:
        records += point(photo, dataclasses.replace(settings, k=k))
    return records


def x_values(records, x_key, series):
    """Where a series' points go: pixels, k, or for the distinct-colour series against size, the colours fitted."""
    key = "n_colors" if x_key == "n_pixels" and series == LABELS["emseg", DISTINCT] else x_key
    return np.array([r[key] for r in records], dtype=np.float64)


def slope(records, x_key, series):
    """Exponent b of time ~ x**b (1 means linear growth), by least squares on the log-log medians; None for < 2 points."""
    x = x_values(records, x_key, series)
    y = np.array([r["series"][series]["seconds"]["median"] for r in records])
    keep = y > 0
    if keep.sum() < 2:
        return None
    return float(np.polyfit(np.log(x[keep]), np.log(y[keep]), 1)[0])


def slopes(records, x_key):
    """{model: {series: exponent}} for a pixel or k series."""
    return {model: {series: slope([r for r in records if r["model"] == model], x_key, series)
                    for series in LABELS.values()}
            for model in ("gmm", "kmeans")}


def plot(pixel_records, k_records, path, k_image):
    """Save the log-log plot of time per iteration against pixels and against k as a PNG.

    Points are medians, bars span min to max.

    Returns the path, or None with a message on stderr when matplotlib is missing.
    """
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("benchmarks: matplotlib is not installed, so no plot was drawn; "
              "install the optional extra with: pip install -e '.[bench]'", file=sys.stderr)
        return None
    fig, axes = plt.subplots(2, 2, figsize=(11, 8.5), constrained_layout=True)
    for row, (model, title) in enumerate((("gmm", "GMM, per EM iteration"), ("kmeans", "KMeans, per Lloyd iteration"))):
        for col, (records, x_key, x_label) in enumerate((
                (pixel_records, "n_pixels", "samples fitted: pixels, or distinct colours for that series (k = 10)"),
                (k_records, "k", f"k ({k_image})"))):
            ax = axes[row, col]
            chosen = [r for r in records if r["model"] == model]
            for (series, style) in zip(LABELS.values(), ("o-", "s-", "^-")):
                order = np.argsort(x_values(chosen, x_key, series), kind="stable")
                ordered = [chosen[i] for i in order]  # resizing can leave fewer colours in a larger image
                # Lloyd's time per iteration is a difference of two noisy fits, so on a tiny
                # image it can be zero or negative: such a point cannot go on a log axis
                seconds = [r["series"][series]["seconds"] for r in ordered]
                keep = np.array([s["median"] > 0 for s in seconds], dtype=bool)
                x = x_values(ordered, x_key, series)[keep]
                y, low, high = (np.array([s[key] for s, kept in zip(seconds, keep) if kept])
                                for key in ("median", "min", "max"))
                low = np.clip(y - low, 0, 0.99 * y)  # a bar cannot reach 0 on a log axis either
                high = np.clip(high - y, 0, None)
                exponent = slope(chosen, x_key, series)
                label = series if exponent is None else f"{series} (slope {exponent:.2f})"
                ax.errorbar(x, y, yerr=[low, high], fmt=style, capsize=3, label=label)
            first = chosen[0]["series"][LABELS["sklearn", ALL]]["seconds"]["median"] if chosen else 0
            if first > 0:  # a line of slope 1 through scikit-learn's first point
                x = x_values(chosen, x_key, LABELS["sklearn", ALL])
                ax.plot(x, first * x / x[0], "k:", linewidth=1, label="linear growth")
            ax.set(xscale="log", yscale="log", xlabel=x_label, ylabel="seconds per iteration", title=title)
            if x_key == "k":
                ax.set_xticks(x, [f"{value:g}" for value in x])
                ax.minorticks_off()
            ax.grid(True, which="both", alpha=0.3)
            ax.legend(fontsize=8)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
