"""`emseg batch --resume` after a SIGKILL, and two commands writing one output at once: complete files only."""

import os
import signal
import subprocess
import sys
import time

import pytest
from sklearn.datasets import load_sample_image

from conftest import run_cli
from segment import image

pytest.importorskip("distributed")
EMSEG = os.path.join(os.path.dirname(sys.executable), "emseg")


N_PHOTOS = 6


@pytest.fixture
def photos(tmp_path):
    """Six 90 x 120 crops of the two bundled photos, as PNG files in one folder."""
    folder = tmp_path / "in"
    folder.mkdir()
    for i in range(N_PHOTOS):
        photo = load_sample_image(("china.jpg", "flower.jpg")[i % 2])
        image.save(folder / f"crop{i}.png", photo[50 * i:50 * i + 90, 60 * i:60 * i + 120])
    return folder


@pytest.fixture(scope="module")
def scheduler():
    """A one-worker cluster in this process (threads, not processes: starts in a second) for the runs
    that are not killed; the killed one starts its own, as `emseg batch` does."""
    from distributed import LocalCluster

    with LocalCluster(n_workers=1, threads_per_worker=1, processes=False, dashboard_address=None) as cluster:
        yield cluster.scheduler_address


def _batch_argv(photos, out, *more):
    return ["batch", photos, "-o", out, "--per-image", "-k", 4, "--quiet", *more]


def test_a_killed_batch_resumed_gives_the_outputs_of_an_uninterrupted_one(capsys, tmp_path, photos, scheduler):
    assert run_cli(capsys, *_batch_argv(photos, tmp_path / "whole", "--scheduler", scheduler))[0] == 0
    whole = {p.name: p.read_bytes() for p in (tmp_path / "whole").glob("*.png")}
    assert len(whole) == N_PHOTOS

    out = tmp_path / "resumed"
    process = subprocess.Popen([EMSEG, *map(str, _batch_argv(photos, out, "--workers", 1))], start_new_session=True,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    while len(list(out.glob(".*.emseg.json"))) < 2 and process.poll() is None:  # two images are complete
        time.sleep(0.02)
    os.killpg(process.pid, signal.SIGKILL)  # the command and its Dask workers, at once
    process.wait()
    done = sorted(p.name for p in out.glob("*.png"))
    assert 2 <= len(done) < N_PHOTOS, done  # killed halfway
    (out / done[0]).write_bytes(b"damaged after it was written")  # its record no longer vouches for it

    code, _, err = run_cli(capsys, *_batch_argv(photos, out, "--resume", "--scheduler", scheduler))
    assert code == 0 and f"{len(done) - 1} of {N_PHOTOS} outputs are complete" in err
    assert {p.name: p.read_bytes() for p in out.glob("*.png")} == whole  # byte for byte
    assert not list(out.glob("*.part"))


def test_two_commands_writing_one_output_leave_one_complete_file(capsys, tmp_path, photos):
    """k = 2 and k = 3 written to the same file at once: it ends as exactly one of the two, never a mix."""
    source = photos / "crop0.png"
    for k in (2, 3):
        assert run_cli(capsys, "segment", source, "-k", k, "-o", tmp_path / f"k{k}.png")[0] == 0
    target = tmp_path / "same.png"
    runs = [subprocess.Popen([EMSEG, "segment", str(source), "-k", str(k), "-o", str(target)],
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE) for k in (2, 3)]
    assert [run.wait(timeout=300) for run in runs] == [0, 0]
    assert target.read_bytes() in ((tmp_path / "k2.png").read_bytes(), (tmp_path / "k3.png").read_bytes())
    assert not list(tmp_path.glob(".same.png.*"))
