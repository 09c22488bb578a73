"""Diagonal-covariance Gaussian mixtures fitted by EM, and the image pipeline built on them."""

from .estimator import GaussianMixture

__all__ = ["GaussianMixture"]
