"""The HTML report's numbers: the bound after each half-step, k-means' inertia, the page's data and size.

What the page does in a browser is tested in ``test_report_browser.py``.
"""

import functools
import json
import math
import re
import warnings

import numpy as np
import pytest
from numpy.testing import assert_array_equal
from scipy.spatial.distance import cdist
from scipy.special import logsumexp
from scipy.stats import norm
from sklearn.datasets import load_sample_image
from sklearn.exceptions import ConvergenceWarning

from conftest import run_cli as run
from em import GaussianMixture, reference
from exactness import U, MixtureEvaluation, sum_error
from kmeans import KMeans
from segment import image, report


@functools.lru_cache(maxsize=None)
def fitted(method, k=4, seed=0):
    """A model fitted as `emseg report` fits it, on a 96-pixel-wide copy of flower.jpg, and the picture."""
    picture = image.thumbnail(image.Picture(load_sample_image("flower.jpg")), 96)
    model = (GaussianMixture if method == "gmm" else KMeans)(k, random_state=seed, trace=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        image.fit_labels(model, picture)
    return model, picture


def weighted_colors(picture):
    colors, counts, _ = picture.distinct
    return colors.astype(np.float64), counts.astype(np.float64)


def params(trace, t):
    return trace["weights"][t], trace["means"][t], trace["variances"][t]


def page_data(page):
    """The JSON the page carries, read back from its HTML."""
    text = re.search(r'<script id="report-data" type="application/json">(.*?)</script>', page, re.S).group(1)
    return json.loads(text.replace("<\\/", "</"))


# ------------------------------------------------------------ the half-steps of EM

def log_lik_tolerance(evaluation, w):
    """How far two correct computations of ℓ = Σ w log p(x_n) / W may differ.

    Each log p(x_n) is within B_n of the exact value on each side (docs/testing.md, "score"), and the
    weighted mean of n terms rounds by sum_error(n) of Σ w |log p| on each side.
    """
    return (w @ evaluation.score_bound + 2 * sum_error(len(w)) * (w @ np.abs(evaluation.log_norm))) / w.sum()

def log_joint_scipy(X, weights, means, variances):
    """log π_k + log N(x_n | μ_k, σ²_k) from scipy's one-dimensional normal densities, (n, K)."""
    return np.log(weights) + norm.logpdf(X[:, None, :], means, np.sqrt(variances)).sum(axis=2)


def test_half_steps_agree_with_scipy_within_the_derived_bound():
    model, picture = fitted("gmm")
    X, w = weighted_colors(picture)
    trace, W = model.trace_, w.sum()
    log_lik, bound_after_m = report.gmm_half_steps(trace, X, w)
    assert len(log_lik) == model.n_iter_ + 1 >= 4 and np.isnan(bound_after_m[0])
    for t in range(model.n_iter_ + 1):
        a = log_joint_scipy(X, *params(trace, t))
        log_norm = logsumexp(a, axis=1)
        # ℓ: each log p(x_n) within B_n of the exact value on each side (docs/testing.md, "score"),
        # and the weighted mean of n terms rounds by sum_error(n) on each side
        here = MixtureEvaluation(X, *params(trace, t))
        tol_ll = log_lik_tolerance(here, w)
        assert abs(log_lik[t] - w @ log_norm / W) <= tol_ll, t
        if t == 0:
            continue
        # F(q_{t-1}, θ_t) = Σ_k γ_k (a'_k - log γ_k) with γ from row t-1 and a' from row t. Two correct
        # computations differ per sample by Σ_k |Δγ_k|·|a'_k - log γ_k| + γ_k|Δlog γ_k| + γ_k|Δa'_k|, where
        # |Δγ| and γ|Δlog γ| are both within the proba bound of row t-1 and |Δa'| within the term bound A' of
        # row t; the K products and their sum round by (K + 2)u of Σ_k γ|a' - log γ|; then the weighted mean.
        before = MixtureEvaluation(X, *params(trace, t - 1))
        log_resp = before.weighted_log_prob - before.log_norm[:, None]
        with np.errstate(invalid="ignore"):
            terms = np.where(before.resp > 0, before.resp * (a - log_resp), 0.0)
        want = w @ terms.sum(axis=1) / W
        spread = np.where(before.resp > 0, np.abs(a - log_resp), 0.0)
        per_sample = (before.proba_bound * (spread + 1) + before.resp * here.term_bound).sum(axis=1)
        per_sample += (len(a[0]) + 2) * U * np.abs(terms).sum(axis=1)
        tol_f = (w @ per_sample + 2 * sum_error(len(X)) * (w @ np.abs(terms.sum(axis=1)))) / W
        assert abs(bound_after_m[t] - want) <= tol_f, t
        # the bound is not the log-likelihood in disguise: the KL gap is far wider than both tolerances
        assert log_lik[t] - bound_after_m[t] > 100 * (tol_ll + tol_f), t


def test_half_steps_keep_the_bounds_invariants():
    model, picture = fitted("gmm", k=5, seed=1)
    X, w = weighted_colors(picture)
    trace, W = model.trace_, w.sum()
    log_lik, bound_after_m = report.gmm_half_steps(trace, X, w)
    for t in range(len(log_lik)):
        # each value is within the bound of ℓ's rounding of the exact one (for F the first test's bound is of
        # the same size: the same terms); a comparison of two values allows twice the larger
        rounding = max(log_lik_tolerance(MixtureEvaluation(X, *params(trace, s)), w) for s in {t, max(t - 1, 0)})
        log_resp, log_norm = reference.e_step(X, trace["means"][t], 1.0 / trace["variances"][t],
                                              np.log(trace["weights"][t]))
        after_e = w @ report.bound_terms(X, log_resp, *params(trace, t)) / W
        assert abs(after_e - log_lik[t]) <= 2 * rounding  # after the E-step the bound touches ℓ
        if t:
            assert bound_after_m[t] <= log_lik[t] + 2 * rounding  # after the M-step it lies below by the KL gap
            assert bound_after_m[t] >= log_lik[t - 1] - 2 * rounding  # the M-step raised the bound
            assert log_lik[t] >= log_lik[t - 1] - 2 * rounding  # so ℓ never decreases
        # ℓ(θ_t) is what the fit's own E-step computed at row t (with the numba kernel): lower_bound[t + 1]
        if t + 1 < len(log_lik):
            assert abs(log_lik[t] - trace["lower_bound"][t + 1]) <= 2 * rounding


def test_bound_terms_treat_an_unused_component_as_adding_nothing():
    X = np.array([[0.0], [1.0]])
    with np.errstate(divide="ignore"):
        log_resp = np.log(np.array([[1.0, 0.0], [0.5, 0.5]]))  # -inf for the first sample's second component
    weights, means, variances = np.array([0.5, 0.5]), np.array([[0.0], [1.0]]), np.ones((2, 1))
    got = report.bound_terms(X, log_resp, weights, means, variances)
    a = np.log(0.5) + norm.logpdf(X, means.T, 1.0)  # (2 samples, 2 components)
    want = [a[0, 0], 0.5 * (a[1, 0] - np.log(0.5)) + 0.5 * (a[1, 1] - np.log(0.5))]
    np.testing.assert_allclose(got, want, rtol=8 * U)  # a few roundings of numbers of one magnitude


# ------------------------------------------------------------ the half-steps of Lloyd

def test_kmeans_half_steps_agree_with_scipy_and_only_go_down():
    model, picture = fitted("kmeans")
    X, w = weighted_colors(picture)
    centers = model.trace_["centers"]
    after_assignment, after_update, shares = report.kmeans_half_steps(model.trace_, X, w)
    for t in range(len(centers)):
        d2 = cdist(X, centers[t], "sqeuclidean")
        labels = d2.argmin(axis=1)
        want = w @ d2.min(axis=1)
        # each d² is within (D + 2)u d² on each side, and the weighted sum of n terms within sum_error(n)
        tol = want * (2 * (X.shape[1] + 2) * U + 2 * sum_error(len(X)))
        assert abs(after_assignment[t] - want) <= tol, t
        assert_array_equal(shares[t], np.bincount(labels, weights=w, minlength=len(centers[t])) / w.sum())
        if t:
            previous = cdist(X, centers[t - 1], "sqeuclidean").argmin(axis=1)
            moved = w @ ((X - centers[t][previous]) ** 2).sum(axis=1)
            assert abs(after_update[t] - moved) <= moved * (2 * (X.shape[1] + 2) * U + 2 * sum_error(len(X)))
            # each half-step lowers J, up to the rounding of the two values compared
            assert after_update[t] <= after_assignment[t - 1] + 2 * tol
            assert after_assignment[t] <= after_update[t] + 2 * tol
        # J(z_t, c_t) is the inertia the fit's own assignment step (the numba kernel) computed in iteration t + 1
        if t + 1 < len(centers):
            assert abs(after_assignment[t] - model.trace_["inertia"][t + 1]) <= 2 * tol


# ------------------------------------------------------------ the page

def test_the_page_carries_the_trace_and_the_half_steps_and_asks_for_nothing():
    model, picture = fitted("gmm")
    page = report.build(picture, model, name="flower <small>.jpg")
    data = page_data(page)
    log_lik, bound_after_m = report.gmm_half_steps(model.trace_, *weighted_colors(picture))
    assert data["method"] == "gmm" and data["k"] == 4 and data["n_iter"] == model.n_iter_
    assert len(data["rows"]) == model.n_iter_ + 1
    for t, row in enumerate(data["rows"]):  # JSON writes floats with all their digits: the same numbers
        assert_array_equal(row["means"], model.trace_["means"][t])
        assert_array_equal(row["variances"], model.trace_["variances"][t])
    assert_array_equal(data["curves"]["log_lik"], log_lik)
    assert data["curves"]["bound_after_m"][0] is None and data["curves"]["bound_after_m"][1:] == list(bound_after_m[1:])
    assert "flower &lt;small&gt;.jpg" in page.split("<script")[0]  # the title is escaped
    # nothing outside the page: no element that loads, no stylesheet import, no link; the CSP forbids the rest
    assert not re.search(r"<(link|iframe|object|embed)\b|\bsrc=|@import|url\(|<a\b", page)
    assert "Content-Security-Policy\" content=\"default-src 'none'" in page


def test_a_page_for_a_photo_of_many_colours_stays_small():
    rng = np.random.default_rng(0)
    noisy = image.Picture(rng.integers(0, 256, (600, 800, 3), dtype=np.uint8))  # 480,000 pixels, nearly all distinct
    model = GaussianMixture(3, max_iter=2, random_state=0, trace=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        image.fit_labels(model, noisy)
    page = report.build(noisy, model, max_points=1000)
    data = page_data(page)
    assert data["n_colors"] > 400_000 and len(data["scatter"]["counts"]) == 1000
    assert (data["image"]["width"], data["image"]["height"]) == (report.IMAGE_SIDE, 240)
    # the image copy is 320 x 240 x 3 bytes, 307 KB in base64; the rest is the parameters and the script
    assert len(page.encode()) < 450_000


def test_scatter_sample_keeps_every_colour_when_few_and_draws_by_count_when_many():
    counts = np.array([1, 50, 3, 7])
    assert_array_equal(report.scatter_sample(counts, 10), [1, 3, 2, 0])  # largest first
    counts = np.r_[np.full(1000, 1), 10**6]
    chosen = report.scatter_sample(counts, 20, random_state=0)
    assert len(set(chosen)) == 20 and chosen[0] == 1000  # the colour of most pixels is drawn, and first


def test_a_model_without_its_iterations_is_refused():
    model = GaussianMixture(2, random_state=0).fit(np.arange(20.0).reshape(10, 2))
    with pytest.raises(ValueError, match="trace=True"):
        report.build(image.Picture(np.zeros((2, 2, 3), np.uint8)), model)


@pytest.mark.parametrize("method", ["gmm", "kmeans"])
def test_cli_report_writes_the_page(capsys, rgb_image_path, tmp_path, monkeypatch, method):
    monkeypatch.chdir(tmp_path)
    code, out, _ = run(capsys, "report", rgb_image_path, "-k", 3, "--method", method, "--seed", 2)
    assert code == 0 and out == f"small_{method}_k3_report.html\n"
    data = page_data((tmp_path / out.strip()).read_text(encoding="utf-8"))
    assert data["method"] == method and data["k"] == 3 and data["seed"] == 2
    assert (data["width"], data["height"], data["n_pixels"]) == (32, 24, 768)


def test_cli_report_refuses_an_output_that_is_not_html(capsys, rgb_image_path, tmp_path):
    code, out, err = run(capsys, "report", rgb_image_path, "-o", tmp_path / "page.png")
    assert code == 1 and out == "" and "use .html" in err and not (tmp_path / "page.png").exists()


def test_kl_gap_formula_is_the_kl_divergence():
    """The gap ℓ(θ') - F(q, θ') is Σ_n w_n KL(q_n ‖ p(z | x_n, θ')) / W: checked on one step by the KL itself."""
    model, picture = fitted("gmm")
    X, w = weighted_colors(picture)
    trace = model.trace_
    log_lik, bound_after_m = report.gmm_half_steps(trace, X, w)
    def log_posterior(evaluation):  # in log space: a posterior far below 1e-308 is 0 as a float
        return evaluation.weighted_log_prob - evaluation.log_norm[:, None]

    before, after = MixtureEvaluation(X, *params(trace, 0)), MixtureEvaluation(X, *params(trace, 1))
    q = before.resp
    with np.errstate(invalid="ignore"):
        kl = np.where(q > 0, q * (log_posterior(before) - log_posterior(after)), 0.0).sum(axis=1)
    gap = log_lik[1] - bound_after_m[1]
    # each side is a difference of two values of size |ℓ| ≈ 15, each within twice ℓ's rounding bound
    # (the first test), so the two gaps agree within four times it; the gap itself is about 0.1
    tol = 4 * max(log_lik_tolerance(before, w), log_lik_tolerance(after, w))
    assert gap > 1e6 * tol and math.isclose(gap, w @ kl / w.sum(), rel_tol=0, abs_tol=tol)


def test_the_pages_words_name_functions_that_exist_and_the_readme_shows_the_page():
    from pathlib import Path

    from kmeans import reference as kmeans_reference

    root = Path(__file__).resolve().parents[1]
    template = (root / "segment" / report.TEMPLATE).read_text(encoding="utf-8")
    named = re.findall(r"<code>((?:kmeans\.)?reference)\.(\w+)</code>", template)
    assert len(named) >= 4
    for module, function in named:
        assert hasattr(kmeans_reference if module.startswith("kmeans") else reference, function), function
    readme = (root / "README.md").read_text(encoding="utf-8")
    assert "](docs/report.png)" in readme and "emseg report" in readme
    assert (root / "docs" / "report.png").stat().st_size < 300_000
