r"""See EM at work: the trace as CSV or JSON, animation frames, a convergence plot, and EM step by step.

Everything here computes and returns numbers, text or figures; ``segment/image.py``
writes the files. The walk-through of the algorithm itself is ``docs/em.md``.

A trace is the ``trace_`` attribute of a fitted ``GaussianMixture`` or
``KMeans`` (``trace=True``): a dict of arrays whose row t holds the parameters
after t iterations, row 0 the initial ones. The objective in row t
(``lower_bound`` or ``inertia``) was computed by iteration t's first step, so
under the parameters of row t - 1; row 0 has none (NaN).
"""

import json
import math

import numpy as np

from em import GaussianMixture, reference
from em.estimator import evaluation_precisions

from . import image, models
from .models import objective

FEATURE_NAMES = ("R", "G", "B")


class MissingDependency(ImportError):
    """An optional package is not installed; the message says how to install it."""


# ----------------------------------------------------------------- the trace

def trace_csv(trace):
    """The trace as CSV text: one line per row, one column per number.

    A column of shape (n_rows,) keeps its name; ``means`` of shape
    (n_rows, K, D) becomes ``means_0_0, means_0_1, ...`` (component, then
    feature), and likewise for ``weights``, ``variances`` and ``centers``.
    Numbers are written with ``repr``, which reads back to the same float (an
    integer stays an integer); the missing objective of row 0 is ``nan``.
    """
    names = []
    for key, values in trace.items():
        if values.ndim == 1:
            names.append(key)
        else:
            names.extend(f"{key}_" + "_".join(map(str, index)) for index in np.ndindex(values.shape[1:]))
    blocks = [values.reshape(len(values), -1).tolist() for values in trace.values()]
    lines = [",".join(names)] + [",".join(repr(v) for block in row for v in block) for row in zip(*blocks)]
    return "\n".join(lines) + "\n"


def trace_json(trace):
    """The trace as JSON text: an object with the trace's keys, each a (nested) list; NaN becomes null."""
    return json.dumps({key: _without_nan(values.tolist()) for key, values in trace.items()}, allow_nan=False) + "\n"


def _without_nan(value):
    if isinstance(value, list):
        return [_without_nan(item) for item in value]
    return None if isinstance(value, float) and math.isnan(value) else value


# ------------------------------------------------------------- the animation

def animation_frames(trace, picture, longest=480, space="rgb", covariance_type=None):
    """One image per trace row: the picture's pixels painted with that row's means (or centres).

    Each row's labels are predicted on the picture's distinct colours and
    mapped back to the pixels through the inverse index, so a frame costs
    one pass over the distinct colours. The frames are resized for display
    only (:func:`segment.image.resize_nearest`): the fit keeps full resolution.

    Parameters
    ----------
    trace : dict of ndarray
        A fitted model's ``trace_``.
    picture : segment.image.Picture
    longest : int
        The frames' longest side in pixels.
    space : {'rgb', 'lab', 'oklab'}
        The colour space the trace's model was fitted in.
    covariance_type : str or None
        The mixture's ``covariance_type``: a tied trace of K = D components
        is shaped like a diagonal one, so give it for any mixture's trace.

    Returns
    -------
    frames : list of ndarray of shape (height, width, 3), uint8
    """
    color_index = image.resize_nearest(image.color_index(picture), longest)  # the colour of each displayed pixel
    frames = []
    for t in range(len(trace["iteration"])):
        model = models.trace_model(trace, t, covariance_type)
        labels = model.predict(picture.in_space(space))
        pixel_labels = np.where(color_index >= 0, labels[color_index], -1)
        frames.append(image.paint(pixel_labels, image.model_colors(model, space)))
    return frames


def captions(trace):
    """One line per trace row: the iteration, and the objective that iteration computed."""
    name, values = objective(trace)
    n_iter = len(values) - 1
    lines = [f"iteration 0/{n_iter}   (start)"]
    for t in range(1, n_iter + 1):
        value = f"{values[t]:.6f}" if name == "lower_bound" else f"{values[t]:.6g}"
        lines.append(f"iteration {t}/{n_iter}   {name.replace('_', ' ')} {value}")
    return lines


