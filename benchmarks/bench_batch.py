"""Throughput of `emseg batch --shared-model` on a local Dask cluster, against a plain loop over `emseg segment`.

Run:  .venv/bin/python benchmarks/bench_batch.py [--n-images 200] [--min-mp 1] [--max-mp 12] [--workers 2] [-k 10]

The photos are crops of the 12-megapixel mosaic of scikit-learn's two photos
(benchmarks/photos.py), of random sizes between --min-mp and --max-mp
megapixels, written as JPEG to a temporary folder. Both runs are in-process
calls of `cli.main`, warmed up once so that numba's compilation is excluded;
the batch runs on a cluster started beforehand (its start-up time is printed
apart). Memory per worker is each worker process's peak resident set size.
The batch fits one model on the whole collection, the loop one per image, so
the loop does more fitting: that is the point of a shared model.
"""

import argparse
import resource
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import cli  # noqa: E402
from segment import batch  # noqa: E402
from photos import mosaic, write_jpeg  # noqa: E402


def make_photos(folder, n_images, min_mp, max_mp, seed):
    """``n_images`` JPEG crops of the mosaic, of uniformly random sizes in megapixels; their paths and pixel counts."""
    rng = np.random.default_rng(seed)
    source = mosaic()
    height, width = source.shape[:2]
    paths, n_pixels = [], []
    for i in range(n_images):
        scale = np.sqrt(rng.uniform(min_mp, max_mp) * 1e6 / (height * width))
        h, w = min(height, round(height * scale)), min(width, round(width * scale))
        top, left = rng.integers(0, height - h + 1), rng.integers(0, width - w + 1)
        paths.append(write_jpeg(Path(folder) / f"photo{i:03d}.jpg", source[top:top + h, left:left + w]))
        n_pixels.append(h * w)
    return paths, int(np.sum(n_pixels))


def peak_rss_mib():
    """This process's peak resident set size, in MiB (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n-images", type=int, default=200)
    parser.add_argument("--min-mp", type=float, default=1.0)
    parser.add_argument("--max-mp", type=float, default=12.0)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("-k", type=int, default=10)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        (tmp / "in").mkdir()
        paths, n_pixels = make_photos(tmp / "in", args.n_images, args.min_mp, args.max_mp, args.seed)
        megapixels = n_pixels / 1e6
        common = ["-k", str(args.k), "--seed", str(args.seed), "--quiet"]

        start = time.perf_counter()
        with batch.local_cluster(args.workers) as cluster:
            started = time.perf_counter() - start
            address = cluster.scheduler_address
            assert cli.main(["batch", str(paths[0]), "-o", str(tmp / "warm"), "--scheduler", address, *common]) == 0
            start = time.perf_counter()
            assert cli.main(["batch", str(tmp / "in"), "-o", str(tmp / "batch"), "--scheduler", address, *common]) == 0
            batch_seconds = time.perf_counter() - start
            from distributed import Client

            with Client(address) as client:
                worker_mib = sorted(client.run(peak_rss_mib).values())

        assert cli.main(["segment", str(paths[0]), "-o", str(tmp / "warm.png"), *common]) == 0
        start = time.perf_counter()
        for path in paths:
            assert cli.main(["segment", str(path), "-o", str(tmp / f"{path.stem}_loop.png"), *common]) == 0
        loop_seconds = time.perf_counter() - start

    print(f"\n{args.n_images} photos of {args.min_mp:g} to {args.max_mp:g} MP, {megapixels:.1f} MP in all; "
          f"k={args.k}, seed={args.seed}, {args.workers} workers (cluster start {started:.1f} s)")
    print(f"{'run':<28} {'seconds':>8} {'MP/s':>8}")
    print(f"{'batch --shared-model':<28} {batch_seconds:>8.1f} {megapixels / batch_seconds:>8.2f}")
    print(f"{'loop over segment':<28} {loop_seconds:>8.1f} {megapixels / loop_seconds:>8.2f}")
    print("peak memory per worker: " + ", ".join(f"{mib:.0f} MiB" for mib in worker_mib))


if __name__ == "__main__":
    main()
