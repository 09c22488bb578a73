"""Colour spaces, CIEDE2000, the quality figures, dithering and the quality search (segment/colour.py, segment/quality.py)."""

import itertools
import json

import numpy as np
import pytest
from exactness import U, sum_error
from skimage.color import lab2xyz, rgb2lab
from skimage.color.colorconv import _illuminants, xyz_from_rgb
from sklearn.datasets import load_sample_image

from conftest import read_image, run_cli
from segment import colour, image, modelfile, models, quality

ULP = 4  # exp, log, cbrt, pow within 4 units in the last place (docs/testing.md)

# Sharma, Wu & Dalal, "The CIEDE2000 color-difference formula: implementation notes, supplementary
# test data, and mathematical observations", Color Res. Appl. 30(1), 2005, Table 1: L1 a1 b1 L2 a2 b2 ΔE00
SHARMA_2005 = np.array([
    [50.0000, 2.6772, -79.7751, 50.0000, 0.0000, -82.7485, 2.0425],
    [50.0000, 3.1571, -77.2803, 50.0000, 0.0000, -82.7485, 2.8615],
    [50.0000, 2.8361, -74.0200, 50.0000, 0.0000, -82.7485, 3.4412],
    [50.0000, -1.3802, -84.2814, 50.0000, 0.0000, -82.7485, 1.0000],
    [50.0000, -1.1848, -84.8006, 50.0000, 0.0000, -82.7485, 1.0000],
    [50.0000, -0.9009, -85.5211, 50.0000, 0.0000, -82.7485, 1.0000],
    [50.0000, 0.0000, 0.0000, 50.0000, -1.0000, 2.0000, 2.3669],
    [50.0000, -1.0000, 2.0000, 50.0000, 0.0000, 0.0000, 2.3669],
    [50.0000, 2.4900, -0.0010, 50.0000, -2.4900, 0.0009, 7.1792],
    [50.0000, 2.4900, -0.0010, 50.0000, -2.4900, 0.0010, 7.1792],
    [50.0000, 2.4900, -0.0010, 50.0000, -2.4900, 0.0011, 7.2195],
    [50.0000, 2.4900, -0.0010, 50.0000, -2.4900, 0.0012, 7.2195],
    [50.0000, -0.0010, 2.4900, 50.0000, 0.0009, -2.4900, 4.8045],
    [50.0000, -0.0010, 2.4900, 50.0000, 0.0010, -2.4900, 4.8045],
    [50.0000, -0.0010, 2.4900, 50.0000, 0.0011, -2.4900, 4.7461],
    [50.0000, 2.5000, 0.0000, 50.0000, 0.0000, -2.5000, 4.3065],
    [50.0000, 2.5000, 0.0000, 73.0000, 25.0000, -18.0000, 27.1492],
    [50.0000, 2.5000, 0.0000, 61.0000, -5.0000, 29.0000, 22.8977],
    [50.0000, 2.5000, 0.0000, 56.0000, -27.0000, -3.0000, 31.9030],
    [50.0000, 2.5000, 0.0000, 58.0000, 24.0000, 15.0000, 19.4535],
    [50.0000, 2.5000, 0.0000, 50.0000, 3.1736, 0.5854, 1.0000],
    [50.0000, 2.5000, 0.0000, 50.0000, 3.2972, 0.0000, 1.0000],
    [50.0000, 2.5000, 0.0000, 50.0000, 1.8634, 0.5757, 1.0000],
    [50.0000, 2.5000, 0.0000, 50.0000, 3.2592, 0.3350, 1.0000],
    [60.2574, -34.0099, 36.2677, 60.4626, -34.1751, 39.4387, 1.2644],
    [63.0109, -31.0961, -5.8663, 62.8187, -29.7946, -4.0864, 1.2630],
    [61.2901, 3.7196, -5.3901, 61.4292, 2.2480, -4.9620, 1.8731],
    [35.0831, -44.1164, 3.7933, 35.0232, -40.0716, 1.5901, 1.8645],
    [22.7233, 20.0904, -46.6940, 23.0331, 14.9730, -42.5619, 2.0373],
    [36.4612, 47.8580, 18.3852, 36.2715, 50.5065, 21.2231, 1.4146],
    [90.8027, -2.0831, 1.4410, 91.1528, -1.6435, 0.0447, 1.4441],
    [90.9257, -0.5406, -0.9208, 88.6381, -0.8985, -0.7239, 1.5381],
    [6.7747, -0.2908, -2.4247, 5.8714, -0.0985, -2.2286, 0.6377],
    [2.0776, 0.0795, -1.1350, 0.9033, -0.0636, -0.5514, 0.9082],
])