# -------------------------------------------------------- the convergence plot

def convergence_figure(trace, title=""):
    """A matplotlib figure of the objective per iteration, and of how many samples changed component.

    Needs matplotlib (the ``bench`` extra); raises :class:`MissingDependency`
    without it. The figure uses the Agg canvas and no pyplot state.
    """
    Figure, FigureCanvasAgg = require_matplotlib()
    name, values = objective(trace)
    iterations = trace["iteration"][1:]
    figure = Figure(figsize=(8, 3.2), layout="constrained")
    FigureCanvasAgg(figure)
    left, right = figure.subplots(1, 2)
    left.plot(iterations, values[1:], marker="o", markersize=3)
    left.set(xlabel="iteration", ylabel=name.replace("_", " "),
             title="mean log-likelihood" if name == "lower_bound" else "weighted sum of squared distances")
    right.plot(iterations, trace["n_changed"][1:], marker="o", markersize=3, color="tab:orange")
    right.set(xlabel="iteration", ylabel="total sample weight (pixels)", title="samples that changed their label")
    if title:
        figure.suptitle(title)
    return figure


def require_matplotlib():
    """matplotlib's Figure and FigureCanvasAgg, or :class:`MissingDependency` with the install command."""
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError:
        raise MissingDependency(
            "the convergence plot needs matplotlib, which is not installed; pip install 'emseg[bench]'"
        ) from None
    return Figure, FigureCanvasAgg


# ---------------------------------------------------------- EM step by step

def em_steps(X, weights, means, variances, reg_covar, n_iter, covariance_type="diag"):
    """Run ``n_iter`` EM iterations with the functions of ``em.reference``, keeping every intermediate number.

    The same calls on the same numbers as ``GaussianMixture(engine="reference")``,
    so the parameters after each iteration equal its ``trace_`` rows exactly.

    Parameters
    ----------
    X : ndarray of shape (n_samples, n_features)
        Every sample has weight 1.
    weights, means, variances : ndarray
        The starting parameters; ``variances`` shaped as ``covariances_`` of the type.
    reg_covar : float
    n_iter : int
    covariance_type : {'diag', 'full', 'tied', 'spherical'}

    Returns
    -------
    steps : list of dict
        One per iteration: ``log_prob`` (log pi_k + log N(x_n | mu_k, Sigma_k),
        shape (n_samples, n_components)), ``log_norm``, ``log_resp``, ``nk``,
        ``sum_x``, ``sum_xx`` (scatter matrices for full and tied), ``lower_bound``
        (under the parameters the E-step used), and the new ``weights``, ``means``
        and ``variances``.
    """
    sample_weight = np.ones(len(X))
    full = covariance_type in ("full", "tied")
    statistics = reference.sufficient_statistics_full if full else reference.sufficient_statistics
    steps = []
    for _ in range(n_iter):
        factors = reference.precisions_cholesky(variances, covariance_type) if full else None
        precisions = evaluation_precisions(covariance_type, variances, factors, means.shape)
        log_weights = np.log(weights)
        log_prob = reference.weighted_log_prob(X, means, precisions, log_weights)
        log_resp, log_norm = reference.e_step(X, means, precisions, log_weights)
        nk, sum_x, sum_xx = statistics(X, log_resp, sample_weight)
        weights, means, variances = reference.M_STEPS[covariance_type](nk, sum_x, sum_xx, reg_covar)
        steps.append(dict(log_prob=log_prob, log_norm=log_norm, log_resp=log_resp, nk=nk, sum_x=sum_x,
                          sum_xx=sum_xx, lower_bound=float(sample_weight @ log_norm / sample_weight.sum()),
                          weights=weights, means=means, variances=variances))
    return steps


