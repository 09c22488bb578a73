r"""The HTML report of a fit: EM (or Lloyd) iteration by iteration, on the pixels of a real photo.

One self-contained page: the data, the script and the style are inline, and the
page's Content-Security-Policy forbids every request, so it opens from disk with
no network. The page (``report_page.html`` beside this file) draws

* the image's distinct colours in a chosen pair of channels, with each
  component's mean and 1σ/2σ ellipses (k-means: centres and the boundaries of
  their cells) at the iteration chosen on a slider;
* the label map painted with the means and the uncertainty of each pixel (the
  entropy of its responsibilities), computed in the page from that
  iteration's parameters on a shrunken copy of the image; hovering a pixel
  shows its responsibilities;
* the log-likelihood and the lower bound after every half-step
  (:func:`gmm_half_steps`), or the inertia after every half-step of Lloyd's
  algorithm (:func:`kmeans_half_steps`);
* the parameters at the chosen iteration.

The page stays small whatever the photo's size: the scatter holds at most
``MAX_POINTS`` distinct colours and the image view a copy at most
``IMAGE_SIDE`` pixels on its longest side; only the parameters grow, with k
and the iterations.
"""

import base64
import html
import json
from importlib import resources

import numpy as np

from em import reference
from kmeans import reference as kmeans_reference

from . import image, models

MAX_POINTS = 4000  # distinct colours drawn in the scatter; SVG stays responsive up to a few thousand
IMAGE_SIDE = 320  # longest side of the image view's copy: 320 x 240 x 3 bytes is 300 KB in base64
CHUNK_ROWS = 1 << 16  # rows per block in the half-step sums: (rows, K, D) float64 stays below ~16 MB for K=10
TEMPLATE = "report_page.html"


# --------------------------------------------------------------- the half-steps

def bound_terms(X, log_resp, weights, means, variances):
    r"""Each sample's lower bound :math:`F_n(q, \theta)` for responsibilities q and parameters θ.

    .. math::
        F_n(q, \theta) = \sum_k q_{nk} \big[\log \pi_k + \log \mathcal{N}(x_n \mid \mu_k, \sigma^2_k)
                         - \log q_{nk}\big] \;\le\; \log p(x_n \mid \theta)

    with equality when :math:`q_n` is the posterior :math:`p(z_n \mid x_n, \theta)`;
    the difference is :math:`\mathrm{KL}(q_n \,\|\, p(z_n \mid x_n, \theta))`.

    Parameters
    ----------
    X : ndarray of shape (n_samples, n_features)
    log_resp : ndarray of shape (n_samples, n_components)
        :math:`\log q_{nk}`; may hold -inf.
    weights : ndarray of shape (n_components,)
    means, variances : ndarray of shape (n_components, n_features)

    Returns
    -------
    bound : ndarray of shape (n_samples,)
    """
    log_joint = reference.log_gaussian_prob(X, means, 1.0 / variances) + np.log(weights)
    resp = np.exp(log_resp)
    with np.errstate(invalid="ignore"):  # 0 * (a - (-inf)) is NaN; it is replaced below
        terms = resp * (log_joint - log_resp)
    return np.where(resp > 0, terms, 0.0).sum(axis=1)  # q log q -> 0 as q -> 0: an unused component adds nothing


