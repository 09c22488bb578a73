"""A seeded mutator of real image files, and the checks every mutant must pass; `make fuzz` runs it at length.

Seed files: crops of the photos bundled with scikit-learn written as PNG, JPEG (with an EXIF
orientation), GIF, TIFF, WebP and BMP. Case ``i`` of seed ``s`` draws from ``random.Random(f"{s}:{i}")``
one file and one mutation, so a case is reproduced from its two numbers alone:

- ``truncate-boundary``: cut at a chunk (PNG), marker segment (JPEG), block (GIF), IFD or tag (TIFF),
  RIFF chunk (WebP) or header (BMP) boundary, or one byte either side of it;
- ``truncate-random``: cut at a random offset; ``zero-size``: nothing at all;
- ``bit-flips``: 1 to 16 random bits flipped;
- ``size-lie``: the header's width or height (or both) replaced by 0, 1, a random or an extreme value,
  for PNG with its CRC recomputed so the lie gets past the checksum;
- ``depth-lie``: the header's bit depth, colour type or bits per pixel replaced;
- ``length-lie``: a chunk or segment length pointing past the end of the file;
- ``exif-orientation``: a JPEG whose EXIF orientation is 0, 9, 255, 65535, or whose EXIF block is cut.

`check_application` loads a mutant with `segment.image.load` and fits k-means to it; `check_command`
runs the installed ``emseg segment`` on it. Either may succeed (many mutants are still valid images);
a failure must be one `ImageError` (one ``emseg: error:`` line naming the file, exit status 1, no
output left), never another exception, a traceback or a crash.

Run ``python tests/fuzz.py --cases 5000`` for the summary the README quotes.
"""

import argparse
import collections
import io
import random
import struct
import subprocess
import sys
import time
import zlib
from pathlib import Path

from PIL import Image
from sklearn.datasets import load_sample_image

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run as a script from the repository root
from segment import image, models  # noqa: E402

FORMATS = ("png", "jpg", "gif", "tif", "webp", "bmp")
MUTATIONS = ("truncate-boundary", "truncate-random", "zero-size", "bit-flips", "size-lie", "depth-lie",
             "length-lie", "exif-orientation")
EXTREMES = (0, 1, 2, 255, 256, 65535, 65536, 1 << 24, (1 << 31) - 1, (1 << 32) - 1)


def seed_files():
    """format -> the bytes of a real photo crop in that format (48 x 64 pixels: fast to decode and fit)."""
    files = {}
    for fmt in FORMATS:
        photo = load_sample_image("china.jpg" if fmt in ("png", "gif", "webp") else "flower.jpg")
        picture = Image.fromarray(photo[100:148, 200:264])
        buffer = io.BytesIO()
        if fmt == "jpg":
            exif = Image.Exif()
            exif[0x0112] = 6  # orientation: rotate 90 degrees
            picture.save(buffer, "JPEG", exif=exif.tobytes())
        elif fmt == "gif":
            picture.quantize(64).save(buffer, "GIF")
        else:
            picture.save(buffer, Image.registered_extensions()[f".{fmt}"])
        files[fmt] = buffer.getvalue()
    return files


# ------------------------------------------------------------------ structure of each format

def boundaries(fmt, data):
    """Offsets where the format's structure has a seam: chunk, segment, block or header ends."""
    if fmt == "png":
        return [offset for offset, _, _ in _png_chunks(data)] + [len(data)]
    if fmt == "jpg":
        return [i for i in range(len(data) - 1) if data[i] == 0xFF and data[i + 1] not in (0x00, 0xFF)]
    if fmt == "gif":
        return [6, 13, 13 + 3 * 2 ** ((data[10] & 7) + 1)] + [i for i, b in enumerate(data) if b in (0x21, 0x2C, 0x3B)]
    if fmt == "tif":
        ifd = struct.unpack_from("<I", data, 4)[0]
        n_tags = struct.unpack_from("<H", data, ifd)[0]
        return [4, 8, ifd, ifd + 2] + [ifd + 2 + 12 * t for t in range(n_tags + 1)]
    if fmt == "webp":
        return [4, 8, 12, 16, 20, 30]
    return [2, 6, 10, 14, 18, 22, 26, 28, 30, 34, 54]  # bmp: file header, then the info header's fields


def _png_chunks(data):
    """(offset, length, type) of each chunk of a PNG."""
    chunks, offset = [], 8
    while offset + 8 <= len(data):
        length, kind = struct.unpack_from(">I4s", data, offset)
        chunks.append((offset, length, kind))
        offset += 12 + length
    return chunks


def _png_set(data, at, fmt, value):
    """Write ``value`` into the IHDR chunk at byte ``at`` of its data and recompute the chunk's CRC."""
    data = bytearray(data)
    struct.pack_into(fmt, data, 16 + at, value)
    struct.pack_into(">I", data, 29, zlib.crc32(bytes(data[12:29])))
    return bytes(data)


def _jpeg_sof(data):
    """Offset of the start-of-frame segment (its marker) of a JPEG."""
    return next(i for i in range(len(data) - 1) if data[i] == 0xFF and data[i + 1] in (0xC0, 0xC1, 0xC2))


