r"""How good a painted image is, painting with error diffusion, and the fewest colours that reach a quality.

The figures compare the painted image with the original on every opaque pixel:

- **PSNR** in dB, :math:`10 \log_{10}(255^2 / \mathrm{MSE})`, the MSE over the
  three 8-bit channels of every pixel (infinite when the images are equal);
- **ΔE00**, the CIEDE2000 difference of each pixel's original and painted
  colour in L*a*b* (D65): its mean and its 95th percentile.

Without dithering a pixel's painted colour depends only on its original
colour, so `measure_colors` computes them on the distinct colours weighted by
their counts, which gives exactly the per-pixel figures (the squared errors are
integers, summed exactly; the percentile is the same element). With dithering,
`measure_pixels` computes them pixel by pixel.

The percentile is NumPy's ``method='inverted_cdf'``: the smallest ΔE00 that
at least 95 % of the pixels do not exceed. `weighted_percentile` gives the
same element from distinct values and their counts.
"""

import math
import time
from dataclasses import dataclass

import numpy as np
from numba import njit

from kmeans.shared import check_random_state

from . import colour, image, models

PERCENTILE = 95.0


@dataclass
class Quality:
    """The quality of one painted image against its original."""

    psnr_db: float
    delta_e2000_mean: float
    delta_e2000_p95: float

    def as_dict(self):
        return dict(psnr_db=self.psnr_db, delta_e2000_mean=self.delta_e2000_mean,
                    delta_e2000_p95=self.delta_e2000_p95)

    def line(self):
        """'PSNR 31.20 dB, mean ΔE00 2.345, 95th percentile 5.678': one line for a report."""
        return (f"PSNR {self.psnr_db:.2f} dB, mean ΔE00 {self.delta_e2000_mean:.3f}, "
                f"95th percentile {self.delta_e2000_p95:.3f}")


def weighted_percentile(values, counts, q):
    """The ``q``-th percentile of ``values`` each repeated ``counts`` times, as ``np.percentile(method='inverted_cdf')``.

    NumPy's inverted CDF takes, of the n sorted values, the one at the virtual
    index n·q/100 − 1 rounded up (down when it is whole). Here n is the sum of
    the counts, the same index is computed with the same float operations, and
    the distinct value whose run of repeats covers it is returned.

    Parameters
    ----------
    values : ndarray of shape (n_values,)
    counts : ndarray of shape (n_values,)
        Whole, non-negative numbers.
    q : float
        In [0, 100].
    """
    order = np.argsort(values, kind="stable")
    ends = np.cumsum(np.asarray(counts, dtype=np.int64)[order])  # 1 + the last position of each value's run
    n = int(ends[-1])
    index = n * (q / 100.0) - 1
    below = math.floor(index)
    position = min(max(below + (index - below > 0), 0), n - 1)
    return float(values[order][np.searchsorted(ends, position, side="right")])


def _quality(squared_error, delta_e, counts, n_pixels):
    """Quality from per-item squared errors (summed over RGB) and ΔE00, each item standing for ``counts`` pixels."""
    if counts is None:
        mse = squared_error.sum() / (3 * n_pixels)
        mean, p95 = delta_e.mean(), np.percentile(delta_e, PERCENTILE, method="inverted_cdf")
    else:
        mse = (squared_error * counts).sum() / (3 * n_pixels)
        mean, p95 = (delta_e * counts).sum() / n_pixels, weighted_percentile(delta_e, counts, PERCENTILE)
    psnr = math.inf if mse == 0 else 10 * math.log10(255.0**2 / mse)
    return Quality(float(psnr), float(mean), float(p95))


def measure_colors(picture, color_labels, palette):
    """Quality of painting each of the picture's distinct colours with ``palette[label]``: every pixel, via counts.

    Parameters
    ----------
    picture : image.Picture
    color_labels : ndarray of shape (n_colors,)
        The label of each distinct colour (``image.fit_color_labels``).
    palette : ndarray of shape (k, 3), uint8
    """
    colors, counts, _ = picture.distinct
    palette = np.asarray(palette, dtype=np.uint8)
    squared_error = ((colors - palette[color_labels]) ** 2).sum(axis=1)  # integers: exact in float64
    return _quality(squared_error, _colors_delta_e(picture.in_space("lab"), color_labels, palette), counts, counts.sum())


def _colors_delta_e(lab, color_labels, palette):
    """ΔE00 between each colour (L*a*b*, (n_colors, 3)) and its painted colour ``palette[label]``, shape (n_colors,)."""
    return colour.delta_e2000_indexed(lab, np.arange(len(lab)), colour.srgb8_to_lab(palette), color_labels)


