"""em/image.py: reading every kind of image, exact distinct-colour fits, atomic writes, sampling."""

import io
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from sklearn.datasets import load_sample_image
from sklearn.mixture import GaussianMixture as SkGaussianMixture

import kmeans.shared
from em import GaussianMixture
from exactness import assert_same_kmeans, assert_same_mixture
from kmeans import KMeans
from segment import image, models


def write(tmp_path, name, pil_image, **save_args):
    path = tmp_path / name
    pil_image.save(path, **save_args)
    return path


@pytest.fixture
def gradient():
    """A 20x30 RGB gradient as uint8."""
    y, x = np.mgrid[0:20, 0:30]
    return np.dstack([x * 8, y * 12, (x + y) * 5]).astype(np.uint8)


# ------------------------------------------------------------------ reading

def test_rgb_is_read_as_is(tmp_path, gradient):
    picture = image.load(write(tmp_path, "a.png", Image.fromarray(gradient)))
    assert np.array_equal(picture.rgb, gradient) and picture.alpha is None and picture.mask.all()


def test_rgba_keeps_alpha_and_masks_transparent_pixels(tmp_path, gradient):
    alpha = np.full(gradient.shape[:2], 255, np.uint8)
    alpha[:5] = 0
    alpha[5:7] = 128
    picture = image.load(write(tmp_path, "a.png", Image.fromarray(np.dstack([gradient, alpha]), "RGBA")))
    assert np.array_equal(picture.alpha, alpha)
    assert picture.mask.sum() == alpha.size - 5 * 30  # only fully transparent pixels leave the fit


@pytest.mark.parametrize("mode", ["L", "1", "CMYK", "YCbCr", "P"])
def test_other_modes_become_rgb(tmp_path, gradient, mode):
    source = Image.fromarray(gradient).convert(mode)
    suffix = ".jpg" if mode in ("CMYK", "YCbCr") else ".png"
    picture = image.load(write(tmp_path, "a" + suffix, source))
    assert picture.rgb.shape == (20, 30, 3) and picture.rgb.dtype == np.uint8 and picture.alpha is None
    if mode == "L":  # a grey level becomes three equal channels
        assert np.array_equal(picture.rgb[:, :, 0], np.asarray(source)) and np.ptp(picture.rgb, axis=2).max() == 0


def test_palette_with_transparency_keeps_it(tmp_path, gradient):
    source = Image.fromarray(gradient).convert("P")
    source.info["transparency"] = int(np.asarray(source)[0, 0])
    path = tmp_path / "a.png"
    source.save(path, transparency=source.info["transparency"])
    picture = image.load(path)
    assert picture.alpha is not None and picture.alpha[0, 0] == 0


def test_sixteen_bit_grey_is_scaled_not_truncated(tmp_path):
    values = np.array([[0, 257, 32768, 65535]], dtype=np.uint16)
    picture = image.load(write(tmp_path, "a.png", Image.fromarray(values)))
    assert picture.rgb[0, :, 0].tolist() == [0, 1, 128, 255]


def test_float_image_in_unit_range_is_scaled(tmp_path):
    values = np.array([[0.0, 0.5, 1.0]], dtype=np.float32)
    picture = image.load(write(tmp_path, "a.tif", Image.fromarray(values, "F")))
    assert picture.rgb[0, :, 0].tolist() == [0, 128, 255]


def test_exif_orientation_is_applied(tmp_path, gradient):
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90° clockwise on display
    picture = image.load(write(tmp_path, "a.jpg", Image.fromarray(gradient), exif=exif, quality=95))
    assert picture.rgb.shape == (30, 20, 3)


def test_animation_gives_the_first_frame_with_a_note(tmp_path, gradient):
    frames = [Image.fromarray(gradient), Image.fromarray(255 - gradient)]
    path = tmp_path / "a.gif"
    frames[0].save(path, save_all=True, append_images=frames[1:])
    picture = image.load(path)
    assert picture.notes == ["a.gif has 2 frames; using the first."]
    assert picture.rgb.shape == (20, 30, 3)


def _written(path, data):
    path.write_bytes(data)
    return path


@pytest.mark.parametrize(
    "make, match",
    [
        (lambda p: p / "missing.png", "no such file"),
        (lambda p: p, "is a directory"),
        (lambda p: _written(p / "empty.png", b""), "is empty"),
        (lambda p: _written(p / "text.jpg", b"not an image"), "not an image Pillow can read"),
    ],
    ids=["missing", "directory", "empty", "text-named-jpg"],
)
def test_unreadable_inputs_say_what_is_wrong(tmp_path, make, match):
    with pytest.raises(image.ImageError, match=match):
        image.load(make(tmp_path))


