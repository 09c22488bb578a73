"""The README's figure of --smooth: a noisy photo segmented with β = 0 and β > 0, written to docs/smooth.png.

    python benchmarks/smooth_figure.py [-o docs/smooth.png]

china.jpg at half size with Gaussian noise (σ = 40 per channel, seed 0), a
diagonal mixture of k = 6 fitted as ``emseg segment`` fits it, painted plain
and refined with a Potts prior (β = 1.5, 8 neighbours), and the refined fit's
uncertainty (entropy / log k, white = certain). The captions give the mean
ΔE00 of each painting against the *clean* photo, in ASCII (Pillow's bundled font has no Greek letters).
"""

import argparse
import sys
from pathlib import Path

import numpy as np
from PIL import Image
from sklearn.datasets import load_sample_image

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from em import GaussianMixture  # noqa: E402
from segment import image, quality, smooth  # noqa: E402

K, SIGMA, BETA, NEIGHBOURS = 6, 40.0, 1.5, 8


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("-o", "--output", default=str(Path(__file__).resolve().parents[1] / "docs" / "smooth.png"))
    args = parser.parse_args(argv)
    clean = np.asarray(Image.fromarray(load_sample_image("china.jpg")).resize((320, 214), Image.Resampling.LANCZOS))
    rng = np.random.default_rng(0)
    noisy = np.clip(np.rint(clean + rng.normal(0.0, SIGMA, clean.shape)), 0, 255).astype(np.uint8)
    picture, reference = image.Picture(noisy), image.Picture(clean)
    panels, palettes, captions = [noisy], [[]], [f"china.jpg with noise, sigma = {SIGMA:g}"]
    for beta in (0.0, BETA):
        model = GaussianMixture(K, random_state=0)
        color_labels = image.fit_color_labels(model, picture)
        labels, soft = smooth.refine(model, picture, color_labels, beta=beta, neighbours=NEIGHBOURS)
        palette = image.model_colors(model)
        against_clean = quality.measure_pixels(reference, labels, palette)
        panels.append(image.paint(labels, palette))
        palettes.append(palette)
        which = "plain fit, beta = 0" if beta == 0 else f"smoothed, beta = {beta:g}, {NEIGHBOURS} neighbours"
        captions.append(f"GMM k = {K}, {which}: mean CIEDE2000 to the clean photo {against_clean.delta_e2000_mean:.1f}")
    certainty = np.rint(255 * (1 - soft.entropy() / np.log(K))).astype(np.uint8)
    panels.append(np.repeat(certainty[:, :, None], 3, axis=2))
    palettes.append([])
    captions.append("uncertainty of the smoothed fit (entropy / log k; black = all components alike)")
    print(image.save(args.output, image.summary_sheet(panels, palettes, captions)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
