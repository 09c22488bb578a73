"""Dask: mixtures and k-means on dask arrays, and `emseg batch`, on a real LocalCluster of two worker processes."""

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import cli
from conftest import make_blobs, read_image as pixels, run_cli as run
from em import GaussianMixture, _kernels, reference
from exactness import (EXP_FLUSH, MixtureEvaluation, assert_labels_agree, assert_same_kmeans, assert_same_mixture,
                       assert_same_typed_mixture, model_params, parameter_changes, statistics_tolerances)
from kmeans import KMeans
from segment import image, modelfile, models

da = pytest.importorskip("dask.array")
distributed = pytest.importorskip("distributed")
segment_batch = pytest.importorskip("segment.batch")

# Same start, same kernels; only the order of the additions differs (per block, then
# across blocks): the bounds for two correct implementations (tests/exactness.py) hold.

pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")  # tol=0 runs to max_iter


@pytest.fixture(scope="module")
def client():
    """Two worker processes, one thread each, on the loopback interface only."""
    cluster = distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None, host="127.0.0.1",
        env={"NUMBA_NUM_THREADS": "1"},
    )
    with distributed.Client(cluster) as client:
        yield client
    cluster.close()


@pytest.fixture
def data():
    """Weighted blobs in 12 row blocks."""
    X = make_blobs(n_samples=6000, n_features=3, n_centers=4, seed=1)
    sample_weight = np.random.default_rng(1).integers(1, 4, size=len(X)).astype(np.float64)
    chunks = (700,) * 8 + (400,)
    return X, sample_weight, da.from_array(X, chunks=(chunks, 3)), da.from_array(sample_weight, chunks=(chunks,))


def mixture_start(X):
    rows = [0, 1500, 3000, 4500]
    return dict(means_init=X[rows], weights_init=np.full(4, 0.25), precisions_init=np.ones((4, X.shape[1])))


def start_params(start):
    return start["weights_init"], start["means_init"], 1.0 / start["precisions_init"]


# ------------------------------------------------------------------ kernels

@pytest.mark.exactness
def test_e_step_sums_add_up_over_blocks_and_match_the_reference(data):
    X, w, _, _ = data
    gm = GaussianMixture(4, random_state=0, max_iter=2).fit(X, sample_weight=w)
    params = (gm.means_, gm.precisions_, np.log(gm.weights_))
    whole = _kernels.e_step_sums(X, w, *params)
    halves = [_kernels.e_step_sums(X[part], w[part], *params) for part in (slice(0, 2500), slice(2500, None))]
    # the bounds of two correct E-steps (tests/exactness.py): block sums are one more order of addition
    tolerances = statistics_tolerances(X, w, *model_params(gm))
    names = ("nk", "sum_x", "sum_dd", "log_lik")
    for name, got, want, ref in zip(names, (a + b for a, b in zip(*halves)), whole, reference.e_step_sums(X, w, *params)):
        assert np.all(np.abs(got - want) <= tolerances[name]), name  # two partial sums against one
        assert np.all(np.abs(want - ref) <= tolerances[name]), name  # kernel against reference
    stats = reference.scatter_about_new_means(*whole[:3], gm.means_)
    for name, got, want in zip(("nk", "sum_x", "sum_xx"), stats, reference.e_step_stats(X, w, *params)):
        assert np.all(np.abs(got - want) <= tolerances[name]), name


# ------------------------------------------------------------------ arrays

def test_mixture_on_a_dask_array_equals_the_in_memory_fit(client, data):
    X, w, X_dask, w_dask = data
    options = dict(max_iter=8, tol=0, **mixture_start(X))
    want = GaussianMixture(4, **options).fit(X, sample_weight=w)
    got = GaussianMixture(4, **options).fit(X_dask, sample_weight=w_dask)
    assert_same_mixture(got, want, X, start_params(mixture_start(X)), sample_weight=w)
    labels = got.predict(X_dask)
    assert isinstance(labels, da.Array)
    # evaluations of two slightly different parameter sets: the observed differences propagated
    evaluation = MixtureEvaluation(X, *model_params(want), parameter_changes=parameter_changes(got, want))
    assert_labels_agree(labels.compute(), want.predict(X), evaluation.weighted_log_prob, evaluation.term_bound)
    assert np.all(np.abs(got.predict_proba(X_dask).compute() - want.predict_proba(X)) <= evaluation.proba_bound + EXP_FLUSH)
    assert np.all(np.abs(got.score_samples(X_dask).compute() - want.score_samples(X)) <= evaluation.score_bound)