# what each covariance type's M-step computes, in the words of the diagonal explanation
M_STEP_TEXT = {
    "diag": "var_k = Q_k / N_k + reg_covar",
    "spherical": "var_k = mean over R, G, B of Q_k / N_k + reg_covar",
    "full": "Sigma_k = Q_k / N_k + reg_covar I",
    "tied": "Sigma = sum_k Q_k / sum_k N_k + reg_covar I  (one matrix for all k)",
}


def explain(picture, n_components, random_state=0, n_iter=2, n_shown=4, name="the image", covariance_type="diag"):
    """The first EM iterations on a (small) picture's pixels, as text tables to follow by hand.

    The start is the one ``GaussianMixture`` makes (k-means on the pixels,
    seeded by ``random_state``); then each iteration prints the E-step for a
    few pixels, the sufficient statistics, the M-step's new parameters and the
    lower bound. The pixels shown are those the components share most in the
    first E-step. Numbers are printed with fixed formats, so the text is the
    same for the same picture and seed. For 'full' and 'tied' the scatter and
    covariance matrices are printed in full.

    Parameters
    ----------
    picture : segment.image.Picture
        Keep it small (``segment.image.thumbnail``): every pixel is a sample.
    n_components : int
    random_state : int
    n_iter : int
        Iterations to show.
    n_shown : int
        Pixels whose responsibilities are shown.
    name : str
        What to call the picture in the first line.
    covariance_type : {'diag', 'full', 'tied', 'spherical'}

    Returns
    -------
    text : str
    """
    X = picture.rgb[picture.mask].astype(np.float64)
    positions = np.argwhere(picture.mask)
    start = GaussianMixture(n_components, covariance_type=covariance_type, max_iter=0, engine="reference",
                            random_state=random_state).fit(X)
    steps = em_steps(X, start.weights_, start.means_, start.covariances_, start.reg_covar, n_iter, covariance_type)
    shared = np.argsort(np.exp(steps[0]["log_resp"]).max(axis=1), kind="stable")
    shown = np.sort(shared[:n_shown])
    height, width = picture.rgb.shape[:2]
    diag = covariance_type == "diag"
    spread = "var_k" if covariance_type in ("diag", "spherical") else "Sigma_k"
    scatter = "(x - S_k / N_k)^2" if covariance_type in ("diag", "spherical") else "(x - S_k / N_k)^T (x - S_k / N_k)"
    lines = [
        f"EM step by step on {name}, {width}x{height} pixels: {len(X)} samples x = (R, G, B), "
        f"k={n_components}, seed={random_state}, reg_covar={start.reg_covar:g}"
        + ("." if diag else f", covariance_type={covariance_type}."),
        "Formulas and why: docs/em.md. Every sample has weight 1.",
        "",
        "Start: k-means (k-means++ seeding, then Lloyd) puts each pixel wholly in one component;",
        "weight = pixels in the cluster / all pixels, mean and variance = the cluster's (+ reg_covar)."
        if diag else f"weight = pixels in the cluster / all pixels, mean = the cluster's, then {M_STEP_TEXT[covariance_type]}.",
        *_parameter_table(start.weights_, start.means_, start.covariances_),
    ]
    statistics = "reference.sufficient_statistics" + ("_full" if covariance_type in ("full", "tied") else "")
    for t, step in enumerate(steps, start=1):
        lines += [
            "",
            f"Iteration {t}",
            "E-step (reference.e_step), in log space for the pixels the components share most:",
            f"  a_k = log weight_k + log N(x | mean_k, {spread}),  log p(x) = log sum_k exp(a_k),  "
            "gamma_k = exp(a_k - log p(x))",
            *_responsibility_table(X, positions, shown, step),
            f"Sufficient statistics ({statistics}), sums over all pixels:",
            f"  N_k = sum gamma_k,  S_k = sum gamma_k x,  Q_k = sum gamma_k {scatter}",
            *_statistics_table(step),
            f"M-step (reference.{reference.M_STEPS[covariance_type].__name__}):",
            f"  weight_k = N_k / sum_j N_j,  mean_k = S_k / N_k,  {M_STEP_TEXT[covariance_type]}",
            *_parameter_table(step["weights"], step["means"], step["variances"]),
            f"Lower bound = mean of log p(x) under the parameters this E-step used: {step['lower_bound']:.6f}"
            + (f" ({step['lower_bound'] - steps[t - 2]['lower_bound']:+.6f} since iteration {t - 1})" if t > 1 else ""),
        ]
    lines += ["", f"EM repeats these steps until the lower bound changes by less than tol ({start.tol:g});",
              "`emseg segment IMAGE --trace trace.csv` records every iteration of a real fit."]
    return "\n".join(lines) + "\n"


