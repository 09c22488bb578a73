"""Mutated real PNG, JPEG, GIF, TIFF, WebP and BMP files (tests/fuzz.py) through the application and the command.

Seeded and derandomized: case i of seed s is the same file on every run. `make fuzz` runs 5,000 cases.
"""

import pytest

import fuzz

# Found by `make fuzz` and fixed; kept so that they stay fixed: (seed, case, what happened then)
REGRESSIONS = [
    (0, 387, "TIFF with flipped bits: Pillow raised ValueError('invalid extents'), a traceback"),
]


@pytest.fixture(scope="module")
def files():
    return fuzz.seed_files()


def test_the_mutator_is_deterministic_and_covers_every_format_and_mutation(files):
    cases = [fuzz.mutate(files, 0, case) for case in range(300)]
    assert cases == [fuzz.mutate(files, 0, case) for case in range(300)]
    assert {fmt for fmt, _, _ in cases} == set(fuzz.FORMATS)
    assert {mutation for _, mutation, _ in cases} == set(fuzz.MUTATIONS)
    assert sum(data != files[fmt] for fmt, _, data in cases) >= 290  # almost every mutant differs from its seed


def test_three_hundred_mutants_through_the_application(tmp_path):
    """Each mutant is decoded and fitted, or refused with one ImageError naming it; nothing else."""
    outcomes, findings = fuzz.run(seed=1, n_cases=300, folder=tmp_path)
    assert findings == []
    refused = sum(n for key, n in outcomes.items() if key[3] == "refused")
    assert 0 < refused < 300  # both outcomes happen: the mutants are neither all fatal nor all harmless


@pytest.mark.parametrize("seed, case", [(seed, case) for seed, case, _ in REGRESSIONS])
def test_findings_stay_fixed(files, tmp_path, seed, case):
    fmt, _, data = fuzz.mutate(files, seed, case)
    path = tmp_path / f"case.{fmt}"
    path.write_bytes(data)
    assert fuzz.check_application(path) == "refused"


def test_a_tiff_pillow_logs_about_is_still_one_line(files, tmp_path):
    """Found by `make fuzz` (depth-lie): samples per pixel 255 made Pillow log an error line to stderr
    before raising, so the command printed two lines."""
    data = bytearray(files["tif"])
    data[fuzz._tif_tag(data, 277)] = 255  # samples per pixel
    path = tmp_path / "samples.tif"
    path.write_bytes(bytes(data))
    assert fuzz.check_command(path, tmp_path / "out.png") == "refused"


def test_mutants_through_the_installed_command(files, tmp_path):
    """Four mutations (each case its own process, ~1.5 s; `make fuzz` runs a hundred): exit 0 with the output,
    or exit 1 with one line naming the file and no output left."""
    # seed 2 case 0 (a TIFF cut short) found that Pillow's UserWarnings printed lines of their own: now notes
    for case in (0, 3, 4, 7):  # truncate-boundary, bit-flips, size-lie, exif-orientation
        fmt, _, data = fuzz.mutate(files, 2, case)
        path = tmp_path / f"case{case}.{fmt}"
        path.write_bytes(data)
        assert fuzz.check_command(path, tmp_path / "out.png") in ("ok", "refused")