@pytest.mark.parametrize("covariance_type", ["full", "tied", "spherical"])
def test_every_covariance_type_on_a_dask_array_equals_the_in_memory_fit(client, data, covariance_type):
    """The k-means start on the workers (scatter matrices for full and tied), then EM block by block.

    Same start and kernels as in memory; only the order of the additions differs, so
    the bounds of two correct fits of the type hold (`assert_same_typed_mixture`).
    """
    X, w, X_dask, w_dask = data
    options = dict(covariance_type=covariance_type, random_state=0, max_iter=6, tol=0)
    want = GaussianMixture(4, trace=True, **options).fit(X, sample_weight=w)
    got = GaussianMixture(4, **options).fit(X_dask, sample_weight=w_dask)
    start = tuple(want.trace_[name][0] for name in ("weights", "means", "variances"))
    tau, _ = assert_same_typed_mixture(got, want, X, start, sample_weight=w)
    assert tau < 1e-6  # a bound that still tells a wrong formula apart (test_a_wrong_formula_is_caught)
    assert np.array_equal(got.predict(X_dask).compute(), want.predict(X))  # blobs: no label within τ of a tie


@pytest.mark.parametrize("init_params", ["kmeans", "k-means++", "random_from_data"])
def test_mixture_initialised_on_a_dask_array_equals_the_in_memory_fit(client, data, init_params):
    # at most SAMPLE_SIZE rows: the sample is the whole array and the seed draws the same start
    X, w, X_dask, w_dask = data
    want = GaussianMixture(4, init_params=init_params, random_state=0, trace=True).fit(X, sample_weight=w)
    got = GaussianMixture(4, init_params=init_params, random_state=0).fit(X_dask, sample_weight=w_dask)
    start = tuple(want.trace_[name][0] for name in ("weights", "means", "variances"))
    assert_same_mixture(got, want, X, start, sample_weight=w)


def test_kmeans_on_a_dask_array_equals_the_in_memory_fit(client, data):
    X, w, X_dask, w_dask = data
    init = X[[0, 1, 2, 3]]  # a poor start, so that Lloyd runs several iterations
    want = KMeans(4, init=init, tol=0).fit(X, sample_weight=w)
    got = KMeans(4, init=init, tol=0).fit(X_dask, sample_weight=w_dask)
    assert got.n_iter_ == want.n_iter_ > 2
    got.labels_ = got.labels_.compute()
    assert_same_kmeans(got, want, X, w)
    seeded = KMeans(4, random_state=3).fit(X_dask, sample_weight=w_dask)
    assert np.array_equal(seeded.predict(X_dask).compute(), KMeans(4, random_state=3).fit(X, sample_weight=w).labels_)


def test_kmeans_on_a_dask_array_relocates_an_empty_cluster_as_in_memory(client, data):
    X, w, X_dask, w_dask = data
    init = np.vstack([X[[0, 1, 2]], [[100.0, 100.0, 100.0]]])  # nothing is nearest the last centre
    want = KMeans(4, init=init, tol=0).fit(X, sample_weight=w)
    got = KMeans(4, init=init, tol=0).fit(X_dask, sample_weight=w_dask)
    got.labels_ = got.labels_.compute()
    assert_same_kmeans(got, want, X, w)


def test_a_worker_killed_mid_fit_does_not_change_the_result(client, data):
    X, w, X_dask, w_dask = data
    options = dict(max_iter=6, tol=0, **mixture_start(X))
    want = GaussianMixture(4, **options).fit(X, sample_weight=w)
    before = client.run(os.getpid)
    killed = []

    def kill_one_worker(n_iter, lower_bound):
        if n_iter == 3:
            address, pid = sorted(before.items())[0]
            os.kill(pid, signal.SIGKILL)  # its nanny starts a new worker; dask reruns the lost tasks
            killed.append(address)

    got = GaussianMixture(4, callback=kill_one_worker, **options).fit(X_dask, sample_weight=w_dask)
    client.wait_for_workers(2, timeout=60)
    assert killed and killed[0] not in client.run(os.getpid)
    assert_same_mixture(got, want, X, start_params(mixture_start(X)), sample_weight=w)