# Ottosson, "A perceptual color space for image processing" (bottosson.github.io/posts/oklab, 2020):
# XYZ (D65) -> Oklab, published to three decimals
OTTOSSON_2020 = [
    ((0.950, 1.000, 1.089), (1.000, 0.000, 0.000)),
    ((1.000, 0.000, 0.000), (0.450, 1.236, -0.019)),
    ((0.000, 1.000, 0.000), (0.922, -0.671, 0.263)),
    ((0.000, 0.000, 1.000), (0.153, -1.415, -0.449)),
]

# IEC 61966-2-1:1999, eq. (7): linear sRGB -> XYZ, published to four decimals
IEC_SRGB_TO_XYZ = np.array([[0.4124, 0.3576, 0.1805], [0.2126, 0.7152, 0.0722], [0.0193, 0.1192, 0.9505]])


def test_ciede2000_matches_sharma_wu_dalal():
    """All 34 pairs, both orders. The published ΔE00 are rounded to 4 decimals, so a correct
    value lies within half a unit of the 4th decimal, 5e-5, of the table (issue's 1e-4 is looser);
    float64 rounding of the formula adds ~1e-13, negligible beside it."""
    lab1, lab2, want = SHARMA_2005[:, :3], SHARMA_2005[:, 3:6], SHARMA_2005[:, 6]
    for first, second in ((lab1, lab2), (lab2, lab1)):  # the formula is symmetric; the table lists one order
        np.testing.assert_allclose(colour.delta_e2000(first, second), want, rtol=0, atol=5e-5 + 1e-12)


def test_ciede2000_indexed_pairs_match_the_rows_they_name(rng):
    lab = SHARMA_2005[:, :3]
    i, j = rng.integers(0, len(lab), 50), rng.integers(0, len(lab), 50)
    # the same float operations on the same values: identical bits
    assert np.array_equal(colour.delta_e2000_indexed(lab, i, SHARMA_2005[:, 3:6], j),
                          colour.delta_e2000(lab[i], SHARMA_2005[j, 3:6]))


def test_srgb_matrix_is_iec_61966_2_1():
    """Derived from the standard's primaries and D65; the standard prints it to 4 decimals: within 5e-5."""
    np.testing.assert_allclose(colour.SRGB_TO_XYZ, IEC_SRGB_TO_XYZ, rtol=0, atol=5e-5)
    # white maps to L* = 100, a* = b* = 0: the white is the matrix's row sums; a few u of rounding
    np.testing.assert_allclose(colour.srgb8_to_lab(np.array([[255, 255, 255]])), [[100, 0, 0]], rtol=0, atol=1e-12)


def _every_8bit_corner_and_random(rng, n=4000):
    grid = np.array(list(itertools.product(np.linspace(0, 255, 18).round(), repeat=3)))
    return np.concatenate([grid, rng.integers(0, 256, (n, 3))]).astype(np.float64)