def _tif_tag(data, tag):
    """Offset of the value of ``tag`` in the first IFD of a little-endian TIFF, or None."""
    ifd = struct.unpack_from("<I", data, 4)[0]
    for t in range(struct.unpack_from("<H", data, ifd)[0]):
        entry = ifd + 2 + 12 * t
        if struct.unpack_from("<H", data, entry)[0] == tag:
            return entry + 8
    return None


def lie_about_size(fmt, data, rng):
    """The header's width and/or height replaced."""
    width, height = (rng.choice(EXTREMES + (rng.randrange(1 << 16),)) if rng.random() < 0.8 else None
                     for _ in range(2))
    data = bytearray(data)
    for value, field in ((width, 0), (height, 1)):
        if value is None:
            continue
        if fmt == "png":
            data = bytearray(_png_set(data, 4 * field, ">I", value))
        elif fmt == "jpg":
            struct.pack_into(">H", data, _jpeg_sof(data) + 7 - 2 * field, value & 0xFFFF)
        elif fmt == "gif":
            struct.pack_into("<H", data, 6 + 2 * field, value & 0xFFFF)
        elif fmt == "tif":
            at = _tif_tag(data, 256 + field)
            if at is not None:
                struct.pack_into("<H", data, at, value & 0xFFFF)
        elif fmt == "webp":
            struct.pack_into("<H", data, 26 + 2 * field, value & 0x3FFF)
        else:
            struct.pack_into("<i", data, 18 + 4 * field, value if value < 1 << 31 else -1)
    return bytes(data)


def lie_about_depth(fmt, data, rng):
    """The header's bit depth, colour type, components or bits per pixel replaced."""
    value = rng.choice((0, 1, 2, 3, 4, 5, 7, 8, 9, 12, 15, 16, 24, 31, 32, 64, 255))
    if fmt == "png":
        return _png_set(data, 8 + rng.randrange(2), ">B", value)  # bit depth or colour type
    data = bytearray(data)
    if fmt == "jpg":
        data[_jpeg_sof(data) + rng.choice((4, 9))] = value  # sample precision or number of components
    elif fmt == "gif":
        data[10] = rng.randrange(256)  # packed field: global colour table flag and size
    elif fmt == "tif":
        at = _tif_tag(data, rng.choice((258, 262, 277)))  # bits per sample, photometric, samples per pixel
        if at is not None:
            struct.pack_into("<H", data, at, value)
    elif fmt == "webp":
        data[rng.randrange(20, 30)] = value
    else:
        struct.pack_into("<H", data, 28, value)  # bits per pixel
    return bytes(data)


def lie_about_length(fmt, data, rng):
    """A chunk's or segment's length field pointing past the end of the file."""
    data = bytearray(data)
    past = len(data) + rng.choice((1, 100, 1 << 20, (1 << 31) - 1))
    if fmt == "png":
        offset, _, _ = rng.choice(_png_chunks(data))
        struct.pack_into(">I", data, offset, min(past, (1 << 32) - 1))
    elif fmt == "jpg":
        offset = rng.choice([b for b in boundaries(fmt, data) if data[b + 1] not in range(0xD0, 0xDA)])
        struct.pack_into(">H", data, offset + 2, min(past, 0xFFFF))
    elif fmt == "gif":
        offset = rng.randrange(13, len(data))
        data[offset] = 255  # a sub-block length, or whatever byte is there
    elif fmt == "tif":
        ifd = struct.unpack_from("<I", data, 4)[0]
        struct.pack_into("<I", data, rng.choice((4, ifd + 2 + 4)), min(past, (1 << 32) - 1))  # IFD offset or a count
    elif fmt == "webp":
        struct.pack_into("<I", data, rng.choice((4, 16)), min(past, (1 << 32) - 1))  # RIFF or VP8 chunk size
    else:
        struct.pack_into("<I", data, rng.choice((2, 10, 34)), min(past, (1 << 32) - 1))  # file size, data offset
    return bytes(data)


def garble_orientation(data, rng):
    """A JPEG whose EXIF orientation is out of range, or whose EXIF block is cut or flipped."""
    start = data.index(b"Exif\x00\x00")
    tiff = start + 6
    at = data.index(b"\x12\x01", tiff) if data[tiff:tiff + 2] == b"II" else data.index(b"\x01\x12", tiff)
    data = bytearray(data)
    choice = rng.randrange(3)
    if choice == 0:
        struct.pack_into("<H" if data[tiff:tiff + 2] == b"II" else ">H", data, at + 8, rng.choice((0, 9, 255, 65535)))
    elif choice == 1:  # the orientation entry's type or count garbled
        data[at + 2 + rng.randrange(6)] = rng.randrange(256)
    else:  # the EXIF block cut short: its segment length lies
        struct.pack_into(">H", data, start - 2, rng.choice((2, 8, 12)))
    return bytes(data)


