"""The emseg command line, called in-process through cli.main; and the installed command in its own process."""

import gc
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
import sklearn.datasets

import cli
from conftest import read_image as pixels, run_cli as run

CHINA = Path(sklearn.datasets.__file__).parent / "images" / "china.jpg"


@pytest.fixture(autouse=True)
def in_tmp(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # default outputs land in the current folder


def test_segment_writes_the_default_name_here(capsys, rgb_image_path, tmp_path):
    code, out, err = run(capsys, "segment", rgb_image_path, "-k", 4)
    assert code == 0 and err.startswith("emseg: gmm, k=4, rgb: PSNR ") and err.count("\n") == 1  # the quality only
    assert out == "small_gmm_k4.png\n"
    assert run(capsys, "segment", rgb_image_path, "-k", 4, "--quiet")[2] == ""
    painted = pixels(tmp_path / "small_gmm_k4.png")
    assert painted.shape == (24, 32, 3) and len(np.unique(painted.reshape(-1, 3), axis=0)) == 4


def test_segment_with_kmeans_labels_and_distinct_palette(capsys, rgb_image_path, tmp_path):
    code, out, _ = run(capsys, "segment", rgb_image_path, "-k", 4, "--method", "kmeans", "--palette", "distinct",
                       "-o", tmp_path / "seg.jpg", "--labels", tmp_path / "labels.npy")
    assert code == 0 and out.split() == [str(tmp_path / "seg.jpg"), str(tmp_path / "labels.npy")]
    labels = np.load(tmp_path / "labels.npy")
    assert labels.shape == (24, 32) and set(np.unique(labels)) == {0, 1, 2, 3}
    # each flat quadrant is one cluster
    assert len({labels[0, 0], labels[0, -1], labels[-1, 0], labels[-1, -1]}) == 4


def test_segment_a_real_photo_with_a_label_png(capsys, tmp_path):
    code, out, _ = run(capsys, "segment", CHINA, "-o", "china.png", "--labels", "labels.png")
    assert code == 0
    assert pixels(tmp_path / "china.png").shape == (427, 640, 3)
    assert pixels(tmp_path / "labels.png").max() <= 9


@pytest.mark.parametrize("order", ["grouped", "shuffled", "per-pixel"])
def test_sample_orders(capsys, rgb_image_path, tmp_path, order):
    code, out, _ = run(capsys, "sample", rgb_image_path, "-k", 4, "--order", order)
    assert code == 0 and out == f"small_sample_{order}_k4.png\n"
    assert pixels(tmp_path / out.strip()).shape == (24, 32, 3)


def test_demo_writes_the_notebooks_files_and_a_table(capsys, rgb_image_path, tmp_path):
    code, out, _ = run(capsys, "demo", rgb_image_path, "-k", 3, "-o", tmp_path)
    assert code == 0
    for name in ("k_GMM_k=3.png", "kmeans_k=3.png", "GEN_GMM_k=3.png", "summary_k=3.png"):
        assert (tmp_path / name).is_file() and str(tmp_path / name) in out
    assert "gmm" in out and "kmeans" in out and "log-likelihood" in out and "inertia" in out
    # the sheet stands alone: a caption above each of the four 32x24 panels; below them, k=3 swatches of
    # 24 pixels, one per row as only one fits across a panel
    sheet = pixels(tmp_path / "summary_k=3.png")
    strip = sheet[: sheet.shape[0] - (24 + 2 * 8 + 3 * 24)]
    in_panel = (sheet[len(strip) + 12] < 250).any(axis=1)  # a row through the panels: white only between them
    lefts = list(np.flatnonzero(in_panel[1:] & ~in_panel[:-1]) + 1) + [sheet.shape[1]]
    assert len(lefts) == 5 and len(strip) > 8 + 10
    assert all((strip[:, lefts[i]:lefts[i + 1]].min(axis=2) < 128).sum() > 10 for i in range(4))


def test_compare_json_reports_both_libraries(capsys, rgb_image_path):
    code, out, _ = run(capsys, "compare", rgb_image_path, "-k", 4, "--json")
    report = json.loads(out)
    assert code == 0 and [row["method"] for row in report["results"]] == ["gmm", "kmeans"]
    for row in report["results"]:
        assert row["adjusted_rand_index"] == pytest.approx(1.0)  # four flat quadrants: no ambiguity
        assert row["emseg"]["seconds"] > 0 and row["sklearn"]["seconds"] > 0


def test_compare_table(capsys, rgb_image_path):
    code, out, _ = run(capsys, "compare", rgb_image_path, "-k", 4)
    assert code == 0 and "speedup" in out and out.count("sklearn") == 2


def test_compare_warms_up_on_a_thumbnail_with_fewer_colours_than_k(capsys, tmp_path):
    """The untimed warm-up fits a 32-pixel thumbnail, which may have fewer colours than the image's k."""
    picture = np.zeros((64, 64, 3), dtype=np.uint8)
    picture[:, 32:] = (250, 250, 250)
    picture[4, 4] = (255, 0, 0)  # one pixel: gone from the thumbnail
    Image.fromarray(picture).save("rare.png")
    code, out, err = run(capsys, "compare", "rare.png", "-k", 3, "--json")
    assert code == 0 and err == ""
    assert [row["k"] for row in json.loads(out)["results"]] == [3, 3]


def test_same_seed_gives_byte_identical_files(capsys, rgb_image_path, tmp_path):
    for name in ("a.png", "b.png"):
        assert run(capsys, "segment", rgb_image_path, "-k", 4, "-o", name)[0] == 0
        assert run(capsys, "sample", rgb_image_path, "-k", 4, "-o", "s" + name, "--order", "shuffled")[0] == 0
    assert (tmp_path / "a.png").read_bytes() == (tmp_path / "b.png").read_bytes()
    assert (tmp_path / "sa.png").read_bytes() == (tmp_path / "sb.png").read_bytes()


def test_k_above_the_distinct_colours_warns_and_works(capsys, tmp_path):
    Image.fromarray(np.repeat(np.array([[[0, 0, 0], [255, 255, 255]]], np.uint8), 5, axis=0)).save("two.png")
    code, out, err = run(capsys, "segment", "two.png", "-k", 5)
    assert code == 0 and "only 2 distinct colours; using k=2" in err


def test_transparent_pixels_stay_transparent(capsys, rgb_image_path, tmp_path):
    rgba = np.dstack([pixels(rgb_image_path), np.full((24, 32), 255, np.uint8)])
    rgba[:4, :, 3] = 0
    Image.fromarray(rgba, "RGBA").save("clear.png")
    assert run(capsys, "segment", "clear.png", "-k", 3, "-o", "out.png")[0] == 0
    written = pixels(tmp_path / "out.png")
    assert written.shape == (24, 32, 4) and (written[:4, :, 3] == 0).all() and (written[4:, :, 3] == 255).all()


# ------------------------------------------------------------------ bad input

@pytest.mark.parametrize(
    "argv, match",
    [
        (["segment", "missing.png"], "missing.png: no such file"),
        (["segment", "."], "is a directory"),
        (["segment", "empty.png"], "is empty"),
        (["segment", "text.jpg"], "not an image Pillow can read"),
        (["segment", "cut.png"], "truncated or corrupt"),
        (["segment", "{image}", "-o", "nowhere/out.png"], "does not exist"),
        (["segment", "{image}", "-o", "out.xyz"], "unknown output extension"),
        (["segment", "{image}", "--max-pixels", "100"], "--max-pixels 768"),
    ],
    ids=["missing", "directory", "empty", "text-as-jpg", "truncated", "no-folder", "extension", "bomb"],
)
def test_bad_input_is_one_clear_line(capsys, rgb_image_path, tmp_path, argv, match):
    Path("empty.png").write_bytes(b"")
    Path("text.jpg").write_text("hello")
    Path("cut.png").write_bytes(rgb_image_path.read_bytes()[:300])
    before = sorted(p.name for p in tmp_path.iterdir())
    code, out, err = run(capsys, *[a.format(image=rgb_image_path) for a in argv])
    assert code == 1 and out == ""
    assert err.startswith("emseg: error: ") and match in err and err.count("\n") == 1 and "Traceback" not in err
    assert sorted(p.name for p in tmp_path.iterdir()) == before  # nothing written


@pytest.mark.parametrize("k", ["0", "-3", "ten"])
def test_bad_k_is_a_usage_error(capsys, rgb_image_path, k):
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["segment", str(rgb_image_path), "-k", k])
    assert exit_info.value.code == 2
    assert "argument -k" in capsys.readouterr().err


