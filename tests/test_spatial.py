"""Spatial smoothing with a Potts prior: mean-field EM (em.spatial), ICM (kmeans.spatial), segment.smooth and the CLI.

The oracle is a synthetic piecewise-constant image with heavy Gaussian noise
and a known truth; the kernels are checked against the readable NumPy sweeps,
the free energy against its definition, the entropy against scipy.
"""

import copy
import json

import numba
import numpy as np
import pytest
import scipy.stats
from PIL import Image
from sklearn.datasets import load_sample_image
from sklearn.metrics import adjusted_rand_score

import cli
from em import GaussianMixture, _kernels, spatial
from em.estimator import evaluation_precisions
from exactness import U, ULP, sum_error
from kmeans import KMeans
from kmeans import spatial as kspatial
from segment import image, smooth

F32 = 2.0**-24  # unit roundoff of float32, the storage of the grid's responsibilities
REGION_MEANS = np.array([[70.0, 70.0, 70.0], [180.0, 80.0, 70.0], [80.0, 170.0, 90.0], [90.0, 90.0, 180.0]])


def noisy_regions(height=48, width=64, sigma=55.0, seed=0):
    """(truth (height, width) int, rgb uint8): four regions (quadrants, the lower right a disc), heavy noise."""
    rows, cols = np.indices((height, width))
    truth = (rows >= height // 2) * 2 + (cols >= width // 2)
    truth[(rows - height * 0.3) ** 2 + (cols - width * 0.3) ** 2 < (height * 0.15) ** 2] = 3
    rng = np.random.default_rng(seed)
    rgb = np.clip(np.rint(REGION_MEANS[truth] + rng.normal(0.0, sigma, (height, width, 3))), 0, 255)
    return truth, rgb.astype(np.uint8)


def grid_of(rgb, hole=True):
    """(index, colors) of an image's pixels, one colour row per pixel; one pixel left out when ``hole``."""
    height, width = rgb.shape[:2]
    index = np.arange(height * width, dtype=np.int64).reshape(height, width)
    if hole:
        index[height // 3, width // 3] = -1
    return index, rgb.reshape(-1, 3).astype(np.float64)


def start_resp(model, index, colors, dtype=np.float64):
    """The model's responsibilities of each pixel, 0 for the pixel left out: a start for one sweep."""
    resp = model.predict_proba(colors).astype(dtype)[index]
    resp[index < 0] = 0.0
    return resp


def log_prob_of(model, colors):
    weights, means, covariances, factors = model._fitted_params()
    precisions = evaluation_precisions(model.covariance_type, covariances, factors, means.shape)
    return _kernels.weighted_log_prob(colors, means, precisions, np.log(weights))


@pytest.fixture(scope="module")
def regions():
    return noisy_regions()


@pytest.fixture(scope="module")
def small_fits():
    """A 24 x 32 noisy grid with a hole, and a mixture of each covariance type fitted to its pixels (shared: fits are slow)."""
    index, colors = grid_of(noisy_regions(height=24, width=32)[1])
    fits = {covariance_type: GaussianMixture(4, covariance_type=covariance_type, random_state=0, max_iter=20).fit(colors)
            for covariance_type in ("diag", "full", "tied", "spherical")}
    return index, colors, fits


# each covariance type gives the sweep its own log-densities; the 8-neighbour case once (the offsets are data)
@pytest.mark.parametrize("covariance_type, neighbours", [("diag", 4), ("full", 4), ("tied", 4), ("spherical", 4),
                                                         ("full", 8)])
def test_sweep_kernel_matches_reference(small_fits, covariance_type, neighbours):
    index, colors, fits = small_fits
    model = fits[covariance_type]
    log_prob, beta = log_prob_of(model, colors), 0.8
    offsets = kspatial.neighbour_offsets(neighbours)
    want_resp = start_resp(model, index, colors)
    got_resp = want_resp.copy()
    want = spatial.mean_field_sweep_reference(index, colors, log_prob, want_resp, beta, offsets, model.means_)
    got = spatial.mean_field_sweep(index, colors, log_prob, got_resp, beta, offsets, model.means_)
    # A score s = log π N + β Σ_j q_j has |s| <= S; the two sides add its terms (deg + 1 of them) and the K
    # terms of log Z in other orders, and exp and log are within ULP: q is within a relative
    # e0 = (deg + K + 2 ULP + 4) u (S + β deg) of the other side's from the same neighbours. A phase reads
    # the earlier phases' q, each within e, through β Σ_j q_j: e grows to e0 + 2 β deg e per phase, 4 phases.
    S = np.abs(log_prob).max() + beta * neighbours
    e = 0.0
    for _ in range(4):
        e = (neighbours + 4 + 2 * ULP + 4) * U * S + 2 * beta * neighbours * e
    np.testing.assert_allclose(got_resp, want_resp, rtol=e, atol=0)
    # each sum over n pixels: the q's own error e, plus two summation orders' rounding
    n = int((index >= 0).sum())
    for got_sum, want_sum, scale in zip(got[:3], want[:3], (1.0, np.abs(colors).max(), 4 * np.abs(colors).max() ** 2)):
        bound = (e + 2 * sum_error(n)) * n * scale
        np.testing.assert_allclose(got_sum, want_sum, rtol=0, atol=bound)
    # F: the kernel sums log Z_i - β Σ q n^later (an identity), the reference the definition; both are sums of
    # n terms of size <= S + log K with each term's q within e
    assert abs(got[3] - want[3]) <= (e * 4 + 4 * sum_error(n)) * n * (S + np.log(4) + 1)


@pytest.mark.parametrize("covariance_type", ["diag", "full", "tied", "spherical"])
def test_free_energy_never_decreases(small_fits, covariance_type):
    index, colors, fits = small_fits
    model = copy.deepcopy(fits[covariance_type])  # fit_grid replaces the parameters; the shared fit stays as it was
    beta, neighbours = 1.0, 8
    fit = spatial.fit_grid(model, index, colors, beta, neighbours, max_iter=8, tol=0.0)
    assert fit.n_iter == 8
    # The responsibilities are stored in float32: each within F32 of the q the kernel used for F. F is
    # stationary in q on the simplex, so a stored q moves F by at most (|log Z_i| + 1) Σ_k |Δq| <= (|log Z_i| + 1) K F32
    # per pixel, with |log Z_i| <= max |log π N| + β deg + log K; twice (before and after), per pixel as reported.
    log_z = np.abs(log_prob_of(model, colors)).max() + beta * neighbours + np.log(4)
    tolerance = 2 * 4 * F32 * (log_z + 1) + 4 * sum_error(colors.shape[0]) * log_z
    steps = np.diff(fit.free_energies)
    assert steps.min() >= -tolerance, steps
    assert fit.free_energies[-1] - fit.free_energies[0] > 100 * tolerance  # it moved: the check can fail


@pytest.mark.parametrize("method", ["gmm", "kmeans"])
def test_smoothing_recovers_the_regions(regions, method):
    truth, rgb = regions
    picture = image.Picture(rgb)
    model = GaussianMixture(4, random_state=0) if method == "gmm" else KMeans(4, random_state=0)
    color_labels = image.fit_color_labels(model, picture)
    plain = adjusted_rand_score(truth.ravel(), image.pixel_labels(picture, color_labels).ravel())
    labels, _ = smooth.refine(model, picture, color_labels, beta=1.5, neighbours=8)
    smoothed = adjusted_rand_score(truth.ravel(), labels.ravel())
    # noise of σ = 55 against means 90 to 110 apart leaves the colours alone ambiguous; the regions are not
    assert plain < 0.6 and smoothed > 0.85, (plain, smoothed)


def test_icm_kernel_matches_reference_and_cost_never_increases(regions):
    _, rgb = regions
    index, colors = grid_of(rgb)
    km = KMeans(4, random_state=0).fit(colors)
    labels = np.where(index >= 0, km.labels_.reshape(index.shape), -1)
    got = kspatial.icm(index, colors, km.cluster_centers_, labels, 1.0, 8, tol=0.0)
    want = kspatial.icm(index, colors, km.cluster_centers_, labels, 1.0, 8, tol=0.0,
                        sweep=kspatial.icm_sweep_reference)
    # the same labels (integer counts of neighbours; costs of well-separated clusters, no near-ties here)
    np.testing.assert_array_equal(got[1], want[1])
    # centres: means of the same pixels added in another order, 2 sum_error(n) of the colours' magnitude
    np.testing.assert_allclose(got[0], want[0], rtol=0, atol=2 * sum_error(colors.shape[0]) * 255)
    # costs: n terms of size <= max scaled distance + β deg, summed in other orders
    bound = 2 * sum_error(colors.shape[0]) * (np.max(got[2]) + 8 + 1)
    np.testing.assert_allclose(got[2], want[2], rtol=0, atol=bound)
    assert np.diff(got[2]).max() <= bound
    assert len(got[2]) > 1 and got[2][-1] < got[2][0] - 100 * bound


def test_results_do_not_depend_on_the_thread_count():
    _, rgb = noisy_regions(height=70, width=40)  # 5 chunks of 16 rows
    index, colors = grid_of(rgb)
    model = GaussianMixture(4, covariance_type="full", random_state=0).fit(colors)
    log_prob, offsets = log_prob_of(model, colors), kspatial.neighbour_offsets(8)
    km = KMeans(4, random_state=0).fit(colors)
    runs = []
    before = numba.get_num_threads()
    try:
        for n_threads in (1, min(2, numba.config.NUMBA_NUM_THREADS)):
            numba.set_num_threads(n_threads)
            resp = start_resp(model, index, colors, np.float32)
            sums = spatial.mean_field_sweep(index, colors, log_prob, resp, 1.0, offsets, model.means_)
            labels = np.where(index >= 0, km.labels_.reshape(index.shape), -1)
            icm = kspatial.icm_sweep(index, colors, kspatial_scaled(colors, km.cluster_centers_), labels, 1.0, offsets)
            runs.append((resp, *sums, labels, *icm))
    finally:
        numba.set_num_threads(before)
    for a, b in zip(*runs):
        np.testing.assert_array_equal(a, b)


def kspatial_scaled(colors, centers):
    return kspatial._kernels.squared_distances(colors, centers) / 2000.0


def test_beta_zero_is_todays_fit(regions, tmp_path):
    _, rgb = regions
    path = tmp_path / "noisy.png"
    Image.fromarray(rgb).save(path)
    for method in ("gmm", "kmeans"):
        outputs = []
        for extra in ([], ["--smooth", "0", "--neighbours", "8"]):
            output = tmp_path / f"{method}{len(extra)}.png"
            assert cli.main(["segment", str(path), "-k", "4", "--method", method, "-o", str(output), "--quiet",
                             "--labels", str(output.with_suffix(".npy")), *extra]) == 0
            outputs.append((output.read_bytes(), np.load(output.with_suffix(".npy"))))
        assert outputs[0][0] == outputs[1][0]
        np.testing.assert_array_equal(outputs[0][1], outputs[1][1])
    picture = image.Picture(rgb)
    model = GaussianMixture(4, random_state=0)
    color_labels = image.fit_color_labels(model, picture)
    means = model.means_.copy()
    labels, soft = smooth.refine(model, picture, color_labels, beta=0.0)
    np.testing.assert_array_equal(labels, image.pixel_labels(picture, color_labels))
    np.testing.assert_array_equal(model.means_, means)
    assert soft is None


@pytest.mark.parametrize("beta", [0.0, 1.0])
def test_probability_maps_sum_to_one_and_entropy_matches_scipy(tmp_path, beta):
    rgb = load_sample_image("flower.jpg")[::8, ::8]  # a real photo, 54 x 80
    path = tmp_path / "flower.png"
    Image.fromarray(rgb).save(path)
    k = 5
    args = ["segment", str(path), "-k", str(k), "-o", str(tmp_path / "out.png"), "--quiet", "--smooth", str(beta),
            "--proba", str(tmp_path), "--uncertainty", str(tmp_path / "u.png")]
    assert cli.main(args) == 0
    maps = np.stack([np.asarray(Image.open(tmp_path / f"flower_p{j:02d}.png"), dtype=np.float64) for j in range(k)])
    # each map rounds γ to the nearest 1/65535 (at most half a step each); γ itself sums to 1 within K F32
    # (float32 storage; the float64 responsibilities sum to 1 within K u)
    assert np.abs(maps.sum(axis=0) / 65535 - 1).max() <= k / (2 * 65535) + k * F32
    picture = image.load(path)
    model = GaussianMixture(k, random_state=0)
    color_labels = image.fit_color_labels(model, picture)
    soft = smooth.refine(model, picture, color_labels, beta=beta)[1] or smooth.SoftMaps.of_model(model, picture)
    gamma = np.stack([soft.component(j) for j in range(k)])
    got = soft.entropy()
    # scipy normalises γ by its sum s = 1 + ε, |ε| <= K F32; H(γ/s) = H(γ)/s + log s moves H by |ε| (1 + H);
    # the K-term sums and logs of each side round by (K + ULP) u (1 + H)
    want = scipy.stats.entropy(gamma, axis=0)
    np.testing.assert_allclose(got, want, rtol=0, atol=(k * F32 + 2 * (k + ULP) * U) * (1 + np.log(k)))
    written = np.asarray(Image.open(tmp_path / "u.png"), dtype=np.float64) / 65535
    assert np.abs(written - got / np.log(k)).max() <= 0.5 / 65535 + 1e-12
    assert got.max() > 0.1  # not all certain: the comparison can fail


@pytest.mark.parametrize("args, message", [
    (["--smooth", "1", "--method", "kmeans", "--proba", "."], "no --proba or --uncertainty"),
    (["--smooth", "1", "--dither", "floyd-steinberg"], "--dither and --smooth"),
    (["--proba", "no-such-folder"], "no such folder"),
    (["--uncertainty", "u.jpg"], "use .png"),
])
def test_bad_smoothing_options_are_one_clear_error(regions, tmp_path, capsys, monkeypatch, args, message):
    monkeypatch.chdir(tmp_path)
    Image.fromarray(regions[1]).save("noisy.png")
    assert cli.main(["segment", "noisy.png", "-k", "3", "--quiet", *args]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("emseg: error: ") and message in err[0]
    assert not (tmp_path / "noisy_gmm_k3.png").exists() and not (tmp_path / "noisy_kmeans_k3.png").exists()


@pytest.mark.parametrize("args", [["--smooth", "-1"], ["--smooth", "nan"], ["--neighbours", "6"]])
def test_bad_smoothing_values_are_usage_errors(capsys, args):
    with pytest.raises(SystemExit) as exit_:
        cli.main(["segment", "x.png", *args])
    assert exit_.value.code == 2 and ("--smooth" in capsys.readouterr().err or "--neighbours" in " ".join(args))


def test_library_refuses_bad_beta_and_neighbours(regions):
    picture = image.Picture(regions[1])
    with pytest.raises(ValueError, match="smooth=-0.5"):
        smooth.refine(GaussianMixture(2), picture, None, beta=-0.5)
    with pytest.raises(ValueError, match="neighbours=6"):
        smooth.refine(GaussianMixture(2), picture, None, beta=1.0, neighbours=6)


def test_compare_reports_the_smoothed_fit(regions, tmp_path, capsys):
    path = tmp_path / "noisy.png"
    Image.fromarray(regions[1][:24, :32]).save(path)
    assert cli.main(["compare", str(path), "-k", "3", "--smooth", "1", "--neighbours", "8", "--json", "--quiet"]) == 0
    rows = json.loads(capsys.readouterr().out)["results"]
    assert [(row["smooth"], row["neighbours"]) for row in rows] == [(1.0, 8), (1.0, 8)]


def test_batch_smooths_only_per_image(regions, tmp_path, capsys):
    path = tmp_path / "noisy.png"
    Image.fromarray(regions[1]).save(path)
    assert cli.main(["batch", str(path), "-o", str(tmp_path / "out"), "--smooth", "1"]) == 1
    assert "use it with --per-image" in capsys.readouterr().err


def test_batch_per_image_smooths_as_segment_does(regions, tmp_path, capsys):
    path = tmp_path / "noisy.png"
    Image.fromarray(regions[1][:24, :32]).save(path)
    args = ["-k", "3", "--smooth", "1", "--neighbours", "8"]
    distributed = pytest.importorskip("distributed")  # batch's optional dependency
    # a Dask cluster in this process (a worker thread, no worker processes to start): the kernels are loaded already
    with distributed.LocalCluster(n_workers=1, threads_per_worker=1, processes=False, dashboard_address=None) as cluster:
        assert cli.main(["batch", str(path), "-o", str(tmp_path / "out"), "--per-image", "--scheduler",
                         cluster.scheduler_address, *args]) == 0
    assert cli.main(["segment", str(path), "-o", str(tmp_path / "alone.png"), "--quiet", *args]) == 0
    assert cli.main(["segment", str(path), "-o", str(tmp_path / "plain.png"), "--quiet", "-k", "3"]) == 0
    batch, alone, plain = (np.asarray(Image.open(p)) for p in
                           (tmp_path / "out" / "noisy_gmm_k3.png", tmp_path / "alone.png", tmp_path / "plain.png"))
    np.testing.assert_array_equal(batch, alone)
    assert (alone != plain).any()  # smoothing changed the painting: the equality above can fail


@pytest.fixture(scope="module")
def small_png(tmp_path_factory):
    path = tmp_path_factory.mktemp("small") / "noisy.png"
    Image.fromarray(noisy_regions(height=24, width=32)[1]).save(path)
    return path


def test_segment_json_reports_the_grid_fit(small_png, tmp_path, capsys):
    def segment_json(*extra):
        assert cli.main(["segment", str(small_png), "-k", "3", "-o", str(tmp_path / "out.png"), "--json", *extra]) == 0
        return json.loads(capsys.readouterr().out)

    plain, smoothed = segment_json(), segment_json("--smooth", "1", "--neighbours", "8")
    assert plain["color_fit"] is None and plain["objective"] == "lower_bound"
    # the smoothed run starts from the same fit on the colours, reported as such
    assert smoothed["color_fit"] == dict(n_iter=plain["n_iter"], objective="lower_bound",
                                         objective_value=plain["objective_value"])
    # and reports the grid fit itself, as the library's refinement of that fit gives it
    picture = image.load(small_png)
    model = GaussianMixture(3, random_state=0)
    color_labels = image.fit_color_labels(model, picture)
    energies = []
    smooth.refine(model, picture, color_labels, beta=1.0, neighbours=8, callback=lambda n, f: energies.append(f))
    assert (smoothed["smooth"], smoothed["neighbours"], smoothed["objective"]) == (1.0, 8, "free_energy")
    assert (smoothed["n_iter"], smoothed["objective_value"]) == (len(energies), energies[-1])


def test_demo_smooths_both_fits_and_counts_the_time(small_png, tmp_path, capsys):
    assert cli.main(["demo", str(small_png), "-k", "3", "-o", str(tmp_path), "--smooth", "1"]) == 0
    out, err = capsys.readouterr()
    rows = {line.split()[0]: line for line in out.splitlines()[1:]}
    assert "free energy" in rows["gmm"] and "ICM cost" in rows["kmeans"]
    # each row's seconds (3 decimals) include its smoothing, reported on stderr (2 decimals, rounded)
    smoothing = [float(line.split(" in ")[1].split()[0]) for line in err.splitlines() if "refined on the pixel grid" in line]
    assert [float(rows[m].split()[-4]) >= s - 0.005 for m, s in zip(("gmm", "kmeans"), smoothing)] == [True, True]
    for method in ("gmm", "kmeans"):  # the panels are the smoothed segmentations, as segment paints them
        assert cli.main(["segment", str(small_png), "-k", "3", "--method", method, "--smooth", "1", "--quiet",
                         "-o", str(tmp_path / f"{method}.png")]) == 0
    for panel, method in (("k_GMM", "gmm"), ("kmeans", "kmeans")):
        np.testing.assert_array_equal(np.asarray(Image.open(tmp_path / f"{panel}_k=3.png")),
                                      np.asarray(Image.open(tmp_path / f"{method}.png")))