def measure_pixels(picture, labels, palette):
    """Quality of painting each pixel with ``palette[labels]``, pixel by pixel (for dithered labels).

    Parameters
    ----------
    picture : image.Picture
    labels : ndarray of shape (height, width)
        Each pixel's palette index, -1 where transparent.
    palette : ndarray of shape (k, 3), uint8
    """
    colors, _, inverse = picture.distinct
    pixel_labels = labels[picture.mask]
    palette = np.asarray(palette, dtype=np.uint8)
    squared_error = ((picture.rgb[picture.mask].astype(np.float64) - palette[pixel_labels]) ** 2).sum(axis=1)
    delta_e = colour.delta_e2000_indexed(picture.in_space("lab"), inverse, colour.srgb8_to_lab(palette), pixel_labels)
    return _quality(squared_error, delta_e, None, len(pixel_labels))


# ---------------------------------------------------------------- dithering

DITHERS = ("none", "floyd-steinberg")


@njit(cache=True)
def _floyd_steinberg(values, mask, palette, serpentine):
    """Error diffusion over ``values`` (h, w, 3) float64, modified in place; the palette index of each pixel."""
    height, width = mask.shape
    labels = np.full((height, width), -1, dtype=np.int64)
    for y in range(height):
        reverse = serpentine and y % 2 == 1
        dx = -1 if reverse else 1
        for step in range(width):
            x = width - 1 - step if reverse else step
            if not mask[y, x]:
                continue
            best, best_d = 0, np.inf
            for k in range(palette.shape[0]):
                d = 0.0
                for c in range(3):
                    diff = values[y, x, c] - palette[k, c]
                    d += diff * diff
                if d < best_d:  # first nearest wins ties
                    best, best_d = k, d
            labels[y, x] = best
            for c in range(3):
                error = values[y, x, c] - palette[best, c]
                # Floyd & Steinberg (1976): 7/16 ahead, 3/16 behind below, 5/16 below, 1/16 ahead below
                if 0 <= x + dx < width and mask[y, x + dx]:
                    values[y, x + dx, c] += error * (7.0 / 16.0)
                if y + 1 < height:
                    if 0 <= x - dx < width and mask[y + 1, x - dx]:
                        values[y + 1, x - dx, c] += error * (3.0 / 16.0)
                    if mask[y + 1, x]:
                        values[y + 1, x, c] += error * (5.0 / 16.0)
                    if 0 <= x + dx < width and mask[y + 1, x + dx]:
                        values[y + 1, x + dx, c] += error * (1.0 / 16.0)
    return labels


def dither_labels(picture, centers, space="rgb", serpentine=False):
    """Each pixel's palette index by Floyd–Steinberg error diffusion in ``space``, (height, width) int64.

    Pixels are visited in rows, left to right (every other row right to left
    with ``serpentine``); each takes the centre nearest its colour plus the
    error diffused to it so far, and passes on its own error: 7/16 to the next
    pixel, 3/16, 5/16 and 1/16 to the three below. The distances and the
    errors are in the fit's space, so in 'lab' or 'oklab' the error is
    perceptual. Transparent pixels (-1) neither take nor pass on error. One
    sequential pass: deterministic.

    Parameters
    ----------
    picture : image.Picture
    centers : ndarray of shape (k, 3)
        The palette in ``space`` (the fitted means or centres).
    """
    values = np.zeros(picture.rgb.shape, dtype=np.float64)
    values[picture.mask] = picture.in_space(space)[picture.distinct[2]]
    centers = np.ascontiguousarray(centers, dtype=np.float64)
    return _floyd_steinberg(values, picture.mask, centers, serpentine)