def test_lab_matches_scikit_image(rng):
    """Our sRGB transfer function and L*a*b* on scikit-image's own matrix and white, against rgb2lab.

    Bound: f = cbrt(t) is formed from 3 products and a division (4u relative in t, so 4u/3 in f) and a
    cbrt (ULP), on each side: |Δf| ≤ 2(4/3 + ULP + 2)u·f_max, f_max = cbrt(1.09). L*, a*, b* scale
    f-differences by at most 116, 2·500, 2·200. scikit-image also rounds the CIE constants:
    7.787 for 1/(3(6/29)²) and 0.008856 for (6/29)³, which moves f on the linear branch by
    |Δκ|·t ≤ |Δκ|·0.008856 and leaves a jump at the rounded threshold; both are added.
    """
    rgb = _every_8bit_corner_and_random(rng)
    white = np.array(_illuminants["D65"]["2"], dtype=np.float64)
    ours = colour.xyz_to_lab(colour.srgb_to_linear(rgb / 255) @ xyz_from_rgb.T, white)
    theirs = rgb2lab((rgb / 255)[None])[0]
    kappa, epsilon = 1 / (3 * (6 / 29) ** 2), (6 / 29) ** 3
    jump = abs((7.787 * epsilon + 16 / 116) - np.cbrt(epsilon))
    df = 2 * (4 / 3 + ULP + 2) * U * np.cbrt(1.09) + abs(kappa - 7.787) * 0.008856 + jump
    np.testing.assert_allclose(ours, theirs, rtol=0, atol=1000 * df)


def test_lab_inverse_matches_scikit_image(rng):
    """lab_to_xyz against lab2xyz on the same white. f⁻¹ is a cube (2 products) or a line; the three f's
    are one product and one addition each: |ΔX| ≤ 2·(3·3 + 4)u·X_max with X_max = 1.09, plus
    scikit-image's rounded 1/7.787 on the linear branch, |Δ(1/κ)|·(f − 4/29) ≤ |Δ(1/κ)|·6/29."""
    lab = colour.srgb8_to_lab(_every_8bit_corner_and_random(rng))
    white = np.array(_illuminants["D65"]["2"], dtype=np.float64)
    kappa = 1 / (3 * (6 / 29) ** 2)
    bound = 2 * 13 * U * 1.09 + abs(1 / kappa - 1 / 7.787) * (6 / 29) * 1.09
    np.testing.assert_allclose(colour.lab_to_xyz(lab, white), lab2xyz(lab[None])[0], rtol=0, atol=bound)


@pytest.mark.parametrize("space", colour.SPACES)
def test_every_8bit_colour_comes_back_from_each_space(space, rng):
    """to_space then from_space: the round trip is off by ~1e-12 of 255, and each input is a whole number
    0.5 away from any rounding boundary, so rounding gives back the exact colours."""
    rgb = _every_8bit_corner_and_random(rng)
    assert np.array_equal(colour.from_space(colour.to_space(rgb, space), space), rgb.astype(np.uint8))


def test_oklab_matches_ottosson_reference_values():
    """Published to 3 decimals: within 5e-4. The first input is D65 rounded to 3 decimals too; its effect,
    the largest change of the output over the ±5e-4 box around it, is added for that row."""
    for xyz, want in OTTOSSON_2020:
        xyz = np.array([xyz])
        bound = 5e-4 + 1e-12
        if xyz[0, 0] == 0.950:
            corners = xyz + 5e-4 * np.array(list(itertools.product((-1, 1), repeat=3)))
            bound += np.abs(colour.xyz_to_oklab(corners) - colour.xyz_to_oklab(xyz)).max()
        np.testing.assert_allclose(colour.xyz_to_oklab(xyz)[0], want, rtol=0, atol=bound)
    np.testing.assert_allclose(colour.oklab_to_xyz(colour.xyz_to_oklab(xyz)), xyz, rtol=0, atol=1e-12)


# ------------------------------------------------------------------ quality figures

@pytest.mark.parametrize("n_values, most", [(7, 3), (150, 30)], ids=["few", "many"])
def test_weighted_percentile_is_numpys_inverted_cdf_on_every_item(n_values, most, rng):
    """Every q on a grid of 0.25: with few items the grid lands on every run's first and last element."""
    values = np.unique(rng.integers(0, 4 * n_values, n_values) / 7.0)
    counts = rng.integers(1, most + 1, len(values))
    everything = rng.permutation(np.repeat(values, counts))
    for q in np.linspace(0, 100, 401):
        assert quality.weighted_percentile(values, counts, q) == np.percentile(everything, q, method="inverted_cdf"), q


@pytest.fixture(scope="module")
def china():
    return image.thumbnail(image.Picture(load_sample_image("china.jpg")), 160)


