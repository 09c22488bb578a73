"""Images in and out, and the segment / sample helpers for any fitted estimator.

This package and ``cli.py`` are the only places that touch files or Pillow. Pixels are
fitted as their distinct colours weighted by their pixel counts: every
sufficient statistic of EM and of Lloyd's step is a weighted sum over samples,
so that fit *is* the fit on every pixel, only faster.

What ``load`` does with each Pillow mode:

======================  ======================================================
RGB                     used as is
RGBA, LA, PA, P + tRNS  colour as RGB; pixels with alpha 0 are left out of the
                        fit and stay transparent; the alpha is written back
L, 1, P, CMYK, YCbCr,   converted to RGB by Pillow (a grey level becomes three
LAB, HSV                equal channels)
I;16, I;16B, I;16L      16-bit grey, scaled by 255/65535 and rounded
I                       scaled by 255/65535 when within 0..65535, else by its
                        own minimum and maximum
F                       scaled by 255 when within 0..1, else by its own
                        minimum and maximum
======================  ======================================================

EXIF orientation is applied first. Animated files give their first frame.

Pillow guards against decompression bombs with one module-wide limit,
``Image.MAX_IMAGE_PIXELS``, read at every open. ``load`` checks each image
against its own ``max_pixels`` instead, so that two threads with different
limits (dask workers) cannot race; Pillow's limit is therefore turned off
once, when this module is imported, and never touched again.
"""

import colorsys
import contextlib
import copy
import errno
import functools
import glob
import math
import os
import tempfile
import threading
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont, ImageOps, UnidentifiedImageError

from kmeans.shared import distinct_rows

from . import colour, models

# Pillow's default limit, 89,478,485 pixels: the default of load's max_pixels and of --max-pixels
DEFAULT_MAX_PIXELS = Image.MAX_IMAGE_PIXELS
Image.MAX_IMAGE_PIXELS = None  # set once, never toggled: load checks every image against its max_pixels
ORIENTATION = 0x0112  # the EXIF tag; 1 is upright
NO_ALPHA_FORMATS = {"JPEG", "BMP", "PPM", "PCX", "EPS", "SGI", "XBM", "MPEG", "DDS", "BLP", "MSP", "PDF"}


class ImageError(ValueError):
    """An image that cannot be read or written; the message says what to do."""


@dataclass
class Picture:
    """An image as the pipeline uses it."""

    rgb: np.ndarray  # (height, width, 3) uint8
    alpha: np.ndarray | None = None  # (height, width) uint8, or None when the image is opaque
    notes: list = field(default_factory=list)  # things the user should hear about, for stderr
    _spaces: dict = field(default_factory=dict, repr=False, compare=False)  # space -> distinct colours there

    @property
    def mask(self):
        """Pixels that take part in the fit: all but the fully transparent ones, (height, width) bool."""
        return np.ones(self.rgb.shape[:2], dtype=bool) if self.alpha is None else self.alpha > 0

    @functools.cached_property
    def distinct(self):
        """``distinct_colors`` of the pixels under ``mask``: (colors, counts, inverse), computed once."""
        return distinct_colors(self.rgb, None if self.alpha is None else self.mask)  # opaque: no copy of the pixels

    def in_space(self, space):
        """The distinct colours' coordinates in ``space`` ('rgb', 'lab' or 'oklab'), (n_colors, 3), converted once.

        Only the distinct colours are converted, never every pixel: ``colour.to_space``
        of at most a few hundred thousand rows.
        """
        if space not in self._spaces:
            self._spaces[space] = colour.to_space(self.distinct[0], space)
        return self._spaces[space]


def load(path, max_pixels=DEFAULT_MAX_PIXELS):
    """Read any image Pillow can open as a :class:`Picture`.

    Parameters
    ----------
    path : str or Path
    max_pixels : int or None
        Refuse images with more pixels than this (Pillow's decompression-bomb
        guard, 89,478,485 by default); None lifts the limit. Checked from the
        header, before any pixel is decoded.
    """
    path = Path(path)
    if not path.exists():
        raise ImageError(f"{path}: no such file; check the path.")
    if path.is_dir():
        raise ImageError(f"{path} is a directory; give an image file.")
    if path.stat().st_size == 0:
        raise ImageError(f"{path} is empty (0 bytes); give an image file.")
    with _PILLOW_WARNINGS_LOCK, warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        picture = _decode(path, max_pixels)
    # Pillow warns (a UserWarning on stderr) about damage it decoded past, such as corrupt EXIF: said as notes
    picture.notes += [f"{path.name}: {message}" for message in dict.fromkeys(str(w.message) for w in caught)]
    return picture