def mutate(files, seed, case):
    """(format, mutation name, bytes) of case ``case`` of seed ``seed``."""
    rng = random.Random(f"{seed}:{case}")
    mutation = MUTATIONS[case % len(MUTATIONS)]  # every mutation equally often, formats drawn
    fmt = "jpg" if mutation == "exif-orientation" else rng.choice(FORMATS)
    data = files[fmt]
    if mutation == "truncate-boundary":
        data = data[:max(0, rng.choice(boundaries(fmt, data)) + rng.choice((-1, 0, 0, 1)))]
    elif mutation == "truncate-random":
        data = data[:rng.randrange(len(data))]
    elif mutation == "zero-size":
        data = rng.choice((b"", data[:rng.randrange(1, 9)]))
    elif mutation == "bit-flips":
        flipped = bytearray(data)
        for _ in range(rng.randint(1, 16)):
            bit = rng.randrange(8 * len(flipped))
            flipped[bit // 8] ^= 1 << (bit % 8)
        data = bytes(flipped)
    elif mutation == "size-lie":
        data = lie_about_size(fmt, data, rng)
    elif mutation == "depth-lie":
        data = lie_about_depth(fmt, data, rng)
    elif mutation == "length-lie":
        data = lie_about_length(fmt, data, rng)
    else:
        data = garble_orientation(data, rng)
    return fmt, mutation, data


# ------------------------------------------------------------------ the checks

def check_application(path):
    """'ok' or 'refused' (an ImageError naming the file); any other exception propagates: a finding."""
    try:
        picture = image.load(path)
    except image.ImageError as error:
        assert str(path) in str(error), f"the message does not name the file: {error}"
        return "refused"
    model = models.make_model("kmeans", 2, random_state=0, max_iter=5)
    image.predict_labels(model, picture) if len(picture.distinct[0]) == 0 else image.fit_labels(model, picture)
    return "ok"


def check_command(path, output, emseg=Path(sys.executable).with_name("emseg")):
    """Run ``emseg segment PATH -o OUTPUT``: 'ok' (exit 0, the output written) or 'refused' (exit 1, one line
    naming the file, no output left); anything else raises AssertionError."""
    result = subprocess.run([str(emseg), "segment", str(path), "-k", "2", "--max-iter", "5", "-o", str(output)],
                            capture_output=True, text=True, timeout=300)
    assert "Traceback" not in result.stderr, result.stderr
    if result.returncode == 0:
        assert output.exists() and Image.open(output).size, result.stderr
        output.unlink()
        return "ok"
    lines = result.stderr.splitlines()
    assert result.returncode == 1, (result.returncode, result.stderr)
    assert len(lines) == 1 and lines[0].startswith("emseg: error: ") and str(path) in lines[0], result.stderr
    assert not output.exists() and not list(output.parent.glob(f".{output.name}.*")), "output left behind"
    return "refused"


def run(seed, n_cases, folder, every_command=0, report=print):
    """Run cases 0 .. n_cases - 1; every ``every_command``-th also through the command. Returns the summary."""
    files = seed_files()
    outcomes = collections.Counter()
    findings = []
    for case in range(n_cases):
        fmt, mutation, data = mutate(files, seed, case)
        path = Path(folder) / f"case{case}.{fmt}"
        path.write_bytes(data)
        try:
            outcomes[fmt, mutation, "application", check_application(path)] += 1
            if every_command and case % every_command == 0:
                outcomes[fmt, mutation, "command", check_command(path, Path(folder) / "out.png")] += 1
        except Exception as error:  # a finding: recorded with its seed and case, then the run goes on
            findings.append((seed, case, fmt, mutation, f"{type(error).__name__}: {error}"))
            report(f"FINDING seed={seed} case={case} {fmt} {mutation}: {type(error).__name__}: {error}")
        path.unlink()
    return outcomes, findings


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--cases", type=int, default=5000)
    parser.add_argument("--every-command", type=int, default=49,
                        help="run every Nth case through emseg too (49: prime to the 8 mutations, so each gets its turn)")
    parser.add_argument("--folder", default=None, help="where the mutants are written (default: a temporary folder)")
    args = parser.parse_args()
    import tempfile

    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as folder:
        outcomes, findings = run(args.seed, args.cases, args.folder or folder, args.every_command)
    print(f"seed {args.seed}, {args.cases} cases, {time.perf_counter() - start:.0f} s")
    print(f"{'format':<6} {'mutation':<18} {'through':<12} {'ok':>6} {'refused':>8}")
    keys = sorted({key[:3] for key in outcomes})
    for fmt, mutation, through in keys:
        print(f"{fmt:<6} {mutation:<18} {through:<12} {outcomes[fmt, mutation, through, 'ok']:>6} "
              f"{outcomes[fmt, mutation, through, 'refused']:>8}")
    for through in ("application", "command"):
        ok = sum(n for key, n in outcomes.items() if key[2] == through and key[3] == "ok")
        refused = sum(n for key, n in outcomes.items() if key[2] == through and key[3] == "refused")
        print(f"{through}: {ok + refused} cases, {ok} decoded and segmented, {refused} refused with one line")
    print(f"findings: {len(findings)}")
    for finding in findings:
        print("  seed={} case={} {} {}: {}".format(*finding))
    return 1 if findings else 0


if __name__ == "__main__":
    raise SystemExit(main())