def test_quality_on_distinct_colours_equals_quality_on_every_pixel(china):
    """measure_colors (distinct colours with counts) against measure_pixels (every pixel):
    squared errors are whole numbers, summed exactly in any order, so PSNR is identical; the 95th
    percentile is the same element; the mean of ΔE sums n terms in another order: 2·sum_error(n)·mean."""
    model = models.make_model("kmeans", 6, random_state=0)
    color_labels = image.fit_color_labels(model, china, "lab")
    palette = image.model_colors(model, "lab")
    by_color = quality.measure_colors(china, color_labels, palette)
    by_pixel = quality.measure_pixels(china, image.pixel_labels(china, color_labels), palette)
    assert by_color.psnr_db == by_pixel.psnr_db
    assert by_color.delta_e2000_p95 == by_pixel.delta_e2000_p95
    n = china.mask.sum()
    assert abs(by_color.delta_e2000_mean - by_pixel.delta_e2000_mean) <= 2 * sum_error(n) * by_pixel.delta_e2000_mean
    # and PSNR against the definition on the painted pixels, computed here from scratch
    painted = image.paint(image.pixel_labels(china, color_labels), palette).astype(np.float64)
    mse = np.mean((painted - china.rgb) ** 2)
    assert abs(by_pixel.psnr_db - 10 * np.log10(255**2 / mse)) <= 1e-12 * by_pixel.psnr_db


def _blur_lab(rgb, size=5):
    """L*a*b* of the image box-blurred in linear light: what an eye sees from afar."""
    from scipy.ndimage import uniform_filter

    linear = colour.srgb_to_linear(rgb / 255.0)
    blurred = np.stack([uniform_filter(linear[:, :, c], size, mode="nearest") for c in range(3)], axis=2)
    return colour.xyz_to_lab(blurred.reshape(-1, 3) @ colour.SRGB_TO_XYZ.T)


@pytest.mark.parametrize("method", ["gmm", "kmeans"])
@pytest.mark.parametrize("space", colour.SPACES)
def test_painting_converts_the_means_back_to_srgb(method, space):
    """Two flat colours and k = 2: each mean is one colour's coordinates, which convert back exactly
    (the round trip above), so the painted image is the original, PSNR infinite, ΔE00 zero."""
    rgb = np.zeros((6, 8, 3), dtype=np.uint8)
    rgb[:, :4], rgb[:, 4:] = (200, 30, 60), (20, 90, 240)
    picture = image.Picture(rgb)
    model = models.make_model(method, 2, random_state=0)
    color_labels = image.fit_color_labels(model, picture, space)
    labels, palette, measured = quality.paint(picture, model, color_labels, image.model_colors(model, space), space)
    assert np.array_equal(image.paint(labels, palette), rgb)
    assert (measured.psnr_db, measured.delta_e2000_mean, measured.delta_e2000_p95) == (np.inf, 0.0, 0.0)


@pytest.mark.parametrize("space", ["rgb", "lab"])
def test_dithering_a_gradient_is_closer_from_afar(space):
    """A smooth ramp painted with 4 colours: banding without dithering, a mix of neighbours with it.
    Blurred, the dithered copy must be nearer the blurred original (mean ΔE00)."""
    ramp = np.linspace(0, 255, 256)
    rgb = np.rint(np.stack([ramp, 0.6 * ramp + 40, 200 - 0.5 * ramp], axis=1))[None].repeat(24, axis=0).astype(np.uint8)
    picture = image.Picture(rgb)
    model = models.make_model("kmeans", 4, random_state=0)
    color_labels = image.fit_color_labels(model, picture, space)
    colors = image.model_colors(model, space)
    plain, _, _ = quality.paint(picture, model, color_labels, colors, space)
    dithered, _, _ = quality.paint(picture, model, color_labels, colors, space, dither="floyd-steinberg")
    assert set(np.unique(dithered)) <= set(range(4)) and not np.array_equal(plain, dithered)
    original = _blur_lab(rgb.astype(np.float64))
    errors = {name: colour.delta_e2000(original, _blur_lab(image.paint(labels, colors).astype(np.float64))).mean()
              for name, labels in (("plain", plain), ("dithered", dithered))}
    assert errors["dithered"] < 0.5 * errors["plain"], errors