# warnings.catch_warnings swaps process-wide state: two threads in it at once could leave it swapped
_PILLOW_WARNINGS_LOCK = threading.Lock()


def _decode(path, max_pixels):
    """`load` once the file is known to exist: the header checked against ``max_pixels``, then the pixels."""
    try:
        with Image.open(path) as image:
            n_pixels = image.width * image.height
            if max_pixels is not None and n_pixels > max_pixels:
                raise ImageError(
                    f"{path} has {n_pixels:,} pixels, more than the limit of {max_pixels:,} that guards against "
                    f"decompression bombs; raise it with --max-pixels {n_pixels} if you trust the file."
                )
            notes = []
            if getattr(image, "n_frames", 1) > 1:
                notes.append(f"{path.name} has {image.n_frames} frames; using the first.")
            image.load()
            if image.getexif().get(ORIENTATION, 1) != 1:  # exif_transpose copies the image even when upright
                image = ImageOps.exif_transpose(image)
            return Picture(*_to_rgb_alpha(image), notes=notes)
    except ImageError:
        raise
    except UnidentifiedImageError:
        raise ImageError(f"{path} is not an image Pillow can read; check that it is really an image.") from None
    except Exception as error:  # Pillow's parsers answer a hostile file with OSError, SyntaxError, but also
        # ValueError, struct.error, IndexError, EOFError... (tests/fuzz.py): all mean the file is broken
        reason = str(error) or type(error).__name__
        raise ImageError(f"{path} is truncated or corrupt ({reason}); re-export or re-download it.") from None


def expand_inputs(inputs):
    """The image files named by ``inputs``: files as given, folders' image files, glob patterns' matches.

    A folder contributes its files (not subfolders) whose extension Pillow
    knows, sorted by name. A name that is neither an existing path nor a
    pattern with matches is kept as is, so that loading it reports it.
    Each file appears once, in the order first named.
    """
    paths = []
    for name in map(str, inputs):
        path = Path(name)
        if path.is_dir():
            extensions = Image.registered_extensions()
            paths += sorted(p for p in path.iterdir() if p.is_file() and p.suffix.lower() in extensions)
        elif not path.exists() and glob.has_magic(name) and glob.glob(name):
            paths += [Path(match) for match in sorted(glob.glob(name)) if Path(match).is_file()]
        else:
            paths.append(path)
    return list(dict.fromkeys(paths))


def _to_rgb_alpha(image):
    """(rgb uint8 (h, w, 3), alpha uint8 (h, w) or None) following the table in the module docstring."""
    mode = image.mode
    if mode == "P":
        image = image.convert("RGBA" if "transparency" in image.info else "RGB")
    elif mode.startswith("I;16") or mode in ("I", "F"):
        values = np.asarray(image, dtype=np.float64)
        if mode.startswith("I;16") or (mode == "I" and values.min() >= 0 and values.max() <= 65535):
            grey = values * (255.0 / 65535.0)
        elif mode == "F" and values.min() >= 0 and values.max() <= 1:
            grey = values * 255.0
        else:
            span = values.max() - values.min()
            grey = (values - values.min()) * (255.0 / span if span > 0 else 0.0)
        grey = np.clip(np.rint(grey), 0, 255).astype(np.uint8)
        return np.repeat(grey[:, :, None], 3, axis=2), None
    if image.mode in ("RGBA", "LA", "PA"):
        rgba = np.asarray(image.convert("RGBA"))
        return np.ascontiguousarray(rgba[:, :, :3]), np.ascontiguousarray(rgba[:, :, 3])
    return np.asarray(image if image.mode == "RGB" else image.convert("RGB")), None  # RGB: one copy, not two


# ------------------------------------------------------------------ writing

