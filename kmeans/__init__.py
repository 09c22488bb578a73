"""Lloyd's k-means with greedy k-means++ seeding, written with NumPy and numba: the bottom layer.

``KMeans`` is a scikit-learn estimator that gives scikit-learn's numbers from
the same start; ``kmeans_plusplus`` is its seeding alone. ``kmeans.shared``
holds what the Gaussian mixture in `em` shares with it: checks, the trace,
chunking, distinct rows, per-cluster sums and the dask row-block plumbing; ``kmeans.spatial`` ICM on a pixel
grid with a Potts prior, and the grid's neighbourhoods.
"""

from .estimator import KMeans, kmeans_plusplus

__all__ = ["KMeans", "kmeans_plusplus"]