def test_an_unwritable_folder_is_refused(capsys, rgb_image_path, tmp_path, monkeypatch):
    monkeypatch.setattr("os.access", lambda path, mode: False)
    code, _, err = run(capsys, "segment", rgb_image_path, "-o", tmp_path / "out.png")
    assert code == 1 and "cannot be written" in err


def test_the_input_is_never_overwritten(capsys, rgb_image_path):
    before = rgb_image_path.read_bytes()
    code, _, err = run(capsys, "segment", rgb_image_path, "-o", rgb_image_path)
    assert code == 1 and "never overwrites its input" in err
    assert rgb_image_path.read_bytes() == before


def test_a_failed_write_keeps_the_existing_output(capsys, rgb_image_path, tmp_path, monkeypatch):
    Path("out.png").write_bytes(b"previous result")

    def broken_save(self, file, *args, **kwargs):
        file.write(b"partial")
        raise OSError("No space left on device")

    monkeypatch.setattr(Image.Image, "save", broken_save)
    code, _, err = run(capsys, "segment", rgb_image_path, "-o", "out.png")
    assert code == 1 and "No space left on device" in err
    assert Path("out.png").read_bytes() == b"previous result"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.png", "small.png"]  # no temporary file left


def test_every_subcommand_has_help(capsys):
    for command in ("segment", "sample", "demo", "report", "compare"):
        with pytest.raises(SystemExit) as exit_info:
            cli.main([command, "--help"])
        assert exit_info.value.code == 0 and "-k K" in capsys.readouterr().out