def gmm_half_steps(trace, X, sample_weight):
    r"""The log-likelihood and the lower bound after each half-step of EM, from a mixture's ``trace_``.

    With :math:`\theta_t` the parameters of row t and
    :math:`q_t = p(z \mid x, \theta_t)` the responsibilities its E-step computes,
    all as means over the samples weighted by :math:`w_n`:

    * after the E-step at :math:`\theta_t` the bound touches the log-likelihood,
      :math:`F(q_t, \theta_t) = \ell(\theta_t)`;
    * after the M-step, :math:`F(q_t, \theta_{t+1}) \le \ell(\theta_{t+1})`, and the
      gap is :math:`\frac{1}{W}\sum_n w_n \mathrm{KL}(q_{t,n} \,\|\, p(z_n \mid x_n, \theta_{t+1}))`.

    Computed with the functions of ``em.reference``, a block of rows at a time.

    Parameters
    ----------
    trace : dict of ndarray
        ``GaussianMixture(trace=True).fit(X, sample_weight).trace_``.
    X : ndarray of shape (n_samples, n_features)
    sample_weight : ndarray of shape (n_samples,)

    Returns
    -------
    log_lik : ndarray of shape (n_rows,)
        :math:`\ell(\theta_t)`, the weighted mean of :math:`\log p(x_n \mid \theta_t)`.
    bound_after_m : ndarray of shape (n_rows,)
        :math:`F(q_{t-1}, \theta_t)`; NaN in row 0, which no M-step made.
    """
    params = [(trace["weights"][t], trace["means"][t], trace["variances"][t]) for t in range(len(trace["iteration"]))]
    log_lik, bound_after_m = np.zeros(len(params)), np.zeros(len(params))
    for rows in _blocks(len(X)):
        x, w = X[rows], sample_weight[rows]
        for t, (weights, means, variances) in enumerate(params):
            log_resp, log_norm = reference.e_step(x, means, 1.0 / variances, np.log(weights))
            log_lik[t] += w @ log_norm
            if t + 1 < len(params):
                bound_after_m[t + 1] += w @ bound_terms(x, log_resp, *params[t + 1])
    bound_after_m[0] = np.nan
    return log_lik / sample_weight.sum(), bound_after_m / sample_weight.sum()


def kmeans_half_steps(trace, X, sample_weight):
    r"""The inertia after each half-step of Lloyd's algorithm, and each cluster's share, from a ``KMeans.trace_``.

    Lloyd's algorithm lowers :math:`J(z, c) = \sum_n w_n \lVert x_n - c_{z_n} \rVert^2`
    one argument at a time, as EM raises its bound: the assignment step
    chooses the labels :math:`z_t` nearest to the centres :math:`c_t`, the update
    step the centres :math:`c_{t+1}` that are the means of those labels.

    Returns
    -------
    after_assignment : ndarray of shape (n_rows,)
        :math:`J(z_t, c_t)`.
    after_update : ndarray of shape (n_rows,)
        :math:`J(z_{t-1}, c_t)`; NaN in row 0.
    shares : ndarray of shape (n_rows, n_clusters)
        The fraction of the total weight labelled k under the centres of row t.
    """
    centers = trace["centers"]
    n_rows, n_clusters = centers.shape[:2]
    after_assignment, after_update = np.zeros(n_rows), np.zeros(n_rows)
    shares = np.zeros((n_rows, n_clusters))
    for rows in _blocks(len(X)):
        x, w = X[rows], sample_weight[rows]
        for t in range(n_rows):
            labels, inertia = kmeans_reference.assign_labels(x, w, centers[t])
            after_assignment[t] += inertia
            shares[t] += np.bincount(labels, weights=w, minlength=n_clusters)
            if t + 1 < n_rows:
                after_update[t + 1] += w @ ((x - centers[t + 1][labels]) ** 2).sum(axis=1)
    after_update[0] = np.nan
    return after_assignment, after_update, shares / sample_weight.sum()


def _blocks(n_rows):
    return [slice(start, start + CHUNK_ROWS) for start in range(0, n_rows, CHUNK_ROWS)]


# ------------------------------------------------------------------ the page

def scatter_sample(counts, max_points, random_state=0):
    """Indices of at most ``max_points`` distinct colours for the scatter, drawn in proportion to their counts.

    Every colour is kept when there are few enough. Otherwise the draw is
    without replacement, so the most frequent colours are nearly always in.
    The indices come back with the largest count first, so that small points
    are drawn over large ones.
    """
    if len(counts) <= max_points:
        chosen = np.arange(len(counts))
    else:
        rng = np.random.default_rng(random_state)
        chosen = rng.choice(len(counts), size=max_points, replace=False, p=counts / counts.sum())
    return chosen[np.argsort(-counts[chosen], kind="stable")]


