"""model.json: a fitted colour model as a JSON document, written by ``emseg batch`` and read by ``segment --model``.

Reading uses `json` only, so a model file is data and never code. Every field
is checked before a model is built, and a file that breaks any rule gives one
`ModelFileError` naming the file and the rule.

The schema, version 1 (``format`` absent: a file written before emseg numbered
the format, read as version 1):

=================  =============================================================
format             1; a larger number is refused (written by a newer emseg)
emseg_version      the version that wrote the file (a string, for the record)
method             "gmm" or "kmeans"
space              "rgb", "lab" or "oklab" (absent: "rgb", the only space then)
k                  a whole number, at least 1
palette            k rows of 3 whole numbers in 0..255: the painted colours
parameters         gmm: "weights" (k), "means" (k, 3), "covariance_type" and
                   "covariances" of its shape: spherical (k), diag (k, 3),
                   full (k, 3, 3), tied (3, 3); kmeans: "cluster_centers" (k, 3)
=================  =============================================================

Every number is finite; variances are positive and covariance matrices
positive definite (their Cholesky factor exists); weights are non-negative and
sum to 1 within the rounding of the M-step that made them (`weights_sum_tolerance`).
"""

import json
from pathlib import Path

import numpy as np

from em.reference import COVARIANCE_TYPES
from . import colour, image, models

FORMAT = 1
N_FEATURES = 3  # a colour model: three channels
COVARIANCE_SHAPES = {"spherical": lambda k: (k,), "diag": lambda k: (k, N_FEATURES),
                     "full": lambda k: (k, N_FEATURES, N_FEATURES), "tied": lambda k: (N_FEATURES, N_FEATURES)}


class ModelFileError(ValueError):
    """A model file that cannot be used; the message names the file and what is wrong."""


def document(model, palette, version, space="rgb"):
    """The JSON document (a dict) of a fitted model, its palette and the colour space it was fitted in.

    Floats keep all their digits (``json`` writes ``repr``), so the model read back is the same model.
    """
    return dict(
        format=FORMAT, emseg_version=version, method=models.method_of(model), space=space, k=len(palette),
        palette=np.asarray(palette).tolist(),
        parameters={name: value if isinstance(value, str) else np.asarray(value).tolist()
                    for name, value in models.fitted_parameters(model).items()},
    )


def save(path, model, palette, space="rgb"):
    """Write model.json atomically: `document` with this emseg's version."""
    return image.save_text(path, json.dumps(document(model, palette, version(), space), indent=1) + "\n")


def read(path):
    """Read and check model.json: (fitted estimator, palette uint8 of shape (k, 3), space)."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ModelFileError(f"{path}: no such model file; check the path.") from None
    except (OSError, UnicodeDecodeError) as error:
        raise ModelFileError(f"{path} cannot be read as a model file ({error}).") from None
    try:
        doc = json.loads(text, parse_constant=_refuse_constant)
        return restore(doc)
    except (json.JSONDecodeError, RecursionError) as error:
        raise ModelFileError(f"{path} is not valid JSON ({str(error) or 'nested too deeply'}); "
                             "it may be truncated: write it again with emseg batch --shared-model.") from None
    except ValueError as error:
        raise ModelFileError(f"{path} is not a usable emseg model file: {error}") from None


def restore(doc):
    """The (fitted estimator, palette, space) of a model document, after checking it against the schema."""
    _check(isinstance(doc, dict), "the file holds no JSON object")
    version = doc.get("format", FORMAT)
    _check(_is_int(version) and version >= 1, f"format {version!r} is not a format number")
    if version > FORMAT:
        raise ValueError(f"it is in format {version}, written by a newer emseg; this emseg reads format "
                         f"{FORMAT}: upgrade emseg (pip install -U emseg).")
    method = doc.get("method")
    _check(method in models.ESTIMATORS, f"method {method!r} is not 'gmm' or 'kmeans'")
    space = doc.get("space", "rgb")
    _check(space in colour.SPACES, f"space {space!r} is not one of {', '.join(colour.SPACES)}")
    k = doc.get("k")
    _check(_is_int(k) and k >= 1, f"k {k!r} is not a whole number of at least 1")
    palette = _array(doc, "palette", (k, N_FEATURES))
    _check(np.all(palette == np.rint(palette)) and palette.min() >= 0 and palette.max() <= 255,
           "palette holds values that are not whole numbers in 0..255")
    parameters = doc.get("parameters")
    _check(isinstance(parameters, dict), "parameters is missing or not an object")
    if method == "kmeans":
        values = dict(cluster_centers=_array(parameters, "cluster_centers", (k, N_FEATURES)))
    else:
        values = _mixture_parameters(parameters, k)
    return models.restore(method, values), palette.astype(np.uint8), space


def _mixture_parameters(parameters, k):
    covariance_type = parameters.get("covariance_type", "diag")  # absent in files of diagonal-only emseg
    _check(covariance_type in COVARIANCE_TYPES, f"covariance_type {covariance_type!r} is not one of "
                                                f"{', '.join(COVARIANCE_TYPES)}")
    weights = _array(parameters, "weights", (k,))
    _check(weights.min() >= 0, "weights holds a negative weight")
    tolerance = weights_sum_tolerance(k)
    _check(abs(weights.sum() - 1.0) <= tolerance, f"weights sum to {weights.sum()!r}, not to 1 within {tolerance:.1e}")
    covariances = _array(parameters, "covariances", COVARIANCE_SHAPES[covariance_type](k))
    if covariance_type in ("spherical", "diag"):
        _check(covariances.min() > 0, "covariances holds a variance that is not positive")
    else:
        try:
            np.linalg.cholesky(covariances)
        except np.linalg.LinAlgError:
            raise ValueError("covariances holds a matrix that is not positive definite") from None
    return dict(weights=weights, means=_array(parameters, "means", (k, N_FEATURES)), covariances=covariances,
                covariance_type=covariance_type)


def weights_sum_tolerance(k):
    """How far from 1 the sum of k mixture weights written by emseg can be: (2k + 1) u.

    The M-step forms S = Σ Nₖ (k − 1 roundings of at most u, relative), then
    each πₖ = Nₖ / S (one more); summing the k weights here adds k − 1. To
    first order |Σ πₖ − 1| ≤ (2k − 1) u; 2u more covers the second-order terms.
    The JSON round trip is exact, so a file that misses this was edited.
    """
    return (2 * k + 1) * np.finfo(np.float64).eps / 2


def _array(container, name, shape):
    """``container[name]`` as a float64 array of ``shape`` whose values are all finite numbers."""
    _check(name in container, f"{name} is missing")
    try:
        values = np.array(container[name], dtype=np.float64)
    except (TypeError, ValueError, OverflowError):
        raise ValueError(f"{name} is not an array of numbers") from None
    _check(values.shape == shape, f"{name} has shape {values.shape}, expected {shape}")
    _check(np.all(np.isfinite(values)), f"{name} holds a value that is not a finite number")
    return values


def _is_int(value):
    return isinstance(value, int) and not isinstance(value, bool)


def _check(condition, message):
    if not condition:
        raise ValueError(message + ".")


def _refuse_constant(name):
    raise ValueError(f"the file holds {name}, which is not a finite number.")


def version():
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("emseg")
    except PackageNotFoundError:
        return "unknown"