@pytest.mark.parametrize("method", ["gmm", "kmeans"])
def test_a_single_colour_image_segments(capsys, tmp_path, method):
    Image.new("RGB", (6, 4), (10, 200, 30)).save("flat.png")
    code, out, err = run(capsys, "segment", "flat.png", "--method", method, "-o", "out.png")
    assert code == 0 and "only 1 distinct colour; using k=1" in err
    assert (pixels(tmp_path / "out.png") == (10, 200, 30)).all()


def test_two_outputs_may_not_share_a_file(capsys, rgb_image_path):
    code, _, err = run(capsys, "segment", rgb_image_path, "-o", "same.png", "--plot-convergence", "same.png")
    assert code == 1 and "two outputs name the same file" in err


# ---------------------------------------------------------------- the installed command, in its own process

def test_installed_command_segments_without_importing_scikit_learn(rgb_image_path, tmp_path):
    """`emseg` (the console script, `cli.run`) works end to end, also for a full covariance; and, run as a module with
    ``-X importtime``, a (diagonal) segment never imports scikit-learn (0.6-1.8 s to import), scipy's
    stats, linalg or special, nor yaml."""
    command = Path(sys.executable).with_name("emseg")
    assert command.exists(), f"the emseg console script is missing next to {sys.executable}: pip install -e ."
    out = tmp_path / "out.png"
    # timeouts: generous, for a cold numba cache (about 40 s to compile every kernel here, more on a
    # slow or busy CI machine); they only turn a hung child into a failure instead of a stuck run
    completed = subprocess.run([str(command), "segment", str(rgb_image_path), "-k", "4", "--covariance", "full",
                                "-o", str(out)], capture_output=True, text=True, check=False, timeout=300)
    assert completed.returncode == 0, completed.stderr
    assert completed.stdout == f"{out}\n" and pixels(out).shape == (24, 32, 3)

    completed = subprocess.run([sys.executable, "-X", "importtime", "-m", "cli", "segment", str(rgb_image_path),
                                "-k", "4", "-o", str(out)], capture_output=True, text=True, check=False,
                               cwd=Path(cli.__file__).parent, timeout=300)
    assert completed.returncode == 0, completed.stderr
    imported = [line.rsplit("|", 1)[-1].strip() for line in completed.stderr.splitlines() if "|" in line]
    assert "numba" in imported  # the log is read right
    assert not [name for name in imported if name.split(".")[0] in ("sklearn", "yaml")
                or name.startswith(("scipy.stats", "scipy.linalg", "scipy.special"))]


