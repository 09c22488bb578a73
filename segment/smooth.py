r"""Spatial smoothing of a segmentation with a Potts prior on the pixel grid, and the mixture's soft maps.

`refine` starts from the ordinary fit on the distinct colours and refines it
on the pixel grid: mean-field EM for a mixture (`em.spatial`), ICM for k-means
(`kmeans.spatial`), with the same β for both. β = 0 is the ordinary fit
itself: nothing is refitted, the labels are those of the colours.

`SoftMaps` gives a mixture's responsibilities one component at a time, and
their entropy, as (height, width) arrays; `save` writes them as 16-bit PNGs.
Neither ever holds (n_pixels, n_components) float64: the refined fit keeps its
responsibilities in float32, the ordinary fit per distinct colour.
"""

from pathlib import Path

import numpy as np

from em import spatial as em_spatial
from kmeans import spatial as kmeans_spatial

from . import image, models

GREY_LEVELS = 65535  # 16-bit maps: a step of 1.5e-5, where 8 bits (1/255 = 0.004) would erase small responsibilities


def check(beta, neighbours):
    """Raise ValueError unless β >= 0 is finite and the neighbourhood is 4 or 8."""
    kmeans_spatial.check_beta(beta)
    kmeans_spatial.neighbour_offsets(neighbours)


def refine(model, picture, color_labels, space="rgb", beta=0.0, neighbours=4, callback=None):
    """Each pixel's label after refining a fitted model on the pixel grid with a Potts prior of strength ``beta``.

    Parameters
    ----------
    model : em.GaussianMixture or kmeans.KMeans
        Fitted on the picture's distinct colours in ``space``; with β > 0 its
        parameters are replaced by the refined ones (means, centres, ...).
    picture : image.Picture
    color_labels : ndarray of shape (n_colors,)
        The ordinary fit's label of each distinct colour.
    beta : float
        β >= 0; 0 returns the ordinary fit's labels, exactly.
    neighbours : {4, 8}
    callback : callable or None
        ``callback(n_iter, objective)`` after every grid iteration: the free energy per
        pixel for a mixture, the ICM cost per pixel for k-means.

    Returns
    -------
    labels : ndarray of shape (height, width), int64
        -1 where transparent.
    soft : SoftMaps or None
        A mixture's refined responsibilities (None for k-means and for β = 0).
    """
    check(beta, neighbours)
    if beta == 0 or len(picture.distinct[0]) == 0:
        return image.pixel_labels(picture, color_labels), None
    index, colors = image.color_index(picture), picture.in_space(space)
    if models.method_of(model) == "kmeans":
        centers, labels, _ = kmeans_spatial.icm(index, colors, model.cluster_centers_,
                                                image.pixel_labels(picture, color_labels), beta, neighbours,
                                                max_iter=model.max_iter, callback=callback)
        model.cluster_centers_ = centers
        return labels, None
    fit = em_spatial.fit_grid(model, index, colors, beta, neighbours, callback=callback)
    labels = fit.resp.argmax(axis=2)  # ties to the lowest k, as predict
    labels[~picture.mask] = -1
    return labels, SoftMaps(picture, resp=fit.resp)


class SoftMaps:
    """A mixture's responsibilities per pixel, one component at a time, and their entropy.

    Built from the refined fit's (height, width, K) float32 responsibilities,
    or from a fitted mixture's responsibilities of each distinct colour
    (`of_model`). Transparent pixels get 0 everywhere.
    """

    def __init__(self, picture, resp=None, color_resp=None):
        self.picture, self.resp, self.color_resp = picture, resp, color_resp
        self.n_components = (resp if resp is not None else color_resp).shape[-1]

    @classmethod
    def of_model(cls, model, picture, space="rgb"):
        """The soft maps of a fitted mixture without smoothing: its responsibilities of each distinct colour."""
        if models.method_of(model) != "gmm":
            raise ValueError("k-means assigns each pixel wholly to one cluster; soft maps need --method gmm.")
        return cls(picture, color_resp=model.predict_proba(picture.in_space(space)))

    def component(self, k):
        """Responsibility of component k for each pixel, (height, width) float64 in [0, 1]."""
        if self.resp is not None:
            return self.resp[:, :, k].astype(np.float64)
        values = np.zeros(self.picture.rgb.shape[:2], dtype=np.float64)
        values[self.picture.mask] = self.color_resp[self.picture.distinct[2], k]
        return values

    def entropy(self):
        r"""Entropy of each pixel's responsibilities in nats, :math:`-\sum_k \gamma_k \log \gamma_k`, (height, width).

        0 for a pixel wholly in one component, at most :math:`\log K`. Summed one component at a time.
        """
        total = np.zeros(self.picture.rgb.shape[:2], dtype=np.float64)
        for k in range(self.n_components):
            values = self.component(k)
            total -= values * np.log(np.where(values > 0, values, 1.0))  # 0 log 0 = 0
        return total

    def save(self, folder, stem):
        """Write component k as FOLDER/STEM_pKK.png, 16-bit grey, value round(γ · 65535); returns the paths."""
        folder = Path(folder)
        return [image.save_grey16(folder / f"{stem}_p{k:02d}.png", self.component(k)) for k in range(self.n_components)]

    def save_uncertainty(self, path):
        """Write the entropy divided by log K (0: certain, 1: every component equally likely) as a 16-bit PNG."""
        scale = 1.0 / np.log(self.n_components) if self.n_components > 1 else 0.0
        return image.save_grey16(path, np.clip(self.entropy() * scale, 0.0, 1.0))
