"""Views of EM at work: the trace files, the animation, the convergence plot and `emseg explain`."""

import csv
import json
import os
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
from numpy.testing import assert_array_equal
from PIL import Image
from sklearn.exceptions import ConvergenceWarning

from conftest import run_cli as run
from em import GaussianMixture
from kmeans import KMeans
from segment import image, learn

SNAPSHOTS = Path(__file__).parent / "snapshots"


@pytest.fixture(autouse=True)
def in_tmp(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # default outputs land in the current folder


def fitted(model, path):
    """The model fitted as `emseg segment` fits it (distinct colours weighted by counts)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        image.fit_labels(model, image.load(path))
    return model


def gif_frames(path):
    """Every frame of a GIF as RGB arrays."""
    with Image.open(path) as gif:
        frames = []
        for index in range(gif.n_frames):
            gif.seek(index)
            frames.append(np.asarray(gif.convert("RGB")))
    return frames


@pytest.fixture
def gradient_path(tmp_path):
    """A 12x16 picture whose colours blend into each other, so responsibilities are shared."""
    rng = np.random.default_rng(0)
    y, x = np.mgrid[0:12, 0:16]
    rgb = np.stack([x * 16, np.full_like(x, 128), y * 20], axis=2) + rng.normal(0, 20, (12, 16, 3))
    path = tmp_path / "gradient.png"
    Image.fromarray(np.clip(np.rint(rgb), 0, 255).astype(np.uint8)).save(path)
    return path


# ---------------------------------------------------------------- the trace

def test_trace_csv_equals_the_fitted_trace(capsys, rgb_image_path, tmp_path):
    code, out, _ = run(capsys, "segment", rgb_image_path, "-k", 4, "--trace", "trace.csv")
    assert code == 0 and out.split() == ["small_gmm_k4.png", "trace.csv"]
    with open(tmp_path / "trace.csv", newline="") as file:
        rows = list(csv.reader(file))
    header, table = rows[0], np.array(rows[1:], dtype=np.float64)
    model = fitted(GaussianMixture(4, random_state=0, trace=True), rgb_image_path)
    trace = model.trace_
    assert len(table) == model.n_iter_ + 1
    assert header[:3] == ["iteration", "lower_bound", "weights_0"] and "means_3_2" in header
    column = {name: table[:, i] for i, name in enumerate(header)}
    assert_array_equal(column["iteration"], np.arange(model.n_iter_ + 1))
    # repr() round-trips floats, so the file holds the very same numbers
    assert np.isnan(column["lower_bound"][0])
    assert_array_equal(column["lower_bound"][1:], model.lower_bounds_)
    for k in range(4):
        assert_array_equal(column[f"weights_{k}"], trace["weights"][:, k])
        for d in range(3):
            assert_array_equal(column[f"means_{k}_{d}"], trace["means"][:, k, d])
            assert_array_equal(column[f"variances_{k}_{d}"], trace["variances"][:, k, d])
    assert_array_equal(column["n_changed"], trace["n_changed"])
    assert_array_equal(table[-1, 2:6], model.weights_)


def test_trace_json_equals_the_fitted_trace(capsys, rgb_image_path, tmp_path):
    code, out, _ = run(capsys, "segment", rgb_image_path, "-k", 3, "--seed", 1, "--trace", "trace.json")
    assert code == 0
    saved = json.loads((tmp_path / "trace.json").read_text())
    model = fitted(GaussianMixture(3, random_state=1, trace=True), rgb_image_path)
    assert saved["lower_bound"][0] is None  # strict JSON: NaN is written as null
    assert saved["lower_bound"][1:] == model.lower_bounds_
    assert_array_equal(np.array(saved["means"]), model.trace_["means"])
    assert_array_equal(np.array(saved["variances"])[-1], model.covariances_)
    assert set(saved) == set(model.trace_)


def test_trace_csv_flattens_any_trace_and_keeps_integers():
    trace = dict(iteration=np.arange(2), inertia=np.array([np.nan, 2.5]),
                 centers=np.arange(8.0).reshape(2, 2, 2), n_changed=np.array([0.0, 3.0]))
    assert learn.trace_csv(trace) == (
        "iteration,inertia,centers_0_0,centers_0_1,centers_1_0,centers_1_1,n_changed\n"
        "0,nan,0.0,1.0,2.0,3.0,0.0\n"
        "1,2.5,4.0,5.0,6.0,7.0,3.0\n"
    )


# ------------------------------------------------------------ the animation

def test_animation_has_a_frame_per_row_painted_with_that_rows_means(capsys, rgb_image_path, tmp_path):
    code, out, _ = run(capsys, "segment", rgb_image_path, "-k", 4, "--seed", 2, "--animate", "em.gif")
    assert code == 0 and out.split()[-1] == "em.gif"
    model = fitted(GaussianMixture(4, random_state=2, trace=True), rgb_image_path)
    frames = gif_frames(tmp_path / "em.gif")
    assert len(frames) == model.n_iter_ + 1
    caption_colors = {(0, 0, 0), (255, 255, 255)}
    for frame, means in zip(frames, model.trace_["means"]):
        # the 24x32 picture is enlarged 15 times for display, with a caption strip below
        assert frame.shape[1] == 480 and frame.shape[0] > 360
        painted = {tuple(c) for c in np.unique(frame[:360].reshape(-1, 3), axis=0)}
        assert painted <= {tuple(c) for c in np.clip(np.rint(means), 0, 255).astype(int)}
        assert {tuple(c) for c in np.unique(frame[360:].reshape(-1, 3), axis=0)} == caption_colors


@pytest.mark.parametrize("covariance_type", ["full", "tied", "spherical"])
def test_trace_and_animation_of_every_covariance_type(capsys, rgb_image_path, tmp_path, covariance_type):
    """The trace keeps each row's covariances in the type's shape; each frame is painted with that row's labels."""
    code, out, _ = run(capsys, "segment", rgb_image_path, "-k", 3, "--covariance", covariance_type,
                       "--trace", "trace.json", "--animate", "em.gif", "--animate-size", 32)
    assert code == 0 and out.split()[-2:] == ["trace.json", "em.gif"]
    model = fitted(GaussianMixture(3, covariance_type=covariance_type, random_state=0, trace=True), rgb_image_path)
    saved = json.loads((tmp_path / "trace.json").read_text())
    variances = np.array(saved["variances"])
    assert variances.shape == (model.n_iter_ + 1, *model.covariances_.shape)
    assert_array_equal(variances[-1], model.covariances_)
    assert len(gif_frames(tmp_path / "em.gif")) == model.n_iter_ + 1
    picture = image.load(rgb_image_path)
    # the picture at its own size, uncaptioned; k=3 = D, so a tied trace is shaped like a diagonal one
    frames = learn.animation_frames(model.trace_, picture, longest=32, covariance_type=covariance_type)
    for t, frame in enumerate(frames):  # each pixel painted with the mean of its most likely component in row t
        row = GaussianMixture(3, covariance_type=covariance_type)
        row._set_params(model.trace_["weights"][t], model.trace_["means"][t], model.trace_["variances"][t])
        row.n_features_in_ = 3
        colors = np.clip(np.rint(row.means_), 0, 255).astype(np.uint8)
        assert_array_equal(frame, colors[row.predict(picture.rgb.reshape(-1, 3).astype(np.float64))].reshape(24, 32, 3))


def test_animation_is_byte_identical_for_the_same_seed(capsys, rgb_image_path, tmp_path):
    for name in ("a.gif", "b.gif"):
        assert run(capsys, "segment", rgb_image_path, "-k", 4, "--animate", name)[0] == 0
    assert (tmp_path / "a.gif").read_bytes() == (tmp_path / "b.gif").read_bytes()


def test_captions_carry_the_iteration_and_the_bound():
    trace = dict(iteration=np.arange(3), lower_bound=np.array([np.nan, -12.5, -12.25]))
    assert learn.captions(trace) == [
        "iteration 0/2   (start)",
        "iteration 1/2   lower bound -12.500000",
        "iteration 2/2   lower bound -12.250000",
    ]


def test_large_images_are_shrunk_for_display_and_tiny_ones_enlarged_evenly():
    labels = np.arange(640 * 427).reshape(427, 640)
    shrunk = image.resize_nearest(labels, 480)
    assert shrunk.shape == (320, 480)
    assert np.isin(shrunk, labels).all()  # every displayed pixel is one of the picture's
    tiny = np.arange(12).reshape(3, 4)
    assert_array_equal(image.resize_nearest(tiny, 480), np.kron(tiny, np.ones((120, 120), dtype=int)))


def test_animation_frames_keep_transparent_pixels_black():
    rgb = np.zeros((4, 6, 3), dtype=np.uint8)
    rgb[:, 3:] = 200
    alpha = np.full((4, 6), 255, dtype=np.uint8)
    alpha[0, 0] = 0
    trace = dict(iteration=np.arange(1), lower_bound=np.array([np.nan]), weights=np.array([[0.5, 0.5]]),
                 means=np.array([[[10.0, 10.0, 10.0], [190.0, 190.0, 190.0]]]), variances=np.ones((1, 2, 3)))
    (frame,) = learn.animation_frames(trace, image.Picture(rgb, alpha), longest=6)
    assert_array_equal(frame[0, 0], [0, 0, 0])
    assert_array_equal(frame[1, 0], [10, 10, 10]) and assert_array_equal(frame[0, 5], [190, 190, 190])


# ------------------------------------------------------ the convergence plot

def test_plot_convergence_writes_a_png(capsys, rgb_image_path, tmp_path):
    pytest.importorskip("matplotlib")
    for name in ("conv.png", "again.png"):
        code, out, _ = run(capsys, "segment", rgb_image_path, "-k", 4, "--plot-convergence", name)
        assert code == 0 and out.split()[-1] == name
    with Image.open(tmp_path / "conv.png") as plot:
        assert plot.format == "PNG" and plot.width > 400
    assert (tmp_path / "conv.png").read_bytes() == (tmp_path / "again.png").read_bytes()


def test_plot_convergence_without_matplotlib_says_how_to_install_it(capsys, rgb_image_path, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib.figure", None)  # makes the import fail
    code, out, err = run(capsys, "segment", rgb_image_path, "-k", 4, "--plot-convergence", "conv.png")
    assert code == 1 and out == ""
    assert err == "emseg: error: the convergence plot needs matplotlib, which is not installed; pip install 'emseg[bench]'\n"
    assert os.listdir(tmp_path) == ["small.png"]  # checked before the fit: nothing written


# ------------------------------------------------------------ bad paths

@pytest.mark.parametrize("option, path, message", [
    ("--trace", "trace.txt", "unknown output extension '.txt'; use .csv or .json"),
    ("--animate", "em.png", "unknown output extension '.png'; use .gif"),
    ("--plot-convergence", "conv.gif", "unknown output extension '.gif'; use .png"),
    ("--trace", "missing/trace.csv", "the folder missing does not exist; create it first"),
    ("--animate", "small.gif", None),  # a fine path: the run succeeds
], ids=["trace-extension", "animate-extension", "plot-extension", "missing-folder", "good"])
def test_bad_output_paths_give_one_error_line_and_write_nothing(capsys, rgb_image_path, tmp_path, option, path, message):
    code, out, err = run(capsys, "segment", rgb_image_path, "-k", 2, option, path)
    if message is None:
        assert code == 0 and (tmp_path / path).is_file()
        return
    assert code == 1 and out == ""
    assert err.startswith("emseg: error: ") and err.count("\n") == 1 and message in err
    assert os.listdir(tmp_path) == ["small.png"]


def test_the_animation_may_not_overwrite_the_input(capsys, tmp_path):
    Image.new("RGB", (8, 8), "red").save(tmp_path / "in.gif")
    code, _, err = run(capsys, "segment", tmp_path / "in.gif", "-k", 1, "--animate", tmp_path / "in.gif")
    assert code == 1 and "is the input image" in err


# ------------------------------------------------------------ emseg explain

@pytest.mark.exactness
def test_explain_matches_the_snapshot(capsys, gradient_path):
    code, out, err = run(capsys, "explain", gradient_path, "-k", 3)
    assert code == 0 and err == ""
    snapshot = SNAPSHOTS / "explain_gradient_k3.txt"
    if os.environ.get("EMSEG_UPDATE_SNAPSHOTS"):
        snapshot.write_text(out)
    assert out == snapshot.read_text()


@pytest.mark.exactness
@pytest.mark.parametrize("covariance_type", ["diag", "full", "tied", "spherical"])
def test_explain_replays_exactly_what_the_reference_engine_fits(gradient_path, covariance_type):
    picture = image.load(gradient_path)
    X = picture.rgb.reshape(-1, 3).astype(np.float64)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        model = GaussianMixture(3, covariance_type=covariance_type, max_iter=2, tol=0, engine="reference",
                                random_state=0, trace=True).fit(X)
    trace = model.trace_
    steps = learn.em_steps(X, trace["weights"][0], trace["means"][0], trace["variances"][0], model.reg_covar, 2,
                           covariance_type)
    for t, step in enumerate(steps, start=1):
        assert_array_equal(step["means"], trace["means"][t])
        assert_array_equal(step["variances"], trace["variances"][t])
        assert_array_equal(step["weights"], trace["weights"][t])
        assert step["lower_bound"] == trace["lower_bound"][t]


@pytest.mark.parametrize("covariance_type", ["full", "tied"])
def test_explain_prints_the_covariance_matrices(capsys, gradient_path, covariance_type):
    code, out, _ = run(capsys, "explain", gradient_path, "-k", 2, "--iterations", 1, "--covariance", covariance_type)
    assert code == 0 and f"covariance_type={covariance_type}" in out.splitlines()[0]
    X = image.load(gradient_path).rgb.reshape(-1, 3).astype(np.float64)
    start = GaussianMixture(2, covariance_type=covariance_type, max_iter=0, engine="reference", random_state=0).fit(X)
    matrices = start.covariances_[None] if covariance_type == "tied" else start.covariances_
    lines = out.splitlines()
    for k, matrix in enumerate(matrices):  # the start's matrices, first printed under their title
        title = "shared covariance Sigma:" if covariance_type == "tied" else f"covariance Sigma_{k}:"
        at = next(i for i, line in enumerate(lines) if line.strip().startswith(title))
        printed = np.array([[float(v) for v in line.split()[1:]] for line in lines[at + 1: at + 4]])
        assert_array_equal(printed, np.round(matrix, 3))  # printed with 3 decimals
    assert "scatter Q_0:" in out and "scatter Q_1:" in out


def test_explain_shrinks_a_large_image(capsys, tmp_path):
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 256, (100, 60, 3), dtype=np.uint8)).save(tmp_path / "big.png")
    code, out, _ = run(capsys, "explain", tmp_path / "big.png", "-k", 2, "--iterations", 1, "--pixels", 2)
    first = out.splitlines()[0]
    assert code == 0 and "10x16 pixels: 160 samples" in first and "k=2" in first
    assert "Iteration 1" in out and "Iteration 2" not in out


