"""The photos the benchmarks run on: scikit-learn's two bundled photos and a 12-megapixel mosaic of them.

Every image is made of real photo pixels (the bundled JPEG files, or tiles of
them mirrored and resized with Pillow), never of random noise: noise is not
what people segment, and it has far more distinct colours than a photo.
"""

from importlib import resources
from pathlib import Path

import numpy as np
from PIL import Image

MOSAIC_SIZE = (4000, 3000)  # width, height: 12 megapixels, a phone camera's photo
JPEG_QUALITY = 95


def bundled_path(name):
    """Path of a photo bundled with scikit-learn: 'china.jpg' or 'flower.jpg' (427 x 640)."""
    return Path(str(resources.files("sklearn.datasets.images") / name))


def read_rgb(path):
    """The pixels of an image file, uint8 of shape (height, width, 3)."""
    with Image.open(path) as image:
        return np.asarray(image.convert("RGB"))


def mosaic(size=MOSAIC_SIZE):
    """A 3 x 3 mosaic of china.jpg and flower.jpg, alternately mirrored, resized to ``size`` (width, height).

    Returns
    -------
    rgb : ndarray of shape (height, width, 3), uint8
    """
    china, flower = read_rgb(bundled_path("china.jpg")), read_rgb(bundled_path("flower.jpg"))
    rows = []
    for r in range(3):
        tiles = []
        for c in range(3):
            tile = china if (r + c) % 2 == 0 else flower
            if c % 2:
                tile = tile[:, ::-1]  # mirrored left-right
            if r % 2:
                tile = tile[::-1]  # mirrored top-bottom
            tiles.append(tile)
        rows.append(np.concatenate(tiles, axis=1))
    grid = Image.fromarray(np.concatenate(rows, axis=0))
    return np.asarray(grid.resize(size, Image.Resampling.LANCZOS))


def resized(rgb, n_pixels):
    """``rgb`` resized with Lanczos to about ``n_pixels`` pixels, keeping its aspect ratio; uint8."""
    height, width = rgb.shape[:2]
    scale = np.sqrt(n_pixels / (height * width))
    size = (max(round(width * scale), 1), max(round(height * scale), 1))
    return np.asarray(Image.fromarray(rgb).resize(size, Image.Resampling.LANCZOS))


def write_jpeg(path, rgb):
    """Save ``rgb`` as a JPEG file of quality 95 and return the path."""
    Image.fromarray(rgb).save(path, quality=JPEG_QUALITY)
    return Path(path)


def benchmark_photos(folder, names):
    """Paths of the named benchmark photos, writing the generated ones into ``folder``.

    'china' and 'flower' are scikit-learn's own files; 'mosaic12' is
    :func:`mosaic` saved as JPEG; 'tiny' is china.jpg resized to 20,000
    pixels, for smoke tests. Every case reads its pixels back from these
    files, so the library, scikit-learn and the command line all see the same
    pixels.
    """
    folder = Path(folder)
    makers = {
        "mosaic12": mosaic,
        "tiny": lambda: resized(read_rgb(bundled_path("china.jpg")), 20_000),
    }
    paths = {}
    for name in names:
        if name in ("china", "flower"):
            paths[name] = bundled_path(f"{name}.jpg")
        elif name in makers:
            paths[name] = write_jpeg(folder / f"{name}.jpg", makers[name]())
        else:
            raise ValueError(f"unknown photo {name!r}; choose from china, flower, mosaic12, tiny.")
    return paths
