"""Smoke test of ``benchmarks/run.py``: it runs on a tiny image and writes the tables it promises.

No timing thresholds, ever: this machine's speed says nothing about the code.
"""

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
TIMED_CASES = {"gmm-iter", "gmm-fit", "kmeans-iter", "kmeans-fit", "gmm-predict", "kmeans-predict", "gmm-sample",
               "segment"}


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory):
    """Run ``benchmarks/run.py --quick`` once; return (output folder, what it printed)."""
    out = tmp_path_factory.mktemp("bench")
    # one thread per library: this checks that the script works, not how fast, and one thread
    # keeps it quick and steady on a machine whose other core is busy with other tests
    single = {name: "1" for name in ("NUMBA_NUM_THREADS", "OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS")}
    completed = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "run.py"), "--quick", "--out", str(out)],
        capture_output=True, text=True, cwd=ROOT, timeout=600, env={**os.environ, **single},
    )
    assert completed.returncode == 0, completed.stderr
    return out, completed.stdout


def test_json_has_every_case_with_both_sides_and_quality(quick_run):
    out, _ = quick_run
    results = json.loads((out / "results.json").read_text())
    assert {row["case"] for row in results["cases"]} == TIMED_CASES
    for row in results["cases"]:
        for library in ("emseg", "sklearn"):
            seconds = row[library]["seconds"]
            assert set(seconds) == {"median", "min", "max", "n"}
            assert seconds["n"] >= 2
        # the arithmetic itself: test_summary_and_speedup_by_hand. A Lloyd iteration is timed as the difference of
        # two fits (cases.lloyd_iteration), which on this tiny image is below the noise and may be negative
        assert (row["speedup"] > 0 if row["case"] != "kmeans-iter" else np.isfinite(row["speedup"])) and "ari" in row
        if row["metric"] in ("lower bound", "inertia"):
            assert "value" in row["emseg"] and "value" in row["sklearn"]


def test_summary_and_speedup_by_hand(monkeypatch):
    """The tables' arithmetic on times whose median, extremes and ratio are worked out by hand.

    Every time is a multiple of 1/8, so each result is exact in float64 and compares with ==.
    """
    monkeypatch.syspath_prepend(str(ROOT / "benchmarks"))
    import cases
    import timing

    # four times: the median is the mean of the middle two, (0.5 + 0.75) / 2
    assert timing.summary([0.75, 0.25, 2.0, 0.5]) == dict(median=0.625, min=0.25, max=2.0, n=4)
    ours = cases.side("all pixels", 12, [0.5, 0.25, 0.75])  # median 0.5
    theirs = cases.side("all pixels", 12, [2.0, 1.5, 4.0])  # median 2.0
    row = cases.row("kmeans-iter", SimpleNamespace(name="tiny.png", n_pixels=12), "s / iteration", ours, theirs,
                    "inertia", ari=1)
    assert ours["seconds"] == dict(median=0.5, min=0.25, max=0.75, n=3)
    assert row["speedup"] == 4.0  # scikit-learn's median over ours: 2.0 / 0.5
    assert row["ari"] == 1.0 and row["image"] == "tiny.png" and row["n_pixels"] == 12


def test_json_records_machine_memory_startup_scaling(quick_run):
    out, _ = quick_run
    results = json.loads((out / "results.json").read_text())
    machine = results["machine"]
    assert machine["numba_threads"] >= 1 and machine["cpu"]
    assert {"numba", "scikit_learn", "numpy"} <= set(machine["versions"])
    assert any(pool["user_api"] == "blas" for pool in machine["threadpools"])
    assert results["warmup_seconds"] > 0
    assert {(r["model"], r["library"]) for r in results["memory"]} == {("gmm", "emseg"), ("gmm", "sklearn")}
    assert all(r["peak_mib"] >= 0 and r["baseline_mib"] > 0 for r in results["memory"])
    assert results["startup"]["warm"]["process_seconds"] > results["startup"]["warm"]["import_seconds"]
    command = results["startup"]["command"]
    assert command["seconds"]["n"] == 2 and 0 < command["seconds"]["min"] <= command["seconds"]["median"]
    scaling = results["scaling"]
    assert [r["n_pixels"] for r in scaling["pixels"] if r["model"] == "gmm"] == sorted(
        r["n_pixels"] for r in scaling["pixels"] if r["model"] == "gmm")
    assert [r["k"] for r in scaling["k"] if r["model"] == "kmeans"] == [2, 4]
    assert {"emseg, all pixels", "emseg, distinct colours", "scikit-learn, all pixels"} == set(
        scaling["pixels"][0]["series"])
    assert {target["reached"] for target in results["targets"]} <= {True, False, None}


def test_markdown_is_written_and_printed(quick_run):
    out, printed = quick_run
    text = (out / "RESULTS.md").read_text()
    for heading in ("## Machine", "## Targets", "## Timings", "## Peak memory", "## Start-up", "## Scaling",
                    "## How it was measured"):
        assert heading in text
    assert "| case | image | emseg on |" in text
    assert text.strip() in printed


def test_plot_is_a_png_when_matplotlib_is_installed(quick_run):
    out, _ = quick_run
    if importlib.util.find_spec("matplotlib") is None:
        pytest.skip("matplotlib (the optional bench extra) is not installed")
    assert (out / "scaling.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_plot_leaves_out_times_a_log_axis_cannot_show(tmp_path, monkeypatch):
    """Lloyd's time per iteration is a difference of two fits: on a tiny image it can come out negative."""
    pytest.importorskip("matplotlib")
    monkeypatch.syspath_prepend(str(ROOT / "benchmarks"))
    import scaling

    def record(model, n_pixels, k, median):
        seconds = dict(median=median, min=median - 1e-4, max=median + 1e-4, n=5)
        return dict(model=model, n_pixels=n_pixels, n_colors=n_pixels // 2, k=k,
                    series={label: dict(seconds=seconds, value=0.0) for label in scaling.LABELS.values()})

    pixels = [record(model, n, 4, median) for model in ("gmm", "kmeans")
              for n, median in ((5000, -2e-5), (20000, 3e-4))]
    ks = [record(model, 20000, k, median) for model in ("gmm", "kmeans") for k, median in ((2, 0.0), (4, 1e-5))]
    path = scaling.plot(pixels, ks, tmp_path / "scaling.png", "tiny")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