def check_output_path(path, inputs=(), suffixes=None):
    """Raise ImageError unless ``path`` can be written: a known extension, an existing writable folder, not an input.

    ``suffixes`` lists the extensions allowed (such as ``(".csv", ".json")``);
    None allows any image format Pillow writes, and .npy.
    """
    path = Path(path)
    if suffixes is not None and path.suffix.lower() not in suffixes:
        raise ImageError(f"{path}: unknown output extension {path.suffix!r}; use {' or '.join(suffixes)}.")
    if suffixes is None and write_format(path.suffix) is None and path.suffix.lower() != ".npy":
        raise ImageError(f"{path}: unknown output extension {path.suffix!r}; use .png, .jpg, .tif, .webp or .bmp.")
    folder = path.parent if str(path.parent) else Path(".")
    if not folder.is_dir():
        raise ImageError(f"{path}: the folder {folder} does not exist; create it first.")
    if not os.access(folder, os.W_OK):
        raise ImageError(f"{path}: the folder {folder} cannot be written; choose another output folder.")
    for source in inputs:
        if path.exists() and Path(source).exists() and path.resolve() == Path(source).resolve():
            raise ImageError(f"{path} is the input image; emseg never overwrites its input, choose another -o.")
    return path


def _write_atomically(path, write):
    """Call ``write(file)`` on a temporary file in the target folder, then rename it into place.

    Whatever stops it (a failed write, a signal), the temporary file is removed
    and an earlier file at ``path`` stays as it was. A failed write raises
    `ImageError` naming the file and what to do.
    """
    path = Path(path)
    temporary = None
    try:
        handle, temporary = tempfile.mkstemp(dir=path.parent or ".", prefix=f".{path.name}.", suffix=".part")
        with os.fdopen(handle, "wb") as file:
            write(file)
        os.chmod(temporary, 0o644)
        os.replace(temporary, path)
        temporary = None
    except OSError as error:
        raise ImageError(_write_failure(path, error)) from None
    finally:
        if temporary is not None:
            with contextlib.suppress(OSError):
                os.unlink(temporary)
    return path


def _write_failure(path, error):
    """One line saying why ``path`` could not be written and what to do; any earlier file there is untouched."""
    kept = f"; an earlier {path.name} is untouched" if path.exists() else ""
    if error.errno in (errno.ENOSPC, errno.EDQUOT):
        return f"{path}: no space left on the device while writing it{kept}; free some space or write elsewhere."
    if error.errno == errno.EROFS:
        return f"{path}: the folder is on a read-only file system{kept}; choose another output folder."
    if error.errno in (errno.EACCES, errno.EPERM):
        return f"{path}: permission denied while writing it{kept}; choose a folder you can write to."
    return f"{path} could not be written ({error}){kept}."


def write_format(suffix):
    """Pillow's format for writing a file whose name ends in ``suffix`` (any case), or None if it writes none.

    The plugins ``Image.preinit`` loads (BMP, GIF, JPEG, PPM, PNG) answer the
    common suffixes; only another one loads all of Pillow's 40-odd plugins
    (``Image.init``: 40 ms of CPU, a tenth of a small image's whole segment).
    """
    for load_plugins in (Image.preinit, Image.init):
        load_plugins()
        fmt = Image.EXTENSION.get(suffix.lower())
        if fmt in Image.SAVE:
            return fmt
    return None


def save(path, rgb, alpha=None):
    """Write an image atomically; the format follows the extension. The alpha is dropped by formats without one."""
    path = check_output_path(path)
    fmt = write_format(path.suffix)
    if alpha is not None and fmt not in NO_ALPHA_FORMATS:
        image = Image.fromarray(np.dstack([rgb, alpha]), "RGBA")
    else:
        image = Image.fromarray(np.ascontiguousarray(rgb), "RGB")
    return _write_atomically(path, lambda file: image.save(file, format=fmt))


def save_labels(path, labels):
    """Write a label map atomically: .npy (int64, -1 for transparent pixels) or an 8-bit image for k <= 256."""
    path = check_output_path(path)
    if path.suffix.lower() == ".npy":
        return _write_atomically(path, lambda file: np.save(file, labels))
    if labels.max() > 255:
        raise ImageError(f"{path}: {labels.max() + 1} labels do not fit an 8-bit image; write a .npy label map.")
    image = Image.fromarray(np.where(labels < 0, 0, labels).astype(np.uint8), "L")
    return _write_atomically(path, lambda file: image.save(file, format=write_format(path.suffix)))


