"""The timed cases: emseg and scikit-learn side by side, on the same pixels, in the same process.

Each case returns rows that compare one emseg run with one scikit-learn run:
the median, min and max of the times, and the quality of both results next to
them (the lower bound or the inertia, and the adjusted Rand index of the two
labelings). "all pixels" fits every pixel; "distinct colours" fits each
distinct colour once, weighted by its pixel count, which is the same fit.
"""

import contextlib
import io
import time
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image
from sklearn.cluster import KMeans as SkKMeans
from sklearn.exceptions import ConvergenceWarning
from sklearn.metrics import adjusted_rand_score
from sklearn.mixture import GaussianMixture as SkGaussianMixture

import cli
from em import GaussianMixture
from kmeans import KMeans, kmeans_plusplus
from segment import image
from timing import interleave, summary, timed

SEED = 0
ALL, DISTINCT = "all pixels", "distinct colours"
# integer centres on integer pixels make exact distance ties, which the two
# libraries break differently; shifting each channel of the shared initial
# centres by a different irrational amount avoids them
OFF_GRID = np.sqrt([2.0, 3.0, 5.0]) / 10.0


@dataclass
class Settings:
    """How much to time: rounds, EM/Lloyd iterations per timed fit, and when scikit-learn runs only once."""

    repeats: int = 5
    n_iter: int = 5  # EM intervals (or Lloyd iterations) timed per fit
    k: int = 10
    slow_pixels: int = 2_000_000  # above this, scikit-learn's slow runs are done in one round only

    def sklearn_rounds(self, n_pixels):
        return 1 if n_pixels > self.slow_pixels else self.repeats


@dataclass
class Photo:
    """An image's pixels in the three forms the cases use."""

    name: str
    rgb: np.ndarray  # (height, width, 3) uint8
    path: Path | None = None

    def __post_init__(self):
        self.X = self.rgb.reshape(-1, 3).astype(np.float64)
        self.colors, self.counts, self.inverse = image.distinct_colors(self.rgb)
        self.cache = {}  # models fitted once and shared by several cases

    @classmethod
    def load(cls, name, path):
        return cls(name, image.load(path).rgb, Path(path))

    @property
    def n_pixels(self):
        return len(self.X)

    def data(self, which):
        """(X, sample_weight) for 'all pixels' or 'distinct colours'."""
        return (self.X, None) if which == ALL else (self.colors, self.counts)

    def per_pixel(self, which, labels):
        """Labels of the samples of ``data(which)``, mapped back to every pixel."""
        return labels if which == ALL else labels[self.inverse]