COUNT_COMPILES = """
import sys
import numba.core.dispatcher as dispatcher
compiled = []
compile_core = dispatcher._FunctionCompiler._compile_core
def counting(self, args, return_type):
    compiled.append(self.py_func.__module__ + "." + self.py_func.__qualname__)
    return compile_core(self, args, return_type)
dispatcher._FunctionCompiler._compile_core = counting
import cli
code = cli.main(sys.argv[1:])
print("compiled:", " ".join(compiled), file=sys.stderr)
sys.exit(code)
"""


@pytest.mark.parametrize("argv", [["-k", "4"], ["-k", "3", "--covariance", "full", "--smooth", "0.5"],
                                  ["-k", "auto", "--k-max", "3", "--covariance", "auto"]],
                         ids=["diag", "full-smoothed", "auto"])
def test_a_second_run_compiles_nothing(tmp_path, argv):
    """Every kernel the command calls comes from numba's cache after a first run. A jitted function
    called from Python without a cache compiles in every process instead (count_chunks did: 0.23 s of
    each command, and the compiler's own start-up with it). A real photo: a tiny image takes other paths."""
    run = lambda: subprocess.run([sys.executable, "-c", COUNT_COMPILES, "segment", CHINA, *argv,
                                  "-o", str(tmp_path / "out.png")], capture_output=True, text=True, check=False,
                                 cwd=Path(cli.__file__).parent, timeout=300)
    first = run()  # may compile and save what a cold cache lacks
    assert first.returncode == 0, first.stderr
    second = run()
    assert second.returncode == 0, second.stderr
    assert second.stderr.splitlines()[-1].strip() == "compiled:", second.stderr


def test_command_entry_point_returns_main_status_and_freezes_the_collector(monkeypatch):
    """`cli.run` (the console script) hands back main's exit status and leaves the objects of
    the ending process to the permanent generation, so shutdown skips collecting them."""
    monkeypatch.setattr(cli, "main", lambda: 3)
    try:
        assert cli.run() == 3 and gc.get_freeze_count() > 0
    finally:
        gc.unfreeze()  # this test process lives on


def test_deferred_module_is_imported_on_first_use():
    """After `import cli`, scipy.stats is a stand-in that imports the real module when used."""
    code = """
import sys, cli
stand_in = sys.modules["scipy.stats"]
assert type(stand_in).__name__ == "Deferred", type(stand_in)
from scipy.stats import norm
assert norm.cdf(0.0) == 0.5
import scipy.stats
assert type(sys.modules["scipy.stats"]).__name__ == "module" and scipy.stats.norm is norm
assert stand_in.norm is norm  # a reference kept to the stand-in still works
"""
    # imports only, no fit: a minute at most even on a slow machine; 300 s as for the other children
    subprocess.run([sys.executable, "-c", code], check=True, cwd=Path(cli.__file__).parent, timeout=300)


def criterion_rows(text):
    """The rows of a printed criterion table: (covariance type, k, BIC, marked best)."""
    return [(cells[0], int(cells[1]), float(cells[3]), line.endswith("<- best"))
            for line in text.splitlines() if len(cells := line.split()) >= 4 and cells[0] in
            ("full", "tied", "diag", "spherical")]