def test_bad_dask_input_gives_a_clear_error(client, data):
    X, w, X_dask, w_dask = data
    with pytest.raises(ValueError, match="NaN or inf in 1 row"):
        GaussianMixture(2).fit(da.from_array(np.vstack([X, [[np.nan, 0.0, 0.0]]]), chunks=(1000, 3)))
    with pytest.raises(ValueError, match="init_params='random'"):
        GaussianMixture(2, init_params="random").fit(X_dask)
    with pytest.raises(ValueError, match="trace=True"):
        KMeans(2, trace=True).fit(X_dask)
    with pytest.raises(ValueError, match="sample_weight has 1 negative"):
        KMeans(2).fit(X_dask, sample_weight=da.from_array(np.r_[-1.0, w[1:]], chunks=1000))


def test_importing_the_library_and_the_command_line_does_not_import_dask():
    code = "import sys, cli, em, kmeans; assert not [m for m in sys.modules if m.startswith('dask')]"
    subprocess.run([sys.executable, "-c", code], check=True, timeout=300)  # imports only; generous for a slow machine


# ------------------------------------------------------------- collections

@pytest.fixture
def photos(tmp_path):
    """Three small lossless photos in tmp_path/in: china and flower downsampled, and a generated gradient."""
    from PIL import Image
    from sklearn.datasets import load_sample_image

    folder = tmp_path / "in"
    folder.mkdir()
    rgbs = {name: load_sample_image(f"{name}.jpg")[::10, ::10] for name in ("china", "flower")}
    y, x = np.mgrid[0:40, 0:60]
    rgbs["gradient"] = np.dstack([x * 4, y * 6, (x + y) * 2]).astype(np.uint8)
    for name, rgb in rgbs.items():
        Image.fromarray(rgb).save(folder / f"{name}.png")
    return sorted(folder.glob("*.png"))


def concatenated_pixels(paths):
    return np.concatenate([image.load(path).rgb.reshape(-1, 3) for path in paths]).astype(np.float64)


def test_the_shared_histogram_fit_is_the_fit_on_all_pixels(client, photos):
    colors, counts, failures = segment_batch.shared_histogram(client, photos, None, on_done=lambda: None)
    X = concatenated_pixels(photos)
    assert not failures and counts.sum() == len(X)
    options = dict(max_iter=10, tol=0, **mixture_start(X))
    # the same weighted sums, grouped by colour: rounding only
    assert_same_mixture(GaussianMixture(4, **options).fit(colors, sample_weight=counts),
                        GaussianMixture(4, **options).fit(X), X, start_params(mixture_start(X)))


def only_quality_lines(err, photos):
    """stderr of a batch run holds one quality line per image painted, nothing else (--quiet silences it)."""
    lines = err.splitlines()
    return len(lines) == len(photos) and all(line.startswith("emseg: ") and ": PSNR " in line for line in lines)


@pytest.mark.parametrize("method", ["gmm", "kmeans"])
def test_batch_with_a_shared_model_paints_as_segment_with_its_model(client, photos, tmp_path, capsys, method):
    address = client.scheduler.address
    assert address.startswith("tcp://127.0.0.1:")  # the tests' own scheduler, on the loopback interface
    out = tmp_path / "out"
    code, stdout, err = run(capsys, "batch", tmp_path / "in", "-o", out, "-k", 4, "--method", method,
                            "--max-iter", 20, "--scheduler", address)
    assert code == 0 and only_quality_lines(err, photos)
    assert stdout.splitlines()[0] == str(out / "model.json")
    model, palette, _ = modelfile.read(out / "model.json")
    # the fit on the collection's distinct colours, weighted by their counts, made here
    colors, counts, _ = image.distinct_colors(concatenated_pixels(photos).astype(np.uint8))
    want = (GaussianMixture if method == "gmm" else KMeans)(4, random_state=0, max_iter=20).fit(colors, sample_weight=counts)
    names = ("weights_", "means_", "covariances_") if method == "gmm" else ("cluster_centers_",)
    for name in names:  # one machine, the same data in the same order: bit for bit, whatever the threads
        assert np.array_equal(getattr(model, name), getattr(want, name)), name
    assert np.array_equal(palette, image.model_colors(want))
    for path in photos:
        painted = out / f"{path.stem}_{method}_k4.png"
        assert str(painted) in stdout.splitlines()
        code, _, _ = run(capsys, "segment", path, "--model", out / "model.json", "-o", tmp_path / "again.png")
        assert code == 0
        assert np.array_equal(pixels(painted), pixels(tmp_path / "again.png"))