def save_grey16(path, values):
    """Write values in [0, 1], (height, width), as a 16-bit greyscale PNG, atomically: round(value · 65535)."""
    path = check_output_path(path, suffixes=(".png",))
    grey = np.rint(np.clip(values, 0.0, 1.0) * 65535.0).astype(np.uint16)
    return _write_atomically(path, lambda file: Image.fromarray(grey).save(file, format="PNG"))


def save_text(path, text):
    """Write a text file (UTF-8) atomically."""
    return _write_atomically(path, lambda file: file.write(text.encode("utf-8")))


def save_figure(path, figure):
    """Write a matplotlib figure atomically as a PNG (no date in it: the same figure gives the same bytes)."""
    return _write_atomically(path, lambda file: figure.savefig(file, format="png"))


def save_animation(path, frames, captions, frame_ms=500, last_ms=2000):
    """Write an animated GIF atomically, one frame per image, each with its caption in a white strip below.

    Parameters
    ----------
    path : str or Path
    frames : list of ndarray of shape (height, width, 3), uint8
        All of the same size.
    captions : list of str
        One line of text per frame, drawn with Pillow's default font.
    frame_ms, last_ms : int
        How long each frame is shown, and the last one, in milliseconds.

    Notes
    -----
    The text is drawn without anti-aliasing, so a frame holds only its image's
    colours plus black and white, and GIF's 256-colour palette keeps them
    exact (for up to 254 colours). Pillow merges a frame into the previous one
    when they are identical; the captions differ, so every frame is kept.
    """
    font = ImageFont.load_default()
    margin = 4
    height, width = frames[0].shape[:2]
    text_width = max(font.getbbox(caption)[2] for caption in captions)
    text_height = max(font.getbbox(caption)[3] for caption in captions)
    size = (max(width, text_width + 2 * margin), height + text_height + 2 * margin)
    images = []
    for frame, caption in zip(frames, captions):
        canvas = Image.new("RGB", size, "white")
        canvas.paste(Image.fromarray(frame), (0, 0))
        draw = ImageDraw.Draw(canvas)
        draw.fontmode = "1"  # no anti-aliasing: the text adds black and nothing else
        draw.text((margin, height + margin), caption, fill="black", font=font)
        images.append(canvas)
    durations = [frame_ms] * (len(images) - 1) + [last_ms]
    return _write_atomically(path, lambda file: images[0].save(
        file, format="GIF", save_all=True, append_images=images[1:], duration=durations, loop=0))


# ----------------------------------------------------------------- pixels

RGB_SIZES = (256, 256, 256)  # the values each channel of an 8-bit pixel can take


def distinct_colors(rgb, mask=None):
    """The distinct colours of an image, how many pixels have each, and which colour each pixel has.

    `kmeans.shared.distinct_rows` on the pixels: each RGB triple is packed into
    one 24-bit key, and a bitmap over all 2**24 colours (2 MB) marks the keys
    present (below 16,384 pixels, ``np.unique`` sorts them instead). Colours
    come out sorted by key.

    Returns
    -------
    colors : ndarray of shape (n_colors, 3), float64
    counts : ndarray of shape (n_colors,), float64
    inverse : ndarray of shape (n_pixels,)
        ``colors[inverse]`` is the image's pixels (those under ``mask``), in row order.
    """
    pixels = np.ascontiguousarray(rgb.reshape(-1, 3) if mask is None else rgb[mask])
    colors, counts, inverse = distinct_rows(pixels, (0, 0, 0), RGB_SIZES)
    return colors, counts.astype(np.float64), inverse


def fit_labels(model, picture, space="rgb"):
    """Fit ``model`` to the picture's opaque pixels in ``space`` and return each pixel's label, (height, width) int64.

    The model is fitted on the distinct colours with their counts as
    ``sample_weight``, exactly the fit on every pixel. Transparent pixels get -1.
    """
    return pixel_labels(picture, fit_color_labels(model, picture, space))


def fit_color_labels(model, picture, space="rgb"):
    """Fit ``model`` to the picture's distinct colours in ``space``, weighted by counts; each colour's label."""
    return fit_colors(model, picture.in_space(space), picture.distinct[1])


def fit_colors(model, colors, counts):
    """Fit ``model`` to colours (n_colors, n_features) weighted by their pixel counts; each colour's label."""
    if len(colors) == 1:  # estimators need two rows: one colour split into two halves is the same data
        return model.fit(np.repeat(colors, 2, axis=0), sample_weight=np.repeat(counts / 2, 2)).predict(colors)
    return model.fit(colors, sample_weight=counts).predict(colors)