def test_dithering_leaves_transparent_pixels_out():
    rgb = np.linspace(0, 255, 20 * 30 * 3).reshape(20, 30, 3).astype(np.uint8)
    alpha = np.full((20, 30), 255, dtype=np.uint8)
    alpha[5:9, 10:20] = 0
    picture = image.Picture(rgb, alpha)
    model = models.make_model("kmeans", 3, random_state=0)
    color_labels = image.fit_color_labels(model, picture)
    labels, _, _ = quality.paint(picture, model, color_labels, image.model_colors(model), dither="floyd-steinberg")
    assert (labels[alpha == 0] == -1).all() and (labels[alpha > 0] >= 0).all()


def test_serpentine_scan_changes_the_pattern_not_the_palette():
    ramp = np.rint(np.linspace(0, 255, 64))
    picture = image.Picture(np.stack([ramp] * 3, axis=1)[None].repeat(8, axis=0).astype(np.uint8))
    centers = np.array([[0.0] * 3, [128.0] * 3, [255.0] * 3])
    forward = quality.dither_labels(picture, centers)
    serpentine = quality.dither_labels(picture, centers, serpentine=True)
    assert np.array_equal(forward[0], serpentine[0])  # the first row runs left to right in both
    assert not np.array_equal(forward, serpentine)


# ------------------------------------------------------------------ quality search

def assert_verified(found, china, target):
    """The k found meets the target on every pixel and k - 1 was verified to miss it."""
    assert found.quality.delta_e2000_mean <= target < found.verified[found.k - 1]
    # measure_colors sums the same ΔE00 in another order than the search's own figure
    assert abs(found.verified[found.k] - found.quality.delta_e2000_mean) <= 2 * sum_error(len(china.distinct[0])) * target
    assert len(found.palette) == found.k and models.centers(found.model).shape == (found.k, 3)
    assert np.array_equal(found.color_labels, found.model.predict(china.in_space("lab")))  # the model fitted on every colour


def test_quality_search_returns_a_k_that_meets_the_target_after_one_that_missed(china):
    target = 6.0
    found = quality.smallest_k(china, "kmeans", target, 32, "lab", random_state=0)
    assert_verified(found, china, target)
    assert list(found.tried)[:4] == [1, 2, 4, 8]  # doubling first
    assert found.verified == {k: found.tried[k] for k in found.verified}  # all colours searched: its own verification


@pytest.mark.parametrize("method", ["kmeans", "gmm"])
def test_a_sampled_search_is_verified_on_every_colour(china, method):
    target = 6.0
    found = quality.smallest_k(china, method, target, 32, "lab", sample=4096, random_state=0)
    assert_verified(found, china, target)
    assert found.k - 1 in found.tried and found.k in found.tried  # each verified fit starts from a searched one
    # every figure of the search comes from the sample, every verified one from all the colours
    assert all(found.verified[k] != found.tried[k] for k in found.verified)


def test_a_sample_of_few_colours_is_not_searched():
    rgb = np.zeros((100, 100, 3), dtype=np.uint8)  # one colour covers 99 % of the pixels, 100 others one each
    rgb[0, :, 0] = np.arange(100) + 1
    # 50 draws hold about 1.5 distinct colours, too few for 8 clusters: the search runs on every colour
    # (else k-means refuses more clusters than colours, a plain ValueError)
    with pytest.raises(quality.QualityNotReached, match="even k=8"):
        quality.smallest_k(image.Picture(rgb), "kmeans", 0.0, 8, "lab", sample=50, random_state=0)


def test_quality_search_says_when_k_max_is_not_enough(china):
    for sample in (quality.SEARCH_SAMPLE, 4096):
        with pytest.raises(quality.QualityNotReached, match="even k=4 gives a mean ΔE00 of"):
            quality.smallest_k(china, "gmm", 0.5, 4, "oklab", sample=sample, random_state=0)


