"""Diagonal-covariance Gaussian mixtures fitted by EM: numerics only, no images and no files.

``GaussianMixture`` is the estimator; ``reference`` the readable NumPy steps,
``_kernels`` the numba ones, ``distributed`` the same sums over dask row blocks.
"""

from .estimator import GaussianMixture

__all__ = ["GaussianMixture"]
