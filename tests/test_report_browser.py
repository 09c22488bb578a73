"""The HTML report in a real browser: headless Chromium driven by Playwright, with the network blocked.

One report per method is built once for the module, on a 96-pixel-wide copy of
flower.jpg, and opened from a file URL. Without Playwright or Chromium the whole
module is skipped with one reason; `.ci/run` installs Chromium when missing.
"""

import io
import re
import shutil
import warnings
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from sklearn.datasets import load_sample_image
from sklearn.exceptions import ConvergenceWarning

from em import GaussianMixture
from exactness import MixtureEvaluation
from kmeans import KMeans
from segment import image, models, report

try:
    from playwright.sync_api import sync_playwright
except ImportError:
    sync_playwright = None
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
if sync_playwright is None or CHROMIUM is None:
    pytest.skip("the browser tests need Playwright for Python and Debian's chromium "
                "(pip install 'emseg[test]'; apt-get install chromium, which .ci/run does)", allow_module_level=True)

CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
# the scatter's geometry in the page: a 410-unit square with a 34-unit margin, channels 0..255
SIZE, PAD = 410, 34
SPAN = SIZE - 2 * PAD


@pytest.fixture(scope="module")
def pages(tmp_path_factory):
    """{method: (page file, fitted model, picture)}, built once."""
    folder = tmp_path_factory.mktemp("report")
    picture = image.thumbnail(image.Picture(load_sample_image("flower.jpg")), 96)
    built = {}
    for method, estimator in (("gmm", GaussianMixture), ("kmeans", KMeans)):
        model = estimator(4, random_state=0, trace=True)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            image.fit_labels(model, picture)
        path = folder / f"{method}.html"
        path.write_text(report.build(picture, model, name="flower.jpg"), encoding="utf-8")
        built[method] = path, model, picture
    return built


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    """A headless Chromium with a new, empty profile."""
    with sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            str(tmp_path_factory.mktemp("profile")), executable_path=CHROMIUM, args=CHROMIUM_ARGS,
            viewport={"width": 1240, "height": 1000})
        yield context
        context.close()


class Visit:
    """A page opened from its file URL with every other request aborted, and what it asked for and logged."""

    def __init__(self, browser, path):
        self.url = Path(path).resolve().as_uri()
        self.requests, self.errors, self.failures = [], [], {}
        self.page = browser.new_page()
        self.page.on("request", lambda request: self.requests.append(request.url))
        self.page.on("requestfailed", lambda request: self.failures.update({request.url: request.failure}))
        self.page.on("console", lambda message: self.errors.append(message.text) if message.type == "error" else None)
        self.page.on("pageerror", lambda error: self.errors.append(str(error)))
        self.page.route("**/*", lambda route: route.continue_() if route.request.url == self.url else route.abort())
        self.page.goto(self.url)
        self.page.wait_for_function("document.querySelectorAll('#points circle').length > 0")

    @property
    def outside(self):
        """Requests for anything but the page itself (data: URLs are the page's own bytes)."""
        return [url for url in self.requests if url != self.url and not url.startswith("data:")]

    def show(self, t):
        self.page.locator("#iteration").fill(str(t))

    def component_positions(self):
        """{k: (cx, cy, rx, ry)} of each component's 1σ ellipse (k-means: its centre's dot, with rx = ry = 0)."""
        return self.page.evaluate("""() => Array.from(document.querySelectorAll('#components g.component'), g => {
            const e = g.querySelector('.sigma1') || g.querySelector('.mean');
            return ['cx', 'cy', 'rx', 'ry'].map(name => +(e.getAttribute(name) || 0));
        })""")


@pytest.fixture
def visit(browser):
    opened = []

    def open_page(path):
        opened.append(Visit(browser, path))
        return opened[-1]

    yield open_page
    for each in opened:
        each.page.close()


@pytest.mark.parametrize("method", ["gmm", "kmeans"])
def test_the_page_asks_for_nothing_and_logs_no_error(pages, visit, method):
    page = visit(pages[method][0])
    page.show(0)
    page.page.locator("#pair").select_option("0,1")
    page.page.locator("#play").click()
    page.page.wait_for_timeout(600)  # at least one step of play
    assert page.outside == [] and page.errors == []