def test_split_start_splits_the_cluster_with_the_largest_error():
    X = np.array([[0.0, 0, 0], [1, 0, 0], [10, 0, 0], [30, 0, 0]])
    counts = np.array([1.0, 1, 1, 1])
    weights, means, variances = quality.split_start(X, counts, np.array([0, 0, 1, 1]), 2, 3)
    # cluster 1 (10 and 30: mean 20, variance 100) is split along x by its standard deviation, 10
    np.testing.assert_array_equal(means, [[0.5, 0, 0], [10, 0, 0], [30, 0, 0]])
    np.testing.assert_array_equal(weights, [2, 1, 1])
    np.testing.assert_array_equal(variances[:, 0], [0.25, 100, 100])


# ------------------------------------------------------------------ command line

def test_segment_json_reports_the_quality_of_the_written_image(capsys, tmp_path, monkeypatch, rgb_image_path):
    monkeypatch.chdir(tmp_path)
    code, out, _ = run_cli(capsys, "segment", rgb_image_path, "-k", 3, "--space", "lab", "--json", "-o", "out.png")
    report = json.loads(out)
    assert code == 0 and {"k", "method", "space", "n_iter", "objective", "seconds", "psnr_db", "delta_e2000_mean",
                          "delta_e2000_p95"} <= set(report)
    assert (report["k"], report["method"], report["space"], report["outputs"]) == (3, "gmm", "lab", ["out.png"])
    # PSNR of the file as written against the input, computed here from the pixels (PNG is lossless)
    mse = np.mean((read_image("out.png").astype(np.float64) - read_image(rgb_image_path)) ** 2)
    assert abs(report["psnr_db"] - 10 * np.log10(255**2 / mse)) <= 1e-12 * report["psnr_db"]


def test_segment_quality_target_picks_k_and_fails_cleanly(capsys, tmp_path, monkeypatch, rgb_image_path):
    monkeypatch.chdir(tmp_path)
    code, out, err = run_cli(capsys, "segment", rgb_image_path, "--quality", 4, "--method", "kmeans", "--json")
    report = json.loads(out)
    assert code == 0 and report["delta_e2000_mean"] <= 4 and f"k={report['k']}" in err
    code, out, err = run_cli(capsys, "segment", rgb_image_path, "--quality", 0.01, "--k-max", 2, "-o", "never.png")
    assert code == 1 and out == "" and err.count("\n") == 1 and "even k=2" in err
    assert not (tmp_path / "never.png").exists()


def test_dither_needs_the_means_palette(capsys, tmp_path, monkeypatch, rgb_image_path):
    monkeypatch.chdir(tmp_path)
    code, _, err = run_cli(capsys, "segment", rgb_image_path, "-k", 3, "--palette", "distinct",
                           "--dither", "floyd-steinberg")
    assert code == 1 and "--palette means" in err


def test_quality_search_refuses_iteration_views(capsys, tmp_path, monkeypatch, rgb_image_path):
    monkeypatch.chdir(tmp_path)
    code, out, err = run_cli(capsys, "segment", rgb_image_path, "--quality", 4, "--trace", "t.csv")
    assert code == 1 and out == "" and "--quality fits several k" in err


def test_model_file_keeps_its_space_and_paints_the_same(capsys, tmp_path, monkeypatch, rgb_image_path):
    """A model fitted in L*a*b*, saved and read back, paints the image as the fit did."""
    monkeypatch.chdir(tmp_path)
    picture = image.load(rgb_image_path)
    model = models.make_model("kmeans", 3, random_state=0)
    color_labels = image.fit_color_labels(model, picture, "lab")
    modelfile.save("model.json", model, image.model_colors(model, "lab"), "lab")
    loaded, palette, space = modelfile.read("model.json")
    assert space == "lab"
    code, _, _ = run_cli(capsys, "segment", rgb_image_path, "--model", "model.json", "-o", "painted.png")
    assert code == 0
    assert np.array_equal(read_image("painted.png"), image.paint(image.pixel_labels(picture, color_labels), palette))
    document = json.loads((tmp_path / "model.json").read_text())
    del document["space"]  # a file written before emseg had spaces holds an RGB model
    (tmp_path / "old.json").write_text(json.dumps(document))
    assert modelfile.read("old.json")[2] == "rgb"
