"""The two kinds of model the application fits, and the one place that tells them apart.

'gmm' is `em.GaussianMixture` and 'kmeans' is `kmeans.KMeans`: the names of
``emseg --method`` and of the "method" in model.json. Everywhere else in the
application a model is just a fitted estimator.
"""

import numpy as np

from em import GaussianMixture, select_model
from em.reference import COVARIANCE_TYPES
from kmeans import KMeans

ESTIMATORS = {"gmm": GaussianMixture, "kmeans": KMeans}
K_PARAMETER = {"gmm": "n_components", "kmeans": "n_clusters"}
# the fitted attributes model.json holds, by their names there
SAVED = {"gmm": ("weights", "means", "covariances"), "kmeans": ("cluster_centers",)}


def method_of(model):
    """'gmm' or 'kmeans'."""
    return "gmm" if isinstance(model, GaussianMixture) else "kmeans"


def make_model(method, k, **options):
    """An unfitted estimator of ``method`` with k components or clusters."""
    return ESTIMATORS[method](k, **options)


def make_started_model(method, weights, means, variances, reg_covar=1e-6, **options):
    """An unfitted estimator of ``method`` that starts from the given parameters instead of its own init.

    k-means starts from ``means`` (``init``); the mixture from all three, with
    precisions 1 / (variances + reg_covar) so a zero variance stays finite.
    """
    if method == "kmeans":
        return KMeans(len(means), init=means, n_init=1, **options)
    return GaussianMixture(len(means), weights_init=weights / weights.sum(), means_init=means,
                           precisions_init=1.0 / (variances + reg_covar), reg_covar=reg_covar, **options)


def start_of(model):
    """(weights, means, variances) of a fitted model, to start another with `make_started_model`."""
    if method_of(model) == "kmeans":
        return None, model.cluster_centers_, None
    return model.weights_, model.means_, model.covariances_


def select(colors, counts, k, covariance_type, k_max=16, **options):
    """``-k auto`` / ``--covariance auto``: mixtures fitted to weighted colours and ranked by BIC; (table, best).

    ``k`` is a number, or 'auto' for every k from 2 to ``k_max`` (at most the
    number of colours); ``covariance_type`` is a type, or 'auto' for all four.
    ``options`` go to every `em.GaussianMixture` (``random_state``, ``max_iter``, ``tol``).
    The table is `em.select_model`'s; `criterion_table` prints it.
    """
    k_max = min(k_max, len(colors)) if k == "auto" else k
    k_range = range(min(2, k_max), k_max + 1) if k == "auto" else [k]
    types = COVARIANCE_TYPES if covariance_type == "auto" else (covariance_type,)
    return select_model(colors, k_range, types, criterion="bic", sample_weight=counts, **options)


def criterion_table(table, best):
    """`select`'s table as text, one line per fit: how it was started (k-means, or split from the k-1 fit), the chosen one marked."""
    lines = [f"{'covariance':<11}{'k':>4}{'parameters':>12}{'BIC':>18}  start"]
    for row in table:
        chosen = row["k"] == best.n_components and row["covariance_type"] == best.covariance_type
        start = "split k-1" if row["warm_started"] else "k-means"  # em.select_model's warm start, said openly
        lines.append(f"{row['covariance_type']:<11}{row['k']:>4}{row['n_parameters']:>12}{row['bic']:>18.1f}  {start:<9}"
                     + ("  <- best" if chosen else ""))
    return "\n".join(lines) + "\n"


def k_of(model):
    return getattr(model, K_PARAMETER[method_of(model)])


def set_k(model, k):
    """Set the number of components or clusters of an unfitted model."""
    return model.set_params(**{K_PARAMETER[method_of(model)]: k})


def centers(model):
    """Each component's mean or each cluster's centre, shape (k, n_features)."""
    return model.means_ if method_of(model) == "gmm" else model.cluster_centers_


def fitted_parameters(model):
    """The fitted parameters model.json holds, by name (a mixture's covariance type too)."""
    parameters = {name: getattr(model, name + "_") for name in SAVED[method_of(model)]}
    if method_of(model) == "gmm":
        parameters["covariance_type"] = model.covariance_type
    return parameters


def restore(method, parameters):
    """A fitted estimator from its parameters (as `fitted_parameters` gives them)."""
    if method == "gmm":
        means, covariances = np.asarray(parameters["means"]), np.asarray(parameters["covariances"])
        covariance_type = parameters.get("covariance_type") or covariance_type_of(means, covariances)
        model = GaussianMixture(len(parameters["weights"]), covariance_type=covariance_type)
        model._set_params(np.asarray(parameters["weights"]), means, covariances)
    else:
        model = KMeans(len(parameters["cluster_centers"]))
        model.cluster_centers_ = parameters["cluster_centers"]
    model.n_features_in_ = centers(model).shape[1]
    return model


def covariance_type_of(means, covariances):
    """The covariance type of arrays shaped as ``covariances_`` (a trace row); 'diag' when K = D makes tied look alike."""
    if covariances.ndim != 2:
        return "full" if covariances.ndim == 3 else "spherical"
    return "diag" if covariances.shape == means.shape else "tied"


def trace_method(trace):
    """'gmm' or 'kmeans': which estimator recorded the ``trace_``."""
    return "kmeans" if "centers" in trace else "gmm"


def trace_model(trace, t, covariance_type=None):
    """The fitted estimator of row t of a trace; a mixture's ``covariance_type`` is needed when K = D (see `covariance_type_of`)."""
    if trace_method(trace) == "kmeans":
        return restore("kmeans", dict(cluster_centers=trace["centers"][t]))
    return restore("gmm", dict(weights=trace["weights"][t], means=trace["means"][t], covariances=trace["variances"][t],
                               covariance_type=covariance_type))


def objective(trace):
    """The name and the values of the trace's objective: ``("lower_bound", ...)`` or ``("inertia", ...)``."""
    name = "inertia" if trace_method(trace) == "kmeans" else "lower_bound"
    return name, trace[name]