def paint(picture, model, color_labels, colors, space="rgb", palette="means", dither="none", serpentine=False,
          labels=None, label_map=True, measure=True):
    """Paint a picture with a fitted model and measure the result: (labels, palette, Quality).

    Parameters
    ----------
    picture : image.Picture
    model : fitted estimator of ``space``
    color_labels : ndarray of shape (n_colors,)
        The label of each distinct colour.
    colors : ndarray of shape (k, 3), uint8
        The model's colours in sRGB (``image.model_colors(model, space)``, or a
        saved model's palette).
    palette : {'means', 'distinct'}
        Paint with ``colors``, or with k well-separated colours.
    dither : {'none', 'floyd-steinberg'}
        Floyd–Steinberg error diffusion in ``space`` (`dither_labels`); only
        with the 'means' palette, whose colours are the model's.
    labels : ndarray of shape (height, width) or None
        Pixel labels refined on the grid (`smooth.refine`), painted as given and
        measured pixel by pixel; None paints each colour with its ``color_labels``.
    label_map : bool
        False: without dithering or ``labels``, return None for the labels instead of the
        (height, width) int64 map (paint with `image.paint_colors`), to save its memory on a large image.
    measure : bool
        False: return None for the quality, and save its time (0.12 s of CPU on a 0.25 MP photo,
        for a figure nobody will read under ``--quiet``).

    Returns
    -------
    labels : ndarray of shape (height, width), int64
        Each pixel's palette index, -1 where transparent.
    palette : ndarray of shape (k, 3), uint8
    quality : Quality or None
        Of the painted image against the original, on every opaque pixel.
    """
    if dither not in DITHERS:
        raise ValueError(f"dither={dither!r} is not a dithering emseg knows; use one of {', '.join(DITHERS)}.")
    colors = np.asarray(colors, dtype=np.uint8)
    if palette != "means":
        if dither != "none":
            raise ValueError("--dither diffuses the error towards the model's own colours; use it with --palette means.")
        colors = image.distinct_palette(len(colors))
    if labels is not None:
        if dither != "none":
            raise ValueError("--dither and --smooth both choose each pixel's label; use one of them.")
        return labels, colors, measure_pixels(picture, labels, colors) if measure else None
    if dither == "none":
        pixel_labels = image.pixel_labels(picture, color_labels) if label_map else None
        return pixel_labels, colors, measure_colors(picture, color_labels, colors) if measure else None
    labels = dither_labels(picture, models.centers(model), space, serpentine)
    return labels, colors, measure_pixels(picture, labels, colors) if measure else None


# ------------------------------------------------------------ quality target

class QualityNotReached(ValueError):
    """Even the largest k allowed misses the quality target."""


# pixels drawn for the search pass: its mean ΔE00 has a standard error of about 0.01 (ΔE00's spread is 3-5);
# on the 12 MP mosaic 65,536 let the mixture's search wander to another k than the exact search's, 262,144 did not
SEARCH_SAMPLE = 262_144


@dataclass
class Search:
    """The result of `smallest_k`: the verified fit at the k found, and every k tried with its mean ΔE00."""

    k: int
    model: object
    color_labels: np.ndarray
    palette: np.ndarray
    quality: Quality
    tried: dict  # k -> mean ΔE00 of the search pass, in the order tried
    verified: dict  # k -> mean ΔE00 of the fit on every colour, in the order verified
    seconds: float


class _Colors:
    """Distinct colours with counts, in the fit's space and in L*a*b*: a fit and its mean ΔE00 on them."""

    def __init__(self, X, counts, lab, space):
        self.X, self.counts, self.lab, self.space = X, counts, lab, space

    def fit(self, model):
        """(model, labels of the colours, palette, mean ΔE00) of the model fitted to these colours."""
        labels = image.fit_colors(model, self.X, self.counts)
        palette = image.model_colors(model, self.space)
        delta_e = _colors_delta_e(self.lab, labels, palette)
        return model, labels, palette, float((delta_e * self.counts).sum() / self.counts.sum())