def test_batch_chooses_the_shared_model_by_bic(client, photos, tmp_path, capsys):
    """-k auto --covariance auto: the table of the shared histogram's fits, and model.json holds the best of them."""
    out = tmp_path / "out"
    code, stdout, _ = run(capsys, "batch", tmp_path / "in", "-o", out, "-k", "auto", "--covariance", "auto",
                          "--k-max", 3, "--max-iter", 5, "--scheduler", client.scheduler.address)
    assert code == 0
    colors, counts, _ = image.distinct_colors(concatenated_pixels(photos).astype(np.uint8))
    table, want = models.select(colors, counts, "auto", "auto", 3, random_state=0, max_iter=5)
    assert stdout.startswith(models.criterion_table(table, want))  # 4 types x k = 2, 3, then the paths written
    model, _, _ = modelfile.read(out / "model.json")
    assert model.covariance_type == want.covariance_type
    for name in ("weights_", "means_", "covariances_"):  # the same fit made here: bit for bit
        assert np.array_equal(getattr(model, name), getattr(want, name)), name


def test_batch_per_image_chooses_each_images_model_as_segment_does(client, photos, tmp_path, capsys):
    out = tmp_path / "out"
    options = ["--covariance", "auto", "-k", 2, "--max-iter", 5]
    code, _, _ = run(capsys, "batch", tmp_path / "in", "-o", out, "--per-image", *options,
                     "--scheduler", client.scheduler.address)
    assert code == 0
    for path in photos:  # each painted exactly as `emseg segment` paints it alone, with the type BIC chose there
        assert run(capsys, "segment", path, *options, "-o", tmp_path / "alone.png")[0] == 0
        assert np.array_equal(pixels(out / f"{path.stem}_gmm_k2.png"), pixels(tmp_path / "alone.png"))


def test_batch_reports_and_skips_a_corrupt_file(client, photos, tmp_path, capsys):
    (tmp_path / "in" / "broken.png").write_bytes(b"not a png at all")
    out = tmp_path / "out"
    code, stdout, err = run(capsys, "batch", tmp_path / "in" / "*.png", "-o", out, "-k", 3, "--per-image",
                            "--max-iter", 10, "--scheduler", client.scheduler.address)
    assert code == 1
    assert "1 of 4 inputs failed" in err and "broken.png is not an image Pillow can read" in err
    assert not (out / "broken_gmm_k3.png").exists() and not (out / "model.json").exists()
    for path in photos:  # each painted exactly as `emseg segment` paints it alone
        assert run(capsys, "segment", path, "-k", 3, "--max-iter", 10, "-o", tmp_path / "alone.png")[0] == 0
        assert np.array_equal(pixels(out / f"{path.stem}_gmm_k3.png"), pixels(tmp_path / "alone.png"))
    names = [f"{p.stem}_gmm_k3.png" for p in photos]
    assert sorted(p.name for p in out.iterdir()) == sorted(names + [f".{n}.emseg.json" for n in names])  # no temporary


def test_batch_starts_its_own_local_cluster(photos, tmp_path, capsys):
    out = tmp_path / "out"
    code, stdout, err = run(capsys, "batch", photos[0], "-o", out, "-k", 2, "--workers", 1, "--max-iter", 5)
    assert code == 0 and only_quality_lines(err, photos[:1])
    assert stdout.splitlines() == [str(out / "model.json"), str(out / f"{photos[0].stem}_gmm_k2.png")]


NUMBA_THREADS_PROBE = """
import json, os, sys
sys.path.insert(0, sys.argv[1])
import cli  # as the emseg entry point does: numba is imported by __main__, which every spawned worker imports again
from segment import batch


def threads():
    import numba

    return numba.config.NUMBA_NUM_THREADS, int(os.environ["NUMBA_NUM_THREADS"])


if __name__ == "__main__":
    with batch.connect(n_workers=2) as client:
        print(json.dumps(list(client.run(threads).values())))
"""