def test_truncated_image_is_reported(tmp_path):
    buffer = io.BytesIO()
    Image.fromarray(load_sample_image("china.jpg")).save(buffer, format="PNG")
    path = tmp_path / "cut.png"
    path.write_bytes(buffer.getvalue()[: len(buffer.getvalue()) // 2])
    with pytest.raises(image.ImageError, match="truncated or corrupt"):
        image.load(path)


def test_decompression_bombs_are_refused_unless_allowed(tmp_path, gradient):
    path = write(tmp_path, "a.png", Image.fromarray(gradient))
    with pytest.raises(image.ImageError, match="more than the limit of 100 .* --max-pixels 600"):
        image.load(path, max_pixels=100)
    assert image.load(path, max_pixels=600).rgb.shape == (20, 30, 3)


# ------------------------------------------------------------ distinct colours

def test_distinct_colors_rebuild_the_pixels():
    rgb = load_sample_image("flower.jpg")
    colors, counts, inverse = image.distinct_colors(rgb)
    assert np.array_equal(colors[inverse], rgb.reshape(-1, 3))
    assert counts.sum() == rgb.shape[0] * rgb.shape[1] and len(colors) == len(np.unique(rgb.reshape(-1, 3), axis=0))


def test_bitmap_and_sorting_find_the_same_colours(monkeypatch):
    rgb = load_sample_image("flower.jpg")
    mask = np.ones(rgb.shape[:2], dtype=bool)
    mask[::3] = False
    monkeypatch.setattr(kmeans.shared, "BITMAP_KEYS_PER_ROW", 1 << 24)  # the bitmap, whatever the number of pixels
    by_bitmap = image.distinct_colors(rgb, mask)
    monkeypatch.setattr(kmeans.shared, "MAX_BITMAP_KEYS", 0)  # np.unique
    by_sorting = image.distinct_colors(rgb, mask)
    for got, want in zip(by_bitmap, by_sorting):
        assert np.array_equal(got, want)


def test_a_picture_finds_its_distinct_colours_once(gradient):
    picture = image.Picture(gradient)
    assert picture.distinct is picture.distinct
    assert np.array_equal(picture.distinct[0], image.distinct_colors(gradient)[0])


@pytest.mark.parametrize("name", ["china.jpg", "flower.jpg"])
def test_mixture_on_distinct_colours_is_the_fit_on_every_pixel(name):
    rgb = load_sample_image(name)
    pixels = rgb.reshape(-1, 3).astype(np.float64)
    colors, counts, inverse = image.distinct_colors(rgb)
    rng = np.random.default_rng(0)
    start = dict(weights_init=np.full(8, 1 / 8), means_init=pixels[rng.choice(len(pixels), 8)] + 0.37,
                 precisions_init=np.full((8, 3), 1 / 400.0), max_iter=15, tol=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        on_colors = GaussianMixture(8, **start).fit(colors, sample_weight=counts)
        on_pixels = GaussianMixture(8, **start).fit(pixels)
    # the same weighted sums, grouped differently: rounding only, bounded as between two implementations
    start_params = (start["weights_init"], start["means_init"], 1.0 / start["precisions_init"])
    assert_same_mixture(on_colors, on_pixels, pixels, start_params)
    palette = image.model_colors(on_colors)
    painted_colors = image.paint(on_colors.predict(colors)[inverse].reshape(rgb.shape[:2]), palette)
    painted_pixels = image.paint(on_pixels.predict(pixels).reshape(rgb.shape[:2]), image.model_colors(on_pixels))
    assert np.array_equal(painted_colors, painted_pixels)


def test_kmeans_on_distinct_colours_is_the_fit_on_every_pixel():
    rgb = load_sample_image("china.jpg")
    pixels = rgb.reshape(-1, 3).astype(np.float64)
    colors, counts, inverse = image.distinct_colors(rgb)
    init = pixels[np.random.default_rng(1).choice(len(pixels), 8)] + 0.37  # off the grid: no exact ties
    on_colors = KMeans(8, init=init, n_init=1).fit(colors, sample_weight=counts)
    on_pixels = KMeans(8, init=init, n_init=1).fit(pixels)
    on_colors.labels_ = on_colors.labels_[inverse]  # each pixel takes its colour's label
    assert_same_kmeans(on_colors, on_pixels, pixels)  # the same sums, grouped by colour


def test_fit_labels_leaves_transparent_pixels_out(gradient):
    alpha = np.full(gradient.shape[:2], 255, np.uint8)
    alpha[:, :10] = 0
    picture = image.Picture(gradient.copy(), alpha)
    picture.rgb[:, :10] = (255, 0, 255)  # a colour only the transparent pixels have
    model = GaussianMixture(3, random_state=0)
    labels = image.fit_labels(model, picture)
    assert (labels[:, :10] == -1).all() and (labels[:, 10:] >= 0).all()
    # a mean is a weighted average of the fitted colours, whose red is at most 29 * 8 = 232: had the
    # magenta pixels been fitted, a mean would be pulled towards red 255, more than 20 levels away
    assert not np.any(np.all(np.isclose(model.means_, (255, 0, 255), atol=20), axis=1))


# ------------------------------------------------------------------ writing

def test_save_follows_the_extension(tmp_path, gradient):
    for suffix, fmt in ((".png", "PNG"), (".jpg", "JPEG"), (".tif", "TIFF"), (".webp", "WEBP"), (".bmp", "BMP")):
        path = image.save(tmp_path / f"out{suffix}", gradient)
        with Image.open(path) as written:
            assert written.format == fmt and written.size == (30, 20)


def test_write_format_is_pillows_table_and_loads_every_plugin_only_for_a_rare_suffix():
    """Each suffix gets the format of Pillow's full table (every plugin loaded); .png and .jpg, in a fresh
    process, without loading the plugins beyond Image.preinit's (Pillow's _initialized stays 1, not 2)."""
    code = ("import sys; from PIL import Image; from segment import image; "
            "print(image.write_format('.PNG'), image.write_format('.jpg'), Image._initialized)")
    completed = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60,
                               cwd=Path(image.__file__).parents[1])
    assert completed.stdout.split() == ["PNG", "JPEG", "1"]
    table = {ext: fmt for ext, fmt in Image.registered_extensions().items() if fmt in Image.SAVE}
    assert {ext: image.write_format(ext) for ext in Image.registered_extensions()} == {
        ext: table.get(ext) for ext in Image.registered_extensions()}


def test_save_keeps_alpha_where_the_format_can(tmp_path, gradient):
    alpha = np.full(gradient.shape[:2], 255, np.uint8)
    alpha[0, 0] = 0
    with Image.open(image.save(tmp_path / "a.png", gradient, alpha)) as written:
        assert written.mode == "RGBA" and written.getpixel((0, 0))[3] == 0
    with Image.open(image.save(tmp_path / "a.jpg", gradient, alpha)) as written:
        assert written.mode == "RGB"


@pytest.mark.parametrize(
    "name, match", [("out.xyz", "unknown output extension '.xyz'"), ("nowhere/out.png", "does not exist")],
    ids=["extension", "folder"],
)
def test_bad_output_paths_are_refused(tmp_path, gradient, name, match):
    with pytest.raises(image.ImageError, match=match):
        image.save(tmp_path / name, gradient)


def test_a_failed_write_leaves_the_old_file_and_no_debris(tmp_path, gradient, monkeypatch):
    path = image.save(tmp_path / "out.png", gradient)
    before = path.read_bytes()

    def broken_save(self, file, *args, **kwargs):
        file.write(b"half a PNG")
        raise OSError("disk full")

    monkeypatch.setattr(Image.Image, "save", broken_save)
    with pytest.raises(image.ImageError, match=r"out.png could not be written \(disk full\); an earlier out.png"):
        image.save(path, 255 - gradient)
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["out.png"]


def test_labels_are_written_as_png_or_npy(tmp_path):
    labels = np.array([[0, 1], [2, -1]])
    with Image.open(image.save_labels(tmp_path / "l.png", labels)) as written:
        assert written.mode == "L" and np.asarray(written).tolist() == [[0, 1], [2, 0]]
    assert np.array_equal(np.load(image.save_labels(tmp_path / "l.npy", labels)), labels)
    with pytest.raises(image.ImageError, match="do not fit an 8-bit image"):
        image.save_labels(tmp_path / "big.png", np.array([[300]]))


# ----------------------------------------------------------- painting, sampling

def test_distinct_palette_is_well_separated():
    palette = image.distinct_palette(10).astype(float)
    distances = np.linalg.norm(palette[:, None] - palette[None], axis=2)[np.triu_indices(10, 1)]
    assert len(np.unique(palette, axis=0)) == 10 and distances.min() > 40


@pytest.fixture(scope="module")
def fitted_flower():
    picture = image.Picture(load_sample_image("flower.jpg")[::4, ::4].copy())
    model = GaussianMixture(6, random_state=0)
    return model, picture, image.fit_labels(model, picture)


@pytest.mark.parametrize("space", ["lab", "oklab"])
def test_samples_of_a_mixture_fitted_in_another_space_are_srgb(space):
    # pure red and pure blue, each a flat half: every component collapses onto one colour (variance
    # reg_covar = 1e-6, a standard deviation of 0.001 in the space's units), so every draw converted
    # back to sRGB must be exactly red or blue; unconverted L*a*b* or Oklab numbers would not be
    rgb = np.zeros((8, 8, 3), dtype=np.uint8)
    rgb[:4, :, 0] = 255
    rgb[4:, :, 2] = 255
    picture = image.Picture(rgb)
    model = GaussianMixture(2, random_state=0)
    image.fit_color_labels(model, picture, space)
    pixels = image.sample_pixels(model, picture, "grouped", random_state=3, space=space).reshape(-1, 3)
    assert {tuple(p) for p in pixels} == {(255, 0, 0), (0, 0, 255)}


@pytest.mark.exactness
def test_grouped_sampling_is_sklearn_order(fitted_flower):
    model, picture, _ = fitted_flower
    pixels = image.sample_pixels(model, picture, "grouped", random_state=3)
    # scikit-learn's own sample() from the same parameters and seed
    theirs = SkGaussianMixture(model.n_components, covariance_type="diag", random_state=3)
    theirs.weights_, theirs.means_, theirs.covariances_ = model.weights_, model.means_, model.covariances_
    draws, _ = theirs.sample(picture.rgb.shape[0] * picture.rgb.shape[1])
    # exact: both draw the same multinomial counts and normals and compute mean + z·√σ² with
    # the same three correctly rounded operations, then round to uint8 the same way
    assert np.array_equal(pixels.reshape(-1, 3), np.clip(np.rint(draws), 0, 255).astype(np.uint8))
    assert model.random_state == 0  # the caller's model is not changed


def test_shuffled_sampling_reorders_the_same_draws(fitted_flower):
    model, picture, _ = fitted_flower
    grouped = image.sample_pixels(model, picture, "grouped", random_state=3).reshape(-1, 3)
    shuffled = image.sample_pixels(model, picture, "shuffled", random_state=3).reshape(-1, 3)
    assert not np.array_equal(grouped, shuffled)
    assert np.array_equal(np.sort(grouped.view("V3"), axis=0), np.sort(shuffled.view("V3"), axis=0))


def test_per_pixel_sampling_keeps_the_layout(fitted_flower):
    model, picture, labels = fitted_flower
    pixels = image.sample_pixels(model, picture, "per-pixel", labels=labels, random_state=3).astype(float)
    # each drawn pixel lies near its own component's mean: within 5 standard deviations per channel
    deviation = np.abs(pixels - model.means_[labels]) / np.sqrt(model.covariances_[labels])
    assert np.mean(deviation < 5) > 0.999


def test_summary_sheet_puts_panels_side_by_side(gradient):
    sheet = image.summary_sheet([gradient, gradient], [[], image.distinct_palette(3)])
    assert sheet.shape[1] == 2 * (30 + 8) + 8 and sheet.shape[0] > 20 and sheet.dtype == np.uint8


def caption_strip(sheet, panel_height, n_palette_rows, swatch=24, gap=8):
    """The rows of a summary sheet above its panels: where the captions are written."""
    return sheet[: sheet.shape[0] - (panel_height + gap * 2 + n_palette_rows * swatch)]


def test_summary_sheet_writes_each_caption_above_its_panel(gradient):
    plain = image.summary_sheet([gradient, gradient], [[], []])
    sheet = image.summary_sheet([gradient, gradient], [[], []], ["original", "GMM, k=3, mean log-likelihood -1.5"])
    strip = caption_strip(sheet, gradient.shape[0], 0)
    assert len(caption_strip(plain, gradient.shape[0], 0)) == 8  # no captions, no room for them
    assert len(strip) > 8 + 10  # at least one line of text
    columns = np.array_split(np.arange(sheet.shape[1]), 2)
    dark = [(strip[:, cols].min(axis=2) < 128).sum() for cols in columns]
    assert all(count > 10 for count in dark)  # text in each column
    # each column carries its own caption: the longer one wraps onto more lines of a narrow panel
    rows_with_text = [np.flatnonzero((strip[:, cols].min(axis=2) < 128).any(axis=1)) for cols in columns]
    assert rows_with_text[1].max() > rows_with_text[0].max() + 8


@pytest.mark.parametrize("transparent", [False, True], ids=["opaque", "transparent"])
def test_painting_from_colour_labels_matches_painting_the_label_map(transparent):
    """`paint_colors` (no label map: the large-image path) gives the pixels of `paint` on `pixel_labels`."""
    rgb = load_sample_image("flower.jpg")[:120, :160]
    alpha = np.where(np.arange(160) < 40, 0, 255).astype(np.uint8)[None, :].repeat(120, axis=0) if transparent else None
    picture = image.Picture(rgb, alpha)
    model = models.make_model("kmeans", 5, random_state=0)
    color_labels = image.fit_color_labels(model, picture)
    palette = image.model_colors(model)
    want = image.paint(image.pixel_labels(picture, color_labels), palette)
    assert np.array_equal(image.paint_colors(picture, color_labels, palette), want)
    assert len(np.unique(want.reshape(-1, 3), axis=0)) == 5 + transparent  # five colours, and black where transparent