def smallest_k(picture, method, target, k_max=64, space="rgb", sample=SEARCH_SAMPLE, **options):
    """The smallest k whose painting with the fitted means has a mean ΔE00 of at most ``target``.

    Two passes. The search pass runs on ``sample`` pixels drawn at random
    (with replacement, as distinct colours with counts; seeded by
    ``random_state``): it doubles k from 1 (1, 2, 4, ...) until the target is
    met or ``k_max`` is reached, then bisects between the last k that missed
    and the first that met it. Only k = 1 starts from the estimator's own
    init; every larger k starts from the search fit of the largest smaller k
    that missed (`split_start`): its clusters with the largest squared error
    split in two, the way Linde, Buzo & Gray (1980) grow a codebook.

    The verification pass fits every distinct colour of the picture, to the
    estimator's own tolerance, at the k found, starting from that k's search
    fit, and measures its mean ΔE00 exactly. If it misses the target, k + 1
    is verified next, and so on; if it meets it, k − 1 is verified, and so on
    down. So the k returned meets the target on every pixel and k − 1 (when
    k > 1) was verified to miss it, each by a fit on all the colours. The
    sample only chooses which k to verify and where each verified fit starts.
    Mean ΔE00 usually falls as k grows but is not guaranteed to (each k is
    its own local optimum), so a smaller k never verified could also meet it.
    When the picture has no more distinct colours than ``sample``, or the
    sample has fewer than ``k_max``, the search runs on all the colours and is
    its own verification.

    Work shared between the k tried: the picture's distinct colours and their
    coordinates in ``space`` and in L*a*b*, computed once; the fits, each
    started from another (above). The palette found is therefore not the one
    ``emseg segment -k K`` fits from a k-means++ start; it is the same for the
    same input and options.

    Parameters
    ----------
    picture : image.Picture
    method : {'gmm', 'kmeans'}
    target : float
        The largest acceptable mean ΔE00.
    k_max : int
        The largest k tried; at most the number of distinct colours.
    space : {'rgb', 'lab', 'oklab'}
    sample : int
        Pixels drawn for the search pass.
    **options
        Passed to the estimator (``random_state``, ``max_iter``, ``tol``, ...).

    Raises
    ------
    QualityNotReached
        When even k_max misses the target.
    """
    start = time.perf_counter()
    every = _Colors(picture.in_space(space), picture.distinct[1], picture.in_space("lab"), space)
    k_max = min(k_max, len(every.X))
    searched, verified = {}, {}
    searching = every if len(every.X) <= sample else _sampled(every, sample, options.get("random_state"))
    if len(searching.X) < k_max:  # a sample of a few dominant colours cannot hold k_max clusters
        searching = every

    def search(k, grown_from):
        if grown_from is None:
            model = models.make_model(method, k, **options)
        else:
            model = models.make_started_model(
                method, *split_start(searching.X, searching.counts, searched[grown_from][1], grown_from, k), **options)
        searched[k] = searching.fit(model)
        return searched[k][3] <= target

    def verify(k):
        if k not in searched:
            search(k, max(j for j in searched if j < k))
        if searching is every:
            verified[k] = searched[k]
        else:
            verified[k] = every.fit(models.make_started_model(method, *models.start_of(searched[k][0]), **options))
        return verified[k][3] <= target

    missed, k = 0, 1
    while not search(k, missed or None) and k < k_max:
        missed, k = k, min(2 * k, k_max)
    met = k
    while met - missed > 1:  # missed misses the target, met meets it (or is k_max)
        middle = (missed + met) // 2
        if search(middle, missed):
            met = middle
        else:
            missed = middle
    k = met
    if verify(k):
        while k > 1 and verify(k - 1):
            k -= 1
    else:
        while True:
            if k == k_max:
                raise QualityNotReached(
                    f"--quality {target:g}: even k={k_max} gives a mean ΔE00 of {verified[k_max][3]:.3f}; "
                    f"raise --k-max or the target.")
            k += 1
            if verify(k):
                break
    model, color_labels, palette, _ = verified[k]
    quality = measure_colors(picture, color_labels, palette)
    return Search(k, model, color_labels, palette, quality, {j: fit[3] for j, fit in searched.items()},
                  {j: fit[3] for j, fit in verified.items()}, time.perf_counter() - start)


def _sampled(colors, n_pixels, random_state):
    """``n_pixels`` pixels drawn with replacement from distinct colours with counts, as distinct colours with counts."""
    drawn = check_random_state(random_state).multinomial(n_pixels, colors.counts / colors.counts.sum())
    keep = np.flatnonzero(drawn)
    return _Colors(colors.X[keep], drawn[keep].astype(np.float64), colors.lab[keep], colors.space)


def split_start(X, counts, labels, k0, k):
    """Start parameters for k clusters grown from a hard clustering of fewer: (weights, means, variances).

    The clusters' weights, means and per-feature variances are computed from
    ``labels``; the k − k₀ clusters with the largest weighted squared error
    Σ w‖x − μ‖² are each replaced by two, at μ ± σ_d e_d along their
    feature d of largest variance, each with half the weight and the same
    variances.

    Parameters
    ----------
    X : ndarray of shape (n_samples, n_features)
    counts : ndarray of shape (n_samples,)
    labels : ndarray of shape (n_samples,)
        In 0 .. k0 − 1.
    k0, k : int
        The clusters before and after, k0 < k <= 2 k0.
    """
    weights = np.bincount(labels, counts, minlength=k0)
    safe = np.maximum(weights, np.finfo(np.float64).tiny)  # keeps an empty cluster from dividing by zero
    means = np.stack([np.bincount(labels, counts * X[:, d], minlength=k0) for d in range(X.shape[1])], axis=1) / safe[:, None]
    deviations = X - means[labels]  # about the cluster's own mean, so the squares cannot cancel
    variances = np.stack([np.bincount(labels, counts * deviations[:, d] ** 2, minlength=k0)
                          for d in range(X.shape[1])], axis=1) / safe[:, None]
    split = np.argsort(-(weights * variances.sum(axis=1)), kind="stable")[: k - k0]
    axis = np.argmax(variances[split], axis=1)
    step = np.zeros((len(split), X.shape[1]))
    step[np.arange(len(split)), axis] = np.sqrt(variances[split, axis])
    weights[split] /= 2
    moved = means.copy()
    moved[split] -= step
    return (np.concatenate([weights, weights[split]]), np.concatenate([moved, means[split] + step]),
            np.concatenate([variances, variances[split]]))