def test_local_cluster_workers_agree_with_numba_on_their_threads(tmp_path):
    """A worker imports numba (through __main__) before its environment is set; unless numba rereads it, the first
    kernel the worker compiles finds the two disagree after the threads started, and numba refuses (seen as every
    image of `batch --per-image --smooth` failing with "Cannot set NUMBA_NUM_THREADS to a different value")."""
    script = tmp_path / "probe.py"
    script.write_text(NUMBA_THREADS_PROBE)
    completed = subprocess.run([sys.executable, str(script), str(Path(cli.__file__).parent)], capture_output=True,
                               text=True, timeout=300)
    assert completed.returncode == 0, completed.stderr
    threads = json.loads(completed.stdout.splitlines()[-1])
    assert len(threads) == 2 and all(config == environment for config, environment in threads), threads


def test_batch_without_dask_says_how_to_install_it(photos, tmp_path, capsys, monkeypatch):
    import segment

    monkeypatch.setitem(sys.modules, "segment.batch", None)  # import segment.batch now raises ImportError
    monkeypatch.delattr(segment, "batch")
    code, stdout, err = run(capsys, "batch", photos[0], "-o", tmp_path / "out")
    assert code == 1 and stdout == ""
    assert err == "emseg: error: emseg batch runs on Dask, which is not installed; pip install 'emseg[distributed]'\n"


def test_batch_refuses_two_inputs_written_to_one_file(photos, tmp_path, capsys):
    other = tmp_path / "other"
    other.mkdir()
    (other / "china.png").write_bytes(photos[0].read_bytes())
    code, _, err = run(capsys, "batch", photos[0], other / "china.png", "-o", tmp_path / "out")
    assert code == 1 and "would both be written as" in err


def test_inputs_expand_folders_and_patterns_once_each(photos, tmp_path):
    (tmp_path / "in" / "notes.txt").write_text("not an image")
    got = image.expand_inputs([tmp_path / "in", str(tmp_path / "in" / "c*.png"), tmp_path / "missing.png"])
    assert got == photos + [tmp_path / "missing.png"]


def test_a_bad_model_file_is_one_clear_error(photos, tmp_path, capsys):
    (tmp_path / "model.json").write_text('{"method": "gmm"}')
    code, _, err = run(capsys, "segment", photos[0], "--model", tmp_path / "model.json", "-o", tmp_path / "x.png")
    assert code == 1 and "is not a usable emseg model file" in err
    assert not (tmp_path / "x.png").exists()


def test_a_model_file_round_trips_exactly(tmp_path):
    X = make_blobs(n_samples=300, n_features=3, seed=2) * 20 + 128
    for model in (GaussianMixture(3, random_state=0).fit(X), KMeans(3, random_state=0).fit(X)):
        palette = image.model_colors(model)
        modelfile.save(tmp_path / "model.json", model, palette)
        loaded, loaded_palette, _ = modelfile.read(tmp_path / "model.json")
        assert np.array_equal(loaded_palette, palette)
        assert np.array_equal(loaded.predict(X), model.predict(X))


def test_batch_progress_counts_images_on_a_terminal_only(capsys, monkeypatch):
    cli.BatchProgress("painted", 2, quiet=False)()
    assert capsys.readouterr().err == ""  # not a terminal
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True)
    progress = cli.BatchProgress("painted", 2, quiet=False)
    progress()
    progress()
    assert capsys.readouterr().err == "\remseg batch: 1/2 images painted\remseg batch: 2/2 images painted\n"


def test_a_worker_killed_during_a_batch_loses_no_image(client, photos):
    want = segment_batch.shared_histogram(client, photos, None, on_done=lambda: None)
    pid = sorted(client.run(os.getpid).values())[0]
    killed = []

    def kill_one_worker_after_the_first_image():
        if not killed:
            os.kill(pid, signal.SIGKILL)  # the images it held or was reading are read again elsewhere
            killed.append(pid)

    got = segment_batch.shared_histogram(client, photos, None, on_done=kill_one_worker_after_the_first_image)
    client.wait_for_workers(2, timeout=60)
    assert killed and pid not in client.run(os.getpid).values()
    assert np.array_equal(got[0], want[0]) and np.array_equal(got[1], want[1]) and got[2] == want[2] == {}
