"""The installed `emseg` command under real faults: SIGINT and SIGTERM during a fit or a write, a full disk,
a folder it may not write. Each runs in its own process; a faulty write is injected by a sitecustomize
module on PYTHONPATH that wraps Pillow's save, the one call that writes an image's bytes."""

import errno
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from sklearn.datasets import load_sample_image

from conftest import run_cli
from segment import image

EMSEG = Path(sys.executable).with_name("emseg")
PREVIOUS = b"an earlier result that must survive"

# Loaded by every Python started with PYTHONPATH=<its folder>; does nothing unless EMSEG_FAULT says what.
SHIM = '''
import errno, os, sys, time
FAULT = os.environ.get("EMSEG_FAULT", "")


def _marker(text):
    sys.stderr.write(text + "\\n")
    sys.stderr.flush()


if FAULT == "fit":  # say when the fit starts
    from segment import image
    _fit = image.fit_color_labels

    def fit_color_labels(*args, **kwargs):
        _marker("FAULT-SHIM: fitting")
        return _fit(*args, **kwargs)

    image.fit_color_labels = fit_color_labels
elif FAULT:  # "slow" or an errno: half the image's bytes go out, then a long pause or that error
    import io
    from PIL import Image
    _save = Image.Image.save

    def save(self, fp, *args, **kwargs):
        buffer = io.BytesIO()
        _save(self, buffer, *args, **kwargs)
        data = buffer.getvalue()
        fp.write(data[: len(data) // 2])
        fp.flush()
        if FAULT == "slow":
            _marker("FAULT-SHIM: writing")
            time.sleep(60)
        else:
            raise OSError(int(FAULT), os.strerror(int(FAULT)))
        fp.write(data[len(data) // 2:])

    Image.Image.save = save
'''


@pytest.fixture(scope="module")
def shim(tmp_path_factory):
    """The folder of the sitecustomize module, outside every test's own folder."""
    folder = tmp_path_factory.mktemp("shim")
    (folder / "sitecustomize.py").write_text(SHIM)
    return folder


def _start(shim, cwd, fault, *argv):
    env = dict(os.environ, PYTHONPATH=str(shim), EMSEG_FAULT=fault)
    return subprocess.Popen([str(EMSEG), *map(str, argv)], cwd=cwd, env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def _wait_for(process, marker):
    """Read stderr until the shim's marker: the process is now inside the fit or the write."""
    for line in process.stderr:
        if marker in line:
            return
    raise AssertionError(f"the process ended before {marker!r}: {process.wait()}")


def _errors(stderr):
    """The command's own lines on stderr (not the shim's markers)."""
    return [line for line in stderr.splitlines() if not line.startswith("FAULT-SHIM")]


@pytest.fixture
def photo(tmp_path):
    """china.jpg as a PNG: 427 x 640 pixels, tens of thousands of distinct colours, so a fit takes a while."""
    return image.save(tmp_path / "china.png", load_sample_image("china.jpg"))


# each signal in one phase: the same handler serves both, and each phase is entered once (each case ~2 s)
@pytest.mark.parametrize("phase, signum", [("fit", signal.SIGINT), ("slow", signal.SIGTERM)],
                         ids=["SIGINT-during-fit", "SIGTERM-during-write"])
def test_a_signal_stops_the_command_cleanly(tmp_path, shim, photo, rgb_image_path, signum, phase):
    output = tmp_path / "out.png"
    output.write_bytes(PREVIOUS)
    before = sorted(tmp_path.iterdir())
    if phase == "fit":  # far more iterations than run before the signal: tol 0 never converges
        process = _start(shim, tmp_path, phase, "segment", photo, "-k", 24, "--max-iter", 100_000, "--tol", 0,
                         "-o", output)
    else:
        process = _start(shim, tmp_path, phase, "segment", rgb_image_path, "-k", 3, "-o", output)
    _wait_for(process, "FAULT-SHIM")
    time.sleep(0.5)  # into the iterations (or the pause of the write), not just at their start
    process.send_signal(signum)
    stdout, stderr = process.communicate(timeout=60)
    assert process.returncode == 128 + signum
    lines = _errors(stderr)
    assert len(lines) == 1 and lines[0].startswith(f"emseg: error: stopped by {signum.name}"), stderr
    assert stdout == "" and "Traceback" not in stderr
    assert output.read_bytes() == PREVIOUS and sorted(tmp_path.iterdir()) == before  # no temporary file


def test_a_full_disk_is_one_line_and_loses_nothing(tmp_path, shim, rgb_image_path):
    """Half the image written, then ENOSPC, in a real process."""
    output = tmp_path / "out.png"
    output.write_bytes(PREVIOUS)
    before = sorted(tmp_path.iterdir())
    process = _start(shim, tmp_path, str(errno.ENOSPC), "segment", rgb_image_path, "-k", 3, "-o", output)
    stdout, stderr = process.communicate(timeout=120)
    assert process.returncode == 1 and stdout == "" and "Traceback" not in stderr
    assert _errors(stderr) == [f"emseg: error: {output}: no space left on the device while writing it; "
                               "an earlier out.png is untouched; free some space or write elsewhere."]
    assert output.read_bytes() == PREVIOUS and sorted(tmp_path.iterdir()) == before


@pytest.mark.parametrize("code, match", [(errno.EACCES, "permission denied"), (errno.EPERM, "permission denied"),
                                         (errno.EROFS, "read-only file system"), (errno.EIO, "Input/output error")],
                         ids=["EACCES", "EPERM", "EROFS", "EIO"])
def test_a_folder_that_refuses_the_file_is_one_line(capsys, tmp_path, monkeypatch, rgb_image_path, code, match):
    """The temporary file cannot be created (tests run as root here, so a chmod would not stop them):
    in-process, through the same `_write_atomically`."""
    monkeypatch.chdir(tmp_path)

    def refuse(*args, **kwargs):
        raise OSError(code, os.strerror(code))

    monkeypatch.setattr("tempfile.mkstemp", refuse)
    code_, out, err = run_cli(capsys, "segment", rgb_image_path, "-k", 3, "-o", "fresh.png")
    assert code_ == 1 and out == "" and err.count("\n") == 1
    assert err.startswith("emseg: error: fresh.png") and match in err and not Path("fresh.png").exists()