def report_data(picture, model, name, longest=IMAGE_SIDE, max_points=MAX_POINTS, random_state=0):
    """Everything the page draws, as a JSON-ready dict: the fit's trace and half-steps, the scatter, the image."""
    if not hasattr(model, "trace_"):
        raise ValueError("the report needs the iterations of the fit: fit the model with trace=True.")
    trace, method = model.trace_, models.method_of(model)
    colors, counts, _ = picture.distinct
    X, sample_weight = colors.astype(np.float64), counts.astype(np.float64)
    if method == "gmm":
        log_lik, bound_after_m = gmm_half_steps(trace, X, sample_weight)
        rows = [dict(weights=trace["weights"][t].tolist(), means=trace["means"][t].tolist(),
                     variances=trace["variances"][t].tolist()) for t in range(len(log_lik))]
        curves = dict(log_lik=log_lik.tolist(), bound_after_m=_nan_to_none(bound_after_m))
        options = dict(reg_covar=model.reg_covar, tol=model.tol)
    else:
        after_assignment, after_update, shares = kmeans_half_steps(trace, X, sample_weight)
        rows = [dict(centers=trace["centers"][t].tolist(), shares=shares[t].tolist()) for t in range(len(shares))]
        curves = dict(after_assignment=after_assignment.tolist(), after_update=_nan_to_none(after_update))
        options = dict(tol=model.tol)
    shown = scatter_sample(counts, max_points, random_state)
    small = image.thumbnail(picture, longest)
    height, width = picture.rgb.shape[:2]
    return dict(
        name=name, method=method, k=models.k_of(model), seed=model.random_state, n_iter=int(model.n_iter_),
        converged=bool(getattr(model, "converged_", True)), options=options,
        n_pixels=int(counts.sum()), width=width, height=height, n_colors=len(colors),
        rows=rows, curves=curves,
        scatter=dict(colors=_base64(colors[shown]), counts=counts[shown].tolist(),
                     pixel_share=float(counts[shown].sum() / counts.sum())),
        image=dict(width=small.rgb.shape[1], height=small.rgb.shape[0], pixels=_base64(small.rgb),
                   mask=None if small.alpha is None else _base64(small.mask.astype(np.uint8))),
    )


def build(picture, model, name="the image", longest=IMAGE_SIDE, max_points=MAX_POINTS, random_state=0):
    """The report page as HTML text, for a model fitted on ``picture`` with ``trace=True``.

    Parameters
    ----------
    picture : segment.image.Picture
        The picture the model was fitted on (by :func:`segment.image.fit_labels`).
    model : em.GaussianMixture or kmeans.KMeans
    name : str
        What the page calls the image.
    longest : int
        Longest side of the image view's copy, in pixels.
    max_points : int
        Most distinct colours drawn in the scatter.
    random_state : int
        Seed of the scatter's draw of colours.
    """
    data = report_data(picture, model, name, longest, max_points, random_state)
    # "</" would end the script element early; "<\/" is the same JSON string
    payload = json.dumps(data, allow_nan=False, separators=(",", ":")).replace("</", "<\\/")
    template = resources.files(__package__).joinpath(TEMPLATE).read_text(encoding="utf-8")
    title = f"EM on {name}" if data["method"] == "gmm" else f"k-means on {name}"
    return template.replace("__TITLE__", html.escape(title)).replace("__REPORT_DATA__", payload)


def _base64(array):
    return base64.b64encode(np.ascontiguousarray(array, dtype=np.uint8).tobytes()).decode("ascii")


def _nan_to_none(values):
    return [None if np.isnan(v) else float(v) for v in values]