def color_index(picture):
    """Each pixel's row of the picture's distinct colours, (height, width) int32; -1 for transparent pixels."""
    index = np.full(picture.rgb.shape[:2], -1, dtype=np.int32)
    index[picture.mask] = picture.distinct[2]
    return index


def pixel_labels(picture, color_labels):
    """Each pixel's label from each distinct colour's, (height, width) int64, -1 where transparent."""
    labels = np.full(picture.rgb.shape[:2], -1, dtype=np.int64)
    labels[picture.mask] = color_labels[picture.distinct[2]]
    return labels


def predict_labels(model, picture, space="rgb"):
    """Each pixel's label under a fitted model of ``space``, (height, width) int64, -1 where transparent.

    The model predicts the distinct colours only, and the inverse index maps
    their labels back to the pixels: the same labels as predicting every pixel.
    """
    if len(picture.distinct[0]) == 0:  # a wholly transparent image has nothing to predict
        return np.full(picture.rgb.shape[:2], -1, dtype=np.int64)
    return pixel_labels(picture, model.predict(picture.in_space(space)))


def model_colors(model, space="rgb"):
    """Each component's or cluster's mean, converted from ``space`` to sRGB, rounded and clipped: uint8 (k, 3)."""
    return colour.from_space(models.centers(model), space)


def distinct_palette(n_colors):
    """``n_colors`` well-separated colours: hues spread by the golden angle, alternating lightness."""
    hues = (np.arange(n_colors) * 0.618033988749895) % 1.0
    rows = [colorsys.hls_to_rgb(h, (0.45, 0.65, 0.3)[i % 3], 0.85) for i, h in enumerate(hues)]
    return np.clip(np.rint(np.array(rows) * 255), 0, 255).astype(np.uint8).reshape(n_colors, 3)


def paint(labels, palette):
    """Colour each pixel by its label, (height, width, 3) uint8; transparent pixels (-1) are black."""
    return np.where(labels[:, :, None] >= 0, palette[np.maximum(labels, 0)], 0).astype(np.uint8)


PAINT_BLOCK = 1 << 20  # pixels painted at a time: temporaries of 8 MB, not of the whole image


def paint_colors(picture, color_labels, palette):
    """The picture painted from each distinct colour's label, (height, width, 3) uint8; transparent pixels black.

    The same pixels as ``paint(pixel_labels(picture, color_labels), palette)`` without the (height, width)
    int64 label map: on 100 megapixels that map and its temporaries take 2.4 GB, this takes the output only.
    """
    painted = np.zeros((*picture.rgb.shape[:2], 3), dtype=np.uint8)
    per_color = np.asarray(palette, dtype=np.uint8)[color_labels]  # (n_colors, 3)
    inverse = picture.distinct[2]
    if picture.alpha is not None:
        painted[picture.mask] = per_color[inverse]
        return painted
    flat = painted.reshape(-1, 3)
    for start in range(0, len(flat), PAINT_BLOCK):  # in blocks: indexing converts the int32 ranks to int64
        flat[start:start + PAINT_BLOCK] = per_color[inverse[start:start + PAINT_BLOCK]]
    return painted


def resize_nearest(array, longest):
    """An image or label map resized by nearest neighbour so that its longest side is about ``longest`` pixels.

    Every output pixel is a copy of an input pixel, so a label map stays a
    label map. Shrinking takes the pixel nearest each output pixel's centre;
    enlarging repeats each pixel a whole number of times, so blocks stay even.

    Parameters
    ----------
    array : ndarray of shape (height, width) or (height, width, channels)
    longest : int

    Returns
    -------
    resized : ndarray of shape (new_height, new_width, ...)
    """
    height, width = array.shape[:2]
    scale = longest / max(height, width)
    if scale >= 1:
        scale = float(int(scale))

    def nearest(n):
        return np.minimum(((np.arange(max(1, round(n * scale))) + 0.5) / scale).astype(np.int64), n - 1)

    return array[nearest(height)[:, None], nearest(width)]


def thumbnail(picture, max_side):
    """The picture shrunk by nearest neighbour so that no side exceeds ``max_side``; a smaller picture is kept as is."""
    if max(picture.rgb.shape[:2]) <= max_side:
        return picture
    alpha = None if picture.alpha is None else resize_nearest(picture.alpha, max_side)
    return Picture(resize_nearest(picture.rgb, max_side), alpha, picture.notes)


