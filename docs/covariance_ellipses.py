"""Draw docs/covariance_types.png: the four covariance types fitted to the same pixels, as ellipses.

Run from the repository root (needs matplotlib: pip install 'emseg[bench]')::

    python docs/covariance_ellipses.py

The pixels are china.jpg's, in two channels (red and blue) so that every
ellipse is the fitted covariance itself, not a projection of it. Each type is
fitted with k=5 from the same seed; each ellipse is one component's
two-standard-deviation contour, drawn with a line width that grows with the
component's weight.
"""

import sys
from pathlib import Path

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.patches import Ellipse
from sklearn.datasets import load_sample_image

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from em import GaussianMixture  # noqa: E402
from em.reference import COVARIANCE_TYPES  # noqa: E402
from segment import image  # noqa: E402

K, SEED, CHANNELS, SHOWN = 5, 0, (0, 2), 6000


def covariance_matrices(model):
    """Each component's 2 x 2 covariance, whatever the type's shape."""
    covariances = model.covariances_
    if model.covariance_type == "full":
        return covariances
    if model.covariance_type == "tied":
        return np.repeat(covariances[None], K, axis=0)
    if model.covariance_type == "diag":
        return np.array([np.diag(c) for c in covariances])
    return np.array([c * np.eye(2) for c in covariances])


def main():
    colors, counts, _ = image.distinct_colors(load_sample_image("china.jpg"))
    X = colors[:, CHANNELS]
    rng = np.random.default_rng(SEED)
    shown = rng.choice(len(colors), SHOWN, p=counts / counts.sum())  # pixels drawn as the photo has them
    figure = Figure(figsize=(10, 10), layout="constrained")
    FigureCanvasAgg(figure)
    for axes, covariance_type in zip(figure.subplots(2, 2).ravel(), COVARIANCE_TYPES):
        model = GaussianMixture(K, covariance_type=covariance_type, random_state=SEED).fit(X, sample_weight=counts)
        axes.scatter(X[shown, 0], X[shown, 1], s=3, c=colors[shown] / 255, linewidths=0)
        for mean, covariance, weight in zip(model.means_, covariance_matrices(model), model.weights_):
            values, vectors = np.linalg.eigh(covariance)
            angle = np.degrees(np.arctan2(vectors[1, 1], vectors[0, 1]))
            width, height = 2 * 2 * np.sqrt(values[::-1])  # two standard deviations each side
            axes.add_patch(Ellipse(mean, width, height, angle=angle, fill=False, color="black",
                                   linewidth=1 + 6 * weight))
        axes.set(xlim=(0, 255), ylim=(0, 255), xlabel="red", ylabel="blue", aspect="equal")
        axes.set_title(f"{covariance_type}: {model._n_parameters()} parameters, "
                       f"log-likelihood {model.lower_bound_:.3f} per pixel", fontsize=10)
    figure.suptitle(f"china.jpg, red and blue: k={K} components of each covariance type (2σ contours)")
    figure.savefig(ROOT / "docs" / "covariance_types.png", dpi=80)
    print(ROOT / "docs" / "covariance_types.png")


if __name__ == "__main__":
    main()