@pytest.mark.parametrize("command", ["segment", "sample", "demo", "compare"])
def test_auto_chooses_k_and_the_covariance_type_on_every_fitting_command(capsys, rgb_image_path, tmp_path, command):
    """-k auto --covariance auto: the table of every type and k = 2..5, the lowest BIC marked, and the command
    then works with that model. The image is four flat colours plus noise, so the right k is 4."""
    extra = {"segment": ["--json"], "sample": [], "demo": ["-o", tmp_path], "compare": []}[command]
    code, out, err = run(capsys, command, rgb_image_path, "-k", "auto", "--covariance", "auto", "--k-max", 5, *extra)
    assert code == 0
    rows = criterion_rows(err if command == "segment" else out)  # under --json the table goes to stderr
    assert [(t, k) for t, k, _, _ in rows] == [(t, k) for t in ("full", "tied", "diag", "spherical") for k in range(2, 6)]
    best = min(rows, key=lambda row: row[2])
    assert [row for row in rows if row[3]] == [best] and best[1] == 4
    if command == "segment":
        result = json.loads(out)  # stdout is the one JSON object
        assert result["k"] == 4 and len(np.unique(pixels(result["outputs"][0]).reshape(-1, 3), axis=0)) == 4
    elif command == "sample":  # the file is named by the k chosen
        assert out.splitlines()[-1].endswith("_sample_grouped_k4.png")
        assert pixels(out.splitlines()[-1]).shape == (24, 32, 3)
    elif command == "demo":  # k-means gets the mixture's k, and the files are named by it
        assert len(np.unique(pixels(tmp_path / "kmeans_k=4.png").reshape(-1, 3), axis=0)) == 4
    else:  # both libraries fit the chosen model
        assert f"emseg: BIC chose covariance {best[0]}, k=4\n" in err
        assert "small.png: 768 pixels, k=4," in out and out.count(" 1.0000 ") == 2  # ARI of both methods


@pytest.mark.parametrize("command", ["segment", "batch"])
def test_kmeans_refuses_k_auto_instead_of_quietly_using_a_k(capsys, rgb_image_path, tmp_path, command):
    """BIC needs a likelihood, which k-means lacks: one line saying what to do, and no file written."""
    extra = ["-o", tmp_path / "out"] if command == "batch" else ["-o", tmp_path / "out.png"]
    code, out, err = run(capsys, command, rgb_image_path, "--method", "kmeans", "-k", "auto", *extra)
    assert code == 1 and out == ""
    assert err.startswith("emseg: error: -k auto chooses k by BIC") and err.count("\n") == 1
    assert not (tmp_path / "out.png").exists() and not (tmp_path / "out").exists()


def test_k_auto_keeps_the_chosen_fits_iterations_for_the_views(capsys, rgb_image_path, tmp_path):
    """--trace after -k auto: the iterations of the fit BIC chose (it used to end in a traceback: no trace_)."""
    code, out, err = run(capsys, "segment", rgb_image_path, "-k", "auto", "--k-max", 5, "--trace", tmp_path / "t.csv",
                         "-o", tmp_path / "out.png")
    assert code == 0, err
    lines = (tmp_path / "t.csv").read_text().splitlines()
    assert len(lines) >= 2 and lines[0].startswith("iteration")


@pytest.mark.parametrize("argv, message", [
    (["segment", "--quality", "5", "--covariance", "full"], "--quality searches k with diagonal mixtures"),
    (["segment", "--smooth", "1", "--dither", "floyd-steinberg"], "--dither and --smooth both choose"),
    (["report", "--covariance", "tied"], "emseg report draws diagonal mixtures"),
])
def test_options_that_cannot_work_together_are_refused_before_any_fit(capsys, rgb_image_path, tmp_path, argv, message):
    command, *options = argv
    code, out, err = run(capsys, command, rgb_image_path, *options, "-o", tmp_path / "out.html")
    assert code == 1 and out == "" and err.startswith(f"emseg: error: {message}") and err.count("\n") == 1
    assert [p.name for p in tmp_path.iterdir()] == [rgb_image_path.name]  # nothing written beside the input
