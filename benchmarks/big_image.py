"""Peak memory of `emseg segment` on a 100-megapixel image, and the refusal of the default --max-pixels.

    python benchmarks/big_image.py [--side 10000] [--method kmeans] [-k 8]

Writes a side x side PNG tiled from china.jpg (each tile's colours shifted a little, so that the
image has many distinct colours), then runs the installed command on it twice in fresh processes
under /usr/bin/time -v: once with the default limit (Pillow's 89,478,485 pixels: refused from the
header, before decoding), once with --max-pixels raised to the image's size. It prints the exit
status, the wall time and the peak resident memory (``Maximum resident set size``, the process's
own peak, unaffected by the parent) of each run. The target: under 2 GB.
"""

import argparse
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image
from sklearn.datasets import load_sample_image

EMSEG = Path(sys.executable).with_name("emseg")


def make_image(path, side):
    """A side x side RGB PNG of china.jpg tiles, tile t shifted by t mod 7 in each channel."""
    tile = load_sample_image("china.jpg")
    canvas = Image.new("RGB", (side, side))
    for t, (top, left) in enumerate((y, x) for y in range(0, side, tile.shape[0]) for x in range(0, side, tile.shape[1])):
        shifted = np.clip(tile.astype(np.int16) + (t % 7), 0, 255).astype(np.uint8)
        canvas.paste(Image.fromarray(shifted), (left, top))
    canvas.save(path, compress_level=1)


def measure(argv):
    """(exit status, wall seconds, peak RSS in MiB, last stderr line) of ``emseg ARGV`` under /usr/bin/time -v."""
    start = time.perf_counter()
    result = subprocess.run(["/usr/bin/time", "-v", str(EMSEG), *argv], capture_output=True, text=True)
    seconds = time.perf_counter() - start
    peak_kib = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", result.stderr).group(1))
    lines = [line for line in result.stderr.splitlines() if line.startswith("emseg")]
    return result.returncode, seconds, peak_kib / 1024, lines[-1] if lines else ""


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--side", type=int, default=10000)
    parser.add_argument("--method", default="kmeans")
    parser.add_argument("-k", type=int, default=8)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "big.png"
        make_image(path, args.side)
        n_pixels = args.side ** 2
        print(f"{args.side} x {args.side} = {n_pixels:,} pixels, {path.stat().st_size / 2**20:.0f} MiB PNG, "
              f"{args.method} k={args.k}")
        common = ["segment", str(path), "--method", args.method, "-k", str(args.k), "--quiet",
                  "-o", str(Path(folder) / "out.png")]
        for label, extra in (("default --max-pixels", []), (f"--max-pixels {n_pixels}", ["--max-pixels", str(n_pixels)])):
            code, seconds, peak, line = measure(common + extra)
            print(f"{label:<28} exit {code}  {seconds:7.1f} s  peak RSS {peak:7.0f} MiB  {line[:150]}")


if __name__ == "__main__":
    main()