def test_explain_leaves_transparent_pixels_out(capsys, tmp_path):
    rgba = np.zeros((8, 8, 4), dtype=np.uint8)
    rgba[:, :, :3] = np.arange(64).reshape(8, 8, 1) * 4
    rgba[:, :4, 3] = 255
    Image.fromarray(rgba, "RGBA").save(tmp_path / "half.png")
    code, out, _ = run(capsys, "explain", tmp_path / "half.png", "-k", 2)
    assert code == 0 and "8x8 pixels: 32 samples" in out


def test_explain_reports_a_missing_file(capsys):
    code, out, err = run(capsys, "explain", "nope.png")
    assert code == 1 and out == "" and err == "emseg: error: nope.png: no such file; check the path.\n"


# ------------------------------------------------------------------ k-means

def test_kmeans_trace_and_animation(capsys, rgb_image_path, tmp_path):
    code, _, _ = run(capsys, "segment", rgb_image_path, "-k", 4, "--method", "kmeans",
                     "--trace", "trace.json", "--animate", "km.gif")
    assert code == 0
    model = fitted(KMeans(4, random_state=0, trace=True), rgb_image_path)
    saved = json.loads((tmp_path / "trace.json").read_text())
    assert saved["inertia"][0] is None
    assert_array_equal(np.array(saved["centers"]), model.trace_["centers"])
    assert_array_equal(np.array(saved["centers"])[-1], model.cluster_centers_)
    assert len(gif_frames(tmp_path / "km.gif")) == model.n_iter_ + 1
