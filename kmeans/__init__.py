"""Lloyd's k-means with greedy k-means++ seeding, written with NumPy and numba.

``KMeans`` is a scikit-learn estimator that gives scikit-learn's numbers from
the same start; ``kmeans_plusplus`` is its seeding alone. The Gaussian mixture
in `em` uses both to initialise.
"""

from .estimator import KMeans, kmeans_plusplus

__all__ = ["KMeans", "kmeans_plusplus"]