def _parameter_table(weights, means, variances):
    """Weights, means and the covariances of any type: per feature (diag), one number (spherical), or matrices."""
    features = FEATURE_NAMES[: means.shape[1]]
    header = f"  {'k':>2} {'weight':>8}" + "".join(f" {'mean ' + f:>9}" for f in features)
    if variances.ndim == 1:  # spherical: one variance per component
        header += f" {'var':>11}"
    elif variances.shape == means.shape:  # diag
        header += "".join(f" {'var ' + f:>11}" for f in features)
    rows = []
    for k in range(len(weights)):
        row = f"  {k:>2} {weights[k]:8.4f}" + "".join(f" {m:9.3f}" for m in means[k])
        if variances.ndim == 1:
            row += f" {variances[k]:11.3f}"
        elif variances.shape == means.shape:
            row += "".join(f" {v:11.3f}" for v in variances[k])
        rows.append(row)
    if variances.ndim == 2 and variances.shape != means.shape:  # tied: one matrix
        rows += _matrix_lines("shared covariance Sigma", variances, features)
    elif variances.ndim == 3:  # full: one matrix per component
        for k, matrix in enumerate(variances):
            rows += _matrix_lines(f"covariance Sigma_{k}", matrix, features)
    return [header, *rows]


def _matrix_lines(title, matrix, features):
    """A titled D x D matrix, one line per row, labelled by feature."""
    header = f"  {title}:".ljust(26) + "".join(f" {f:>13}" for f in features)
    return [header] + [f"{f:>26}" + "".join(f" {v:13.3f}" for v in row) for f, row in zip(features, matrix)]


def _responsibility_table(X, positions, shown, step):
    n_components = step["log_prob"].shape[1]
    header = f"  {'pixel':>9} {'x':>13}" + "".join(f" {'a_' + str(k):>10}" for k in range(n_components))
    header += f" {'log p(x)':>10}" + "".join(f" {'gamma_' + str(k):>8}" for k in range(n_components))
    rows = []
    for i in shown:
        row, col = positions[i]
        pixel = ",".join(f"{v:.0f}" for v in X[i])
        line = f"  {f'({row},{col})':>9} {pixel:>13}" + "".join(f" {a:10.3f}" for a in step["log_prob"][i])
        line += f" {step['log_norm'][i]:10.3f}" + "".join(f" {g:8.4f}" for g in np.exp(step["log_resp"][i]))
        rows.append(line)
    return [header, *rows]


def _statistics_table(step):
    features = FEATURE_NAMES[: step["sum_x"].shape[1]]
    matrices = step["sum_xx"].ndim == 3  # full and tied: scatter matrices
    header = f"  {'k':>2} {'N_k':>10}" + "".join(f" {'S_k ' + f:>11}" for f in features)
    if not matrices:
        header += "".join(f" {'Q_k ' + f:>13}" for f in features)
    rows = []
    for k, nk in enumerate(step["nk"]):
        row = f"  {k:>2} {nk:10.4f}" + "".join(f" {s:11.2f}" for s in step["sum_x"][k])
        rows.append(row + ("" if matrices else "".join(f" {q:13.2f}" for q in step["sum_xx"][k])))
    if matrices:
        for k, matrix in enumerate(step["sum_xx"]):
            rows += _matrix_lines(f"scatter Q_{k}", matrix, features)
    return [header, *rows]
