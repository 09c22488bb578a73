"""Image collections on a dask.distributed cluster: the work of ``emseg batch``.

One shared model: every worker sends back its images' colour histograms, the
client adds them and fits one model on the collection's distinct colours, and
the workers paint with it. Or one model per image, fitted where the image is
read. A file that cannot be read is reported, not raised, and the others go on.

Each painted image gets a record beside it, ``.NAME.emseg.json``, written after the image: the key
of what made it (`job_key`: the input's bytes and the recipe, such as the fitted model) and the
digest of the image's bytes. ``emseg batch --resume`` skips an output whose record holds the same
key and whose bytes still have that digest (`is_done`): complete, and made the same way.

This module imports dask.distributed; cli.py imports it only for ``emseg batch``.
"""

import contextlib
import glob
import hashlib
import json
import os
import warnings
from pathlib import Path

import numba
import numpy as np
from distributed import Client, LocalCluster, WorkerPlugin, as_completed
from sklearn.base import clone
from sklearn.exceptions import ConvergenceWarning

from . import image, models, quality, smooth

N_KEYS = 1 << 24  # every RGB8 colour packed as r << 16 | g << 8 | b


def local_cluster(n_workers):
    """A LocalCluster on this machine: ``n_workers`` processes of one thread each, loopback only, no dashboard.

    The numba kernels use the cores a worker is given, so the cores are
    shared out between the workers.
    """
    threads = max(1, (os.cpu_count() or 1) // n_workers)
    return LocalCluster(n_workers=n_workers, threads_per_worker=1, processes=True, dashboard_address=None,
                        host="127.0.0.1", env={"NUMBA_NUM_THREADS": str(threads)})


def color_histogram(path, max_pixels):
    """An image's colour histogram, on a worker: packed colour keys (uint32, sorted) and pixel counts (int64)."""
    picture = image.load(path, max_pixels=max_pixels)
    colors, counts, _ = picture.distinct
    keys = colors.astype(np.uint32) @ np.array([1 << 16, 1 << 8, 1], dtype=np.uint32)
    return keys, counts.astype(np.int64)


def job_key(path, recipe):
    """sha256 (hex) of the input file's bytes and of ``recipe``, a JSON-able dict of what makes the output;
    None when the input cannot be read (its job then fails and reports why)."""
    try:
        data = Path(path).read_bytes()
    except OSError:
        return None
    text = json.dumps(recipe, sort_keys=True, default=repr)
    return hashlib.sha256(hashlib.sha256(data).digest() + text.encode("utf-8")).hexdigest()


def record_path(output):
    """Where the record of ``output`` lives: ``.NAME.emseg.json`` beside it."""
    output = Path(output)
    return output.with_name(f".{output.name}.emseg.json")


def is_done(output, key):
    """True when ``output`` exists, its record holds ``key``, and its bytes have the recorded digest."""
    try:
        record = json.loads(record_path(output).read_text(encoding="utf-8"))
        return key is not None and record["key"] == key and record["sha256"] == _digest(output)
    except (OSError, ValueError, KeyError, TypeError):  # no record, or a damaged one: not done
        return False


def remove_leftovers(output):
    """Delete the temporary files a killed run left for ``output`` and its record (SIGKILL allows no clean-up)."""
    output = Path(output)
    for name in (output.name, record_path(output).name):
        for temporary in output.parent.glob(f".{glob.escape(name)}.*.part"):
            temporary.unlink(missing_ok=True)


def _digest(path):
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def _save_with_record(output, rgb, alpha, key):
    """Write the image atomically, then its record (so a record never vouches for a missing image)."""
    written = image.save(output, rgb, alpha)
    image.save_text(record_path(output), json.dumps(dict(key=key, sha256=_digest(written))) + "\n")
    return str(written)


def paint_file(path, output, key, model, palette, max_pixels, space="rgb"):
    """Paint one image with a fitted model of ``space``, on a worker, and write it and its record atomically.

    Returns the path written and the painted image's quality (`quality.Quality.as_dict`).
    """
    picture = image.load(path, max_pixels=max_pixels)
    if len(picture.distinct[0]) == 0:  # wholly transparent: nothing to predict or measure
        painted = image.paint(image.predict_labels(model, picture, space), palette)
        return _save_with_record(output, painted, picture.alpha, key), None
    color_labels = model.predict(picture.in_space(space))
    labels, palette, measured = quality.paint(picture, model, color_labels, palette, space)
    return _save_with_record(output, image.paint(labels, palette), picture.alpha, key), measured.as_dict()


def fit_and_paint_file(path, output, key, model, max_pixels, space="rgb", auto=None, beta=0.0, neighbours=4):
    """Fit ``model`` (unfitted) to one image in ``space``, on a worker, paint it with its mean colours and write it.

    ``auto`` = (k, covariance type, k_max) chooses the mixture by BIC on the
    image's colours instead (`models.select`, 'auto' for either), with the
    seed, iteration limit and tolerance of ``model``. With ``beta`` > 0 the
    fit is refined on the pixel grid (`smooth.refine`).

    Returns the path written and the painted image's quality (`quality.Quality.as_dict`).
    """
    picture = image.load(path, max_pixels=max_pixels)
    colors, _, _ = picture.distinct
    model = models.set_k(clone(model), min(models.k_of(model), max(len(colors), 1)))  # k at most the image's colours
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        if auto is None:
            color_labels = image.fit_color_labels(model, picture, space)
        else:
            k, covariance_type, k_max = auto
            k = k if k == "auto" else models.k_of(model)
            options = {name: getattr(model, name) for name in ("random_state", "max_iter", "tol")}
            _, model = models.select(picture.in_space(space), picture.distinct[1], k, covariance_type, k_max, **options)
            color_labels = model.predict(picture.in_space(space))
    refined = smooth.refine(model, picture, color_labels, space, beta, neighbours)[0] if beta else None
    labels, palette, measured = quality.paint(picture, model, color_labels, image.model_colors(model, space), space,
                                              labels=refined)
    return _save_with_record(output, image.paint(labels, palette), picture.alpha, key), measured.as_dict()


def shared_histogram(client, paths, max_pixels, on_done):
    """The colour histogram of every readable image in ``paths``, reduced as the workers finish.

    Returns
    -------
    colors : ndarray of shape (n_colors, 3), float64
        Sorted by packed key, as `image.distinct_colors` sorts them.
    counts : ndarray of shape (n_colors,), float64
    failures : dict
        path -> the error message, for the images that could not be read.
    """
    totals = np.zeros(N_KEYS, dtype=np.int64)  # 128 MiB whatever the collection's size
    failures = {}
    futures = {client.submit(_reported, color_histogram, path, max_pixels, pure=False): path for path in paths}
    for future in as_completed(futures):
        ok, result = future.result()
        if ok:
            keys, counts = result
            totals[keys] += counts  # keys are distinct within one image; integer sums are exact in any order
        else:
            failures[futures[future]] = result
        on_done()
    keys = np.flatnonzero(totals)
    colors = np.stack([keys >> 16, (keys >> 8) & 255, keys & 255], axis=1).astype(np.float64)
    return colors, totals[keys].astype(np.float64), failures


def run_on_workers(client, function, paths, outputs, keys, *args, on_done):
    """``function(path, output, key, *args)`` for each image on the workers; returns (paths written, failures)."""
    futures = {client.submit(_reported, function, path, output, key, *args, pure=False): path
               for path, output, key in zip(paths, outputs, keys)}
    written, failures = {}, {}
    for future in as_completed(futures):
        ok, result = future.result()
        (written if ok else failures)[futures[future]] = result
        on_done()
    return [written[path] for path in paths if path in written], failures


def _reported(function, path, *args):
    """(True, ``function(path, *args)``), or (False, the error message): a bad file is reported, not raised.

    Runs on the workers. Returning the failure rather than raising it keeps
    the workers' logs quiet; a worker that dies is still retried by dask.
    """
    try:
        return True, function(path, *args)
    except Exception as error:  # any failure of one file; the other files go on
        return False, _message(path, error)


def _message(path, error):
    """The error as one line that names the file."""
    message = str(error) or type(error).__name__
    return message if str(path) in message else f"{path}: {message}"


@contextlib.contextmanager
def connect(scheduler=None, n_workers=2):
    """A Client of the cluster at ``scheduler``, or of a new `local_cluster` of ``n_workers``, closed on exit."""
    if scheduler:
        with Client(scheduler, timeout="20s") as client:
            yield client
    else:
        with local_cluster(n_workers) as cluster, Client(cluster) as client:
            client.register_plugin(NumbaThreads())
            yield client


class NumbaThreads(WorkerPlugin):
    """Make numba read the worker's NUMBA_NUM_THREADS (`local_cluster`), on every worker, restarted ones too.

    A worker imports numba before the nanny's environment is applied, so numba's
    config keeps the default thread count while the environment says another;
    the first kernel compiled in the worker (not loaded from the cache) rereads
    the environment after the threads started and numba refuses: "Cannot set
    NUMBA_NUM_THREADS to a different value once the threads have been launched".
    Rereading it here, before any parallel kernel runs, makes both agree.
    """

    def setup(self, worker):
        numba.config.reload_config()