@contextlib.contextmanager
def quiet():
    """Silence ConvergenceWarning: fixed-iteration runs stop before converging on purpose."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        yield


def side(data, n_samples, seconds, **quality):
    """One library's half of a row: what it ran on, its times and its result's quality."""
    return dict(data=data, n_samples=int(n_samples), seconds=summary(seconds), **quality)


def row(case, photo, unit, ours, theirs, metric=None, ari=None, note=""):
    """A row of the results table: emseg's side, scikit-learn's side and the speed-up."""
    return dict(
        case=case, image=photo.name, n_pixels=photo.n_pixels, unit=unit, metric=metric,
        emseg=ours, sklearn=theirs,
        speedup=theirs["seconds"]["median"] / ours["seconds"]["median"],
        ari=None if ari is None else float(ari), note=note,
    )


def ari(a, b):
    return float(adjusted_rand_score(a, b))


# ------------------------------------------------------------ initial values

def initial_mixture(photo, k, covariance_type="diag"):
    """Initial weights, means and precisions both libraries start from (emseg's k-means start of that type)."""
    with quiet():
        start = GaussianMixture(k, covariance_type=covariance_type, max_iter=0, random_state=SEED).fit(
            photo.colors, sample_weight=photo.counts)
    precisions = (1.0 / start.covariances_ if covariance_type in ("diag", "spherical")
                  else np.linalg.inv(start.covariances_))
    return dict(weights_init=start.weights_ / start.weights_.sum(), means_init=start.means_,
                precisions_init=precisions, covariance_type=covariance_type)


def initial_centers(photo, k):
    """Initial k-means centres both libraries start from: weighted k-means++ seeds, moved off the pixel grid."""
    centers, _ = kmeans_plusplus(photo.colors, k, sample_weight=photo.counts, random_state=SEED)
    return centers + OFF_GRID


# ------------------------------------------------------ per-iteration timing

class StampedGaussianMixture(SkGaussianMixture):
    """scikit-learn's GaussianMixture, noting the time at the end of every EM iteration (after its M-step)."""

    def _m_step(self, X, log_resp, **kwargs):
        super()._m_step(X, log_resp, **kwargs)
        self.stamps_.append(time.perf_counter())


def emseg_em_intervals(X, sample_weight, init, n_iter):
    """Times of ``n_iter`` EM iterations of emseg: the intervals between iteration ends.

    Returns (list of seconds, fitted model). Fixed costs (validation, the last
    E-step scikit-learn adds) fall outside the intervals, for both libraries.
    """
    stamps = []
    model = GaussianMixture(len(init["weights_init"]), tol=0.0, max_iter=n_iter + 1,
                            callback=lambda *_: stamps.append(time.perf_counter()), **init)
    with quiet():
        model.fit(X, sample_weight=sample_weight)
    return list(np.diff(stamps)), model


def sklearn_em_intervals(X, init, n_iter):
    """Times of ``n_iter`` EM iterations of scikit-learn (see `emseg_em_intervals`)."""
    init = {"covariance_type": "diag", **init}  # emseg's default type, named for scikit-learn
    model = StampedGaussianMixture(len(init["weights_init"]), tol=0.0, max_iter=n_iter + 1, **init)
    model.stamps_ = []
    with quiet():
        model.fit(X)
    return list(np.diff(model.stamps_)), model


def lloyd_iteration(make, X, sample_weight, n_iter):
    """Seconds per Lloyd iteration: (time of the longer fit - time of 1 iteration) / its extra iterations.

    The difference removes the fixed costs (validation, centring, the final
    assignment). The longer fit asks for 1 + n_iter iterations but stops early
    when no label changes, so the difference is divided by the iterations it
    ran beyond the first. On a tiny image an iteration is shorter than the
    noise and the difference can come out negative; it is reported as measured.
    ``make(max_iter)`` builds the estimator. Returns ([seconds per iteration], the longer fit).
    """
    [short], _ = timed(lambda: make(1).fit(X, sample_weight=sample_weight))
    [long], model = timed(lambda: make(1 + n_iter).fit(X, sample_weight=sample_weight))
    return [(long - short) / max(model.n_iter_ - 1, 1)], model


def gmm_iteration_runs(photo, settings, init):
    """Interleavable runs timing EM iterations: emseg on both data, scikit-learn on all pixels."""
    runs = {
        (lib, which): (lambda r, which=which: emseg_em_intervals(*photo.data(which), init, settings.n_iter), settings.repeats)
        for lib, which in (("emseg", ALL), ("emseg", DISTINCT))
    }
    runs["sklearn", ALL] = (lambda r: sklearn_em_intervals(photo.X, init, settings.n_iter),
                            settings.sklearn_rounds(photo.n_pixels))
    return runs


def kmeans_iteration_runs(photo, settings, centers, sklearn_distinct=True):
    """Interleavable runs timing Lloyd iterations of both libraries from the same centres."""
    ours = lambda max_iter: KMeans(len(centers), init=centers, n_init=1, max_iter=max_iter, tol=0.0)
    theirs = lambda max_iter: SkKMeans(len(centers), init=centers, n_init=1, max_iter=max_iter, tol=0.0,
                                       algorithm="lloyd")
    runs = {}
    for lib, make in (("emseg", ours), ("sklearn", theirs)):
        for which in (ALL, DISTINCT) if lib == "emseg" or sklearn_distinct else (ALL,):
            runs[lib, which] = (lambda r, make=make, which=which: lloyd_iteration(make, *photo.data(which), settings.n_iter),
                                settings.repeats)
    return runs


# -------------------------------------------------------------------- cases

def gmm_iteration(photo, settings):
    """GMM per EM iteration from identical initial parameters, tol=0, a fixed number of iterations."""
    init = initial_mixture(photo, settings.k)
    seconds, models = interleave(gmm_iteration_runs(photo, settings, init), settings.repeats)
    theirs = models["sklearn", ALL][-1]
    their_labels = theirs.predict(photo.X)
    their_side = side(ALL, photo.n_pixels, seconds["sklearn", ALL], value=float(theirs.lower_bound_),
                      n_iter=int(theirs.n_iter_))
    n_fits = len(models["sklearn", ALL])
    note = f"{settings.n_iter} iterations timed per fit; scikit-learn: {n_fits} fit(s)"
    rows = []
    for which in (ALL, DISTINCT):
        model = models["emseg", which][-1]
        X, _ = photo.data(which)
        ours = side(which, len(X), seconds["emseg", which], value=float(model.lower_bound_), n_iter=int(model.n_iter_))
        labels = photo.per_pixel(which, model.predict(X))
        rows.append(row("gmm-iter", photo, "s / iteration", ours, their_side, "lower bound",
                        ari(labels, their_labels), note))
    return rows


def _seeded_fit_rows(case, photo, settings, make, metric, attribute):
    """Default fits of both libraries, round r with random_state=r, on all pixels and on distinct colours.

    ``make[library](seed)`` builds the estimator. The distinct-colour runs time
    the whole pipeline: finding the colours, then the weighted fit. Quality is
    the median over the seeds each library ran; the adjusted Rand index
    compares the seed-0 labelings on every pixel.
    """
    def run(library, which):
        def fit(seed):
            if which == ALL:
                return make[library](seed).fit(photo.X)
            colors, counts, inverse = image.distinct_colors(photo.rgb)
            return make[library](seed).fit(colors, sample_weight=counts)
        return lambda r: timed(lambda: fit(r))

    slow = settings.sklearn_rounds(photo.n_pixels) if case == "gmm-fit" else settings.repeats
    libraries = {"emseg": (ALL, DISTINCT), "sklearn": (ALL,) if case == "gmm-fit" else (ALL, DISTINCT)}
    runs = {(library, which): (run(library, which), settings.repeats if library == "emseg" else slow)
            for library, data in libraries.items() for which in data}
    with quiet():
        seconds, models = interleave(runs, settings.repeats)

    def side_of(key):
        fitted = models[key]
        values = [float(getattr(model, attribute)) for model in fitted]
        return side(key[1], len(photo.data(key[1])[0]), seconds[key], value=float(np.median(values)), values=values,
                    n_iter=[int(model.n_iter_) for model in fitted])

    def labels(key):
        model = models[key][0]
        return photo.per_pixel(key[1], model.predict(photo.data(key[1])[0]))

    pairs = [(("emseg", ALL), ("sklearn", ALL)), (("emseg", DISTINCT), ("sklearn", ALL)),
             (("emseg", DISTINCT), ("sklearn", DISTINCT))]
    rows = []
    for a, b in (pair for pair in pairs if pair[1] in runs):
        notes = ["random_state=r in round r; quality: median over the seeds"]
        if DISTINCT in (a[1], b[1]):
            notes.append("distinct colours: time includes finding them")
        if len(seconds[b]) < settings.repeats:
            notes.append(f"scikit-learn: {len(seconds[b])} run(s), too slow to repeat")
        rows.append(row(case, photo, "s / fit", side_of(a), side_of(b), metric, ari(labels(a), labels(b)),
                        "; ".join(notes)))
    return rows


def gmm_fit(photo, settings):
    """GMM fit end to end with default parameters (k-means init, tol=1e-3, max_iter=100)."""
    k = settings.k
    make = {"emseg": lambda seed: GaussianMixture(k, random_state=seed),
            "sklearn": lambda seed: SkGaussianMixture(k, covariance_type="diag", random_state=seed)}
    return _seeded_fit_rows("gmm-fit", photo, settings, make, "lower bound", "lower_bound_")


def kmeans_fit(photo, settings):
    """KMeans fit end to end with default parameters (greedy k-means++, one init, tol=1e-4)."""
    k = settings.k
    make = {"emseg": lambda seed: KMeans(k, random_state=seed), "sklearn": lambda seed: SkKMeans(k, random_state=seed)}
    return _seeded_fit_rows("kmeans-fit", photo, settings, make, "inertia", "inertia_")


def kmeans_iteration(photo, settings):
    """KMeans per Lloyd iteration from the same initial centres, tol=0."""
    centers = initial_centers(photo, settings.k)
    seconds, models = interleave(kmeans_iteration_runs(photo, settings, centers), settings.repeats)
    labels = {key: photo.per_pixel(key[1], fitted[-1].labels_) for key, fitted in models.items()}

    def side_of(key):
        model = models[key][-1]
        return side(key[1], len(model.labels_), seconds[key], value=float(model.inertia_), n_iter=int(model.n_iter_))

    note = f"(time of up to {1 + settings.n_iter} iterations - time of 1) / the iterations beyond the first"
    pairs = [(("emseg", ALL), ("sklearn", ALL)), (("emseg", DISTINCT), ("sklearn", ALL)),
             (("emseg", DISTINCT), ("sklearn", DISTINCT))]
    return [row("kmeans-iter", photo, "s / iteration", side_of(a), side_of(b), "inertia", ari(labels[a], labels[b]), note)
            for a, b in pairs]


FITTED_ITERATIONS = 2  # EM or Lloyd iterations of the models that predict and sample use


def fitted_pair(photo, settings):
    """emseg's and scikit-learn's GaussianMixture and KMeans after the same few iterations from the same start.

    emseg's models are fitted on the distinct colours, scikit-learn's on all
    pixels, so their parameters agree to rounding. Fitted once per photo and k.
    """
    key = ("fitted_pair", settings.k)
    if key not in photo.cache:
        fixed = dict(n_init=1, max_iter=FITTED_ITERATIONS, tol=0.0)
        init, centers = initial_mixture(photo, settings.k), initial_centers(photo, settings.k)
        with quiet():
            photo.cache[key] = dict(
                gmm=(GaussianMixture(settings.k, **fixed, **init).fit(photo.colors, sample_weight=photo.counts),
                     SkGaussianMixture(settings.k, **fixed, **init).fit(photo.X)),  # init names the type: diag
                kmeans=(KMeans(settings.k, init=centers, **fixed).fit(photo.colors, sample_weight=photo.counts),
                        SkKMeans(settings.k, init=centers, **fixed).fit(photo.X)),
            )
    return photo.cache[key]


def predict(photo, settings):
    """predict of both models on every pixel; emseg also through its distinct colours and the inverse index."""
    rows = []
    for model, (ours, theirs) in fitted_pair(photo, settings).items():
        runs = {
            ("emseg", ALL): (lambda r, ours=ours: timed(lambda: ours.predict(photo.X)), settings.repeats),
            ("emseg", DISTINCT): (lambda r, ours=ours: timed(lambda: ours.predict(photo.colors)[photo.inverse]),
                                  settings.repeats),
            ("sklearn", ALL): (lambda r, theirs=theirs: timed(lambda: theirs.predict(photo.X)), settings.repeats),
        }
        seconds, labels = interleave(runs, settings.repeats)
        their_side = side(ALL, photo.n_pixels, seconds["sklearn", ALL])
        for which in (ALL, DISTINCT):
            note = "models fitted from the same start"
            if which == DISTINCT:
                note += "; predict the distinct colours, then index by pixel"
            rows.append(row(f"{model}-predict", photo, "s / call",
                            side(which, len(photo.data(which)[0]), seconds["emseg", which]), their_side, None,
                            ari(labels["emseg", which][-1], labels["sklearn", ALL][-1]), note))
    return rows


def sample(photo, settings):
    """``sample(n_pixels)`` of two mixtures fitted from the same start, with the same random_state."""
    ours, theirs = fitted_pair(photo, settings)["gmm"]
    ours.set_params(random_state=SEED)
    theirs.set_params(random_state=SEED)
    runs = {("emseg", "-"): (lambda r: timed(lambda: ours.sample(photo.n_pixels)), settings.repeats),
            ("sklearn", "-"): (lambda r: timed(lambda: theirs.sample(photo.n_pixels)), settings.repeats)}
    seconds, draws = interleave(runs, settings.repeats)
    (our_X, our_y), (their_X, their_y) = draws["emseg", "-"][-1], draws["sklearn", "-"][-1]
    gap = float(np.abs(our_X - their_X).max())
    what = f"{photo.n_pixels:,} draws"
    return [row("gmm-sample", photo, "s / call", side(what, photo.n_pixels, seconds["emseg", "-"], value=gap),
                side(what, photo.n_pixels, seconds["sklearn", "-"]), "max |draw difference|", ari(our_y, their_y),
                "mixtures fitted from the same start; same random_state, so the same draws")]


def notebook_pipeline(path, output, k, seed=SEED):
    """The notebook's segmentation with scikit-learn: load, fit every pixel, predict, paint the means, save PNG.

    Returns (labels per pixel, fitted model).
    """
    with Image.open(path) as opened:
        rgb = np.asarray(opened.convert("RGB"))
    X = rgb.reshape(-1, 3).astype(np.float64)
    model = SkGaussianMixture(k, covariance_type="diag", random_state=seed).fit(X)
    labels = model.predict(X)
    palette = np.clip(np.rint(model.means_), 0, 255).astype(np.uint8)
    Image.fromarray(palette[labels].reshape(rgb.shape)).save(output)
    return labels, model


def segment(photo, settings, folder):
    """``emseg segment IMAGE -k 10`` against the notebook's pipeline with scikit-learn, both writing a PNG."""
    folder = Path(folder)
    ours_png, theirs_png, labels_npy = folder / "emseg.png", folder / "sklearn.png", folder / "labels.npy"
    argv = ["segment", str(photo.path), "-k", str(settings.k), "--seed", str(SEED), "--quiet", "-o", str(ours_png)]

    def ours(*extra):
        with contextlib.redirect_stdout(io.StringIO()):  # the command prints the path it wrote
            status = cli.main(argv + list(extra))
        if status != 0:
            raise RuntimeError(f"emseg {' '.join(argv)} exited with status {status}")

    runs = {("emseg", "-"): (lambda r: timed(ours), settings.repeats),
            ("sklearn", "-"): (lambda r: timed(lambda: notebook_pipeline(photo.path, theirs_png, settings.k)),
                               settings.sklearn_rounds(photo.n_pixels))}
    with quiet():
        seconds, results = interleave(runs, settings.repeats)
        ours("--labels", str(labels_npy))  # once more, untimed, for the label map
        model = GaussianMixture(settings.k, random_state=SEED)
        image.fit_labels(model, image.load(photo.path))  # the fit the command makes, for its lower bound
    their_labels, their_model = results["sklearn", "-"][-1]
    note = "load, fit, predict, paint, save PNG; emseg's lower bound from the same fit through segment.image.fit_labels"
    if len(seconds["sklearn", "-"]) < settings.repeats:
        note += f"; scikit-learn: {len(seconds['sklearn', '-'])} run(s), too slow to repeat"
    return [row("segment", photo, "s / command",
                side("emseg segment", photo.n_pixels, seconds["emseg", "-"], value=float(model.lower_bound_)),
                side("notebook + sklearn", photo.n_pixels, seconds["sklearn", "-"],
                     value=float(their_model.lower_bound_)),
                "lower bound", ari(np.load(labels_npy).ravel(), their_labels), note)]


CASES = {
    "gmm-iter": gmm_iteration,
    "gmm-fit": gmm_fit,
    "kmeans-iter": kmeans_iteration,
    "kmeans-fit": kmeans_fit,
    "predict": predict,
    "sample": sample,
    "segment": segment,
}
