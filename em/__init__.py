"""Gaussian mixtures (diagonal by default; full, tied, spherical) fitted by EM: numerics only, no images or files.

``GaussianMixture`` is the estimator, ``select_model`` picks k and the type by BIC/AIC/ICL; ``reference``
the readable NumPy steps, ``_kernels`` the numba ones, ``distributed`` the same sums over dask row blocks,
``spatial`` mean-field EM with a Potts prior on a pixel grid.
"""

from .estimator import GaussianMixture
from .selection import select_model

__all__ = ["GaussianMixture", "select_model"]