def sample_pixels(model, picture, order="grouped", labels=None, random_state=0, space="rgb"):
    """A new image of the picture's size drawn from a fitted mixture, uint8 (height, width, 3).

    order : 'grouped' is ``model.sample`` as scikit-learn draws it, grouped by
        component (bands); 'shuffled' puts the same draws in random order;
        'per-pixel' draws each pixel from the component of the original pixel
        (``labels``), which keeps the layout.
    space : the colour space the mixture was fitted in; the draws are
        converted from it to sRGB, clipped to the gamut.
    """
    height, width = picture.rgb.shape[:2]
    rng = np.random.default_rng(random_state)
    if order == "per-pixel":
        flat = np.maximum(labels.ravel(), 0)
        noise = rng.standard_normal((flat.size, model.means_.shape[1]))
        draws = model.means_[flat] + _scaled_noise(model, flat, noise)
    else:
        draws, _ = copy.copy(model).set_params(random_state=random_state).sample(height * width)
        if order == "shuffled":
            draws = draws[rng.permutation(len(draws))]
    return colour.from_space(draws, space).reshape(height, width, -1)


def _scaled_noise(model, flat, noise):
    """Standard normals turned into draws of each pixel's component: z σ, or z Lᵀ with Σ = L Lᵀ (full, tied)."""
    covariances = model.covariances_
    if model.covariance_type == "spherical":
        return noise * np.sqrt(covariances[flat])[:, None]
    if model.covariance_type == "diag":
        return noise * np.sqrt(covariances[flat])
    factors = np.linalg.cholesky(np.broadcast_to(covariances, (model.n_components, *covariances.shape[-2:])))
    return np.einsum("nd,ned->ne", noise, factors[flat])


def summary_sheet(panels, palettes, captions=None, swatch=24, gap=8):
    """Equal-sized panels side by side, each under its caption and above its palette as swatches.

    Parameters
    ----------
    panels : list of ndarray of shape (height, width, 3), uint8
    palettes : list of array-like of shape (n_colors, 3)
        One per panel; an empty one for none.
    captions : list of str, optional
        One line per panel saying what it is, so that the sheet stands alone;
        wrapped at the panel's width (a column widens to its longest word).
        None leaves no room for captions.
    """
    height, width = panels[0].shape[:2]
    font = _caption_font(max(11, width // 30))  # about 40 characters across a panel
    lines = [_wrap(caption, font, width) for caption in captions] if captions else [[] for _ in panels]
    line_height = font.getbbox("Hg")[3] + 3
    column = max([width] + [math.ceil(font.getlength(line)) for block in lines for line in block])
    top = gap + line_height * max(len(block) for block in lines)
    per_row = max(width // swatch, 1)
    n_rows = max(-(-len(palette) // per_row) for palette in palettes)
    sheet = Image.new("RGB", (len(panels) * (column + gap) + gap, top + height + gap * 2 + n_rows * swatch), "white")
    draw = ImageDraw.Draw(sheet)
    for i, (panel, palette, block) in enumerate(zip(panels, palettes, lines)):
        left = gap + i * (column + gap)
        for j, line in enumerate(block):
            draw.text((left, gap + j * line_height), line, fill="black", font=font)
        sheet.paste(Image.fromarray(panel), (left, top))
        for j, color in enumerate(palette):
            x, y = left + (j % per_row) * swatch, top + height + gap + (j // per_row) * swatch
            draw.rectangle([x, y, x + swatch - 2, y + swatch - 2], fill=tuple(int(c) for c in color))
    return np.asarray(sheet)


def _caption_font(size):
    """Pillow's own font (bundled with it: nothing is fetched) at ``size`` pixels."""
    try:
        return ImageFont.load_default(size=size)
    except (ImportError, TypeError):  # Pillow without FreeType has only its small bitmap font
        return ImageFont.load_default()


def _wrap(text, font, width):
    """The words of ``text`` in lines no wider than ``width`` pixels (a longer word keeps a line of its own)."""
    lines = []
    for word in text.split():
        if lines and font.getlength(f"{lines[-1]} {word}") <= width:
            lines[-1] = f"{lines[-1]} {word}"
        else:
            lines.append(word)
    return lines