def test_a_page_that_asks_for_something_is_caught(pages, visit, tmp_path):
    """The harness of the test above can fail: a page that loads an image from the network is seen."""
    text = pages["gmm"][0].read_text(encoding="utf-8")
    text = re.sub(r'<meta http-equiv="Content-Security-Policy"[^>]*>', "", text)  # without the page's own guard
    leaky = tmp_path / "leaky.html"
    leaky.write_text(text.replace("<body>", '<body><img src="https://192.0.2.1/pixel.png">'), encoding="utf-8")
    page = visit(leaky)
    assert page.outside == ["https://192.0.2.1/pixel.png"]
    # with the page's guard the browser still reports the attempt, refused by the policy before it leaves,
    # and logs the refusal as a console error: either way the test above fails
    guarded = tmp_path / "guarded.html"
    guarded.write_text(pages["gmm"][0].read_text(encoding="utf-8").replace(
        "<body>", '<body><img src="https://192.0.2.1/pixel.png">'), encoding="utf-8")
    page = visit(guarded)
    assert page.outside == ["https://192.0.2.1/pixel.png"] and "csp" in page.failures[page.outside[0]].lower()
    assert any("Content Security Policy" in error for error in page.errors)


@pytest.mark.parametrize("method", ["gmm", "kmeans"])
def test_the_slider_moves_the_components_to_that_iterations_parameters(pages, visit, method):
    path, model, _ = pages[method]
    page = visit(path)
    trace = model.trace_
    a, b = 1, 2  # the page starts on the G-B pair
    drawn = {}
    for t in (0, model.n_iter_):
        page.show(t)
        drawn[t] = np.array(page.component_positions())
        means = models.centers(models.trace_model(trace, t))
        want = np.c_[PAD + means[:, a] / 255 * SPAN, SIZE - PAD - means[:, b] / 255 * SPAN]
        if method == "gmm":
            want = np.c_[want, np.sqrt(trace["variances"][t][:, [a, b]]) / 255 * SPAN]
        # the page computes the same few operations in float64 on numbers below 500: 1e-9 is 10^4 ulps
        np.testing.assert_allclose(drawn[t][:, : want.shape[1]], want, rtol=0, atol=1e-9)
    assert np.abs(drawn[0][:, :2] - drawn[model.n_iter_][:, :2]).max() > 1.0  # they moved by more than a pixel


def test_hover_shows_the_responsibilities_of_a_known_pixel(pages, visit):
    path, model, picture = pages["gmm"]
    t = 1
    row_model = models.trace_model(model.trace_, t)
    height, width = picture.rgb.shape[:2]
    colours = picture.rgb.reshape(-1, 3).astype(np.float64)
    # the pixel whose components share it most at iteration t: its bars are far from 0 and 1
    index = int(np.argmin(row_model.predict_proba(colours).max(axis=1)))
    row, col = divmod(index, width)
    x = colours[index : index + 1]
    want = row_model.predict_proba(x)[0]
    assert want.max() < 0.9
    page = visit(path)
    page.show(t)
    box = page.page.locator("#labels").bounding_box()
    page.page.mouse.move(box["x"] + (col + 0.5) * box["width"] / width, box["y"] + (row + 0.5) * box["height"] / height)
    assert page.page.locator("#hover-position").text_content() == f"({col}, {row})"
    assert page.page.locator("#hover-color").text_content() == ", ".join(str(int(v)) for v in x[0])
    values = page.page.locator("#bars .value")
    got = np.array([float(v) for v in values.evaluate_all("spans => spans.map(s => s.dataset.value)")])
    shown = np.array([float(v) for v in values.all_text_contents()])
    # the page evaluates the mixture as em/reference.py does, in float64: two correct evaluations of the
    # same parameters, within the proba bound of docs/testing.md; the text is rounded to 4 decimals
    bound = MixtureEvaluation(x, *(row_model.weights_, row_model.means_, row_model.covariances_)).proba_bound[0]
    assert np.all(np.abs(got - want) <= bound)
    assert np.all(np.abs(shown - want) <= 0.5e-4 + bound)
    assert page.page.locator("#highlight").get_attribute("visibility") == "visible"  # marked in the scatter
    assert page.outside == [] and page.errors == []


def test_the_screenshot_is_not_blank(pages, visit):
    page = visit(pages["gmm"][0])
    shot = np.asarray(Image.open(io.BytesIO(page.page.screenshot())).convert("RGB"))
    not_white = np.any(shot < 235, axis=2).mean()
    assert shot.shape[:2] == (1000, 1240) and not_white > 0.1 and len(np.unique(shot.reshape(-1, 3), axis=0)) > 200
    labels = np.asarray(Image.open(io.BytesIO(page.page.locator("#labels").screenshot())).convert("RGB"))
    assert len(np.unique(labels.reshape(-1, 3), axis=0)) >= 4  # the label map painted with the k=4 means
