"""Conformance run over a third-party image corpus: does every file round-trip, or is it refused with a
typed error? Nothing may be lost silently.

    python perf/conformance.py DIR [--cli] [--json OUT] [--timeout S]

Where others edit the working tree while it runs, run it on a clean export of a commit instead:
``git archive HEAD | tar -x -C SNAP; ln -s ../cli SNAP/tricodec/cli; ln -s ../kernels SNAP/tricodec/kernels;
PYTHONPATH=SNAP python SNAP/perf/conformance.py DIR --cli``.

For every file under DIR that Pillow (or tricodec's reader) can open:

* API: ``tricodec.pixels.read_image`` (the reader the CLI uses) -> ``tricodec.encode`` -> ``tricodec.decode_any``;
* CLI (``--cli``): ``tricodec encode`` / ``tricodec decode`` on a copy in a temporary folder (one folder
  run over the files whose suffix the CLI takes, one single-file run for each other file), then the
  decoded file is compared with the source.

Each file is classified:

* ``ok``: round-tripped: identical pixels, mode, size and bit depth as an independent reading of the
  source (Pillow; pypng's raw samples for 16-bit PNG and tifffile's for TIFF deeper than Pillow reads
  it, so nothing Pillow or tricodec's reader drops hides); CLI also: the ICC profile, EXIF, XMP and
  (non-palette) transparency of the source are in the decoded file, unchanged (EXIF in a TIFF: every
  tag of every directory), and for PNG sources their text and the chunks of ``PNG_KEPT`` (gAMA, cHRM,
  sRGB, sBIT, pHYs, bKGD, tIME ...);
* ``refused``: a typed tricodec error (``TricodecError``) with its one-line message (grouped by message);
* ``LOST``: anything else: pixels, mode, depth, frames or metadata differ, an untyped exception, a crash
  or a hang. Each LOST entry has a class (what was lost) and a detail.

The API checks run in a worker process (a crash or hang of one file is recorded as LOST and the worker is
restarted). Prints a summary table; ``--json`` writes every file's result.
"""
from __future__ import annotations

import argparse
import collections
import json
import os
import re
import shutil
import struct
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent

# ---------------------------------------------------------------------------------------------------------
# Independent reading of a file: what a lossless round trip has to give back.


def _png_chunks(data: bytes) -> list[bytes]:
    out, pos = [], 8
    while pos + 8 <= len(data):
        n, = struct.unpack(">I", data[pos:pos + 4])
        out.append(data[pos + 4:pos + 8])
        pos += 12 + n
    return out


def _stated_depth(path: Path, im) -> int:
    """Bits per sample the file itself states, where Pillow may read fewer (0: not known / not deeper)."""
    fmt = im.format
    try:
        if fmt == "TIFF":
            bits = im.tag_v2.get(258)
            return int(max(np.atleast_1d(bits))) if bits is not None else 0
        if fmt in ("PPM", "PNM"):
            head = path.read_bytes()[:256]
            toks = []
            for line in head.split(b"\n"):
                toks += line.split(b"#")[0].split()
                if len(toks) >= 4:
                    break
            if toks and toks[0] in (b"P2", b"P3", b"P5", b"P6") and len(toks) >= 4:
                return 16 if int(toks[3]) > 255 else 8
        if fmt == "PSD":
            head = path.read_bytes()[:26]
            return struct.unpack(">H", head[22:24])[0] if len(head) >= 24 else 0
        if fmt == "SGI":
            head = path.read_bytes()[:4]
            return 16 if len(head) >= 4 and head[3] == 2 else 8
    except Exception:
        return 0
    return 0


def _mode_depth(mode: str) -> int:
    if mode == "1":
        return 1
    if mode.startswith("I;16") or mode in ("LA;16", "RGB;16", "RGBA;16"):
        return 16
    if mode in ("I", "F"):
        return 32
    return 8


def _frames(im) -> int:
    n = getattr(im, "n_frames", 1) or 1
    sizes = im.info.get("sizes")
    if im.format in ("ICO", "ICNS", "CUR") and sizes:
        n = max(n, len(sizes))
    return n


# PNG chunks a decoded PNG must carry unchanged (besides ICC, EXIF, XMP, transparency and text).
PNG_KEPT = (b"gAMA", b"cHRM", b"sRGB", b"sBIT", b"pHYs", b"bKGD", b"tIME", b"oFFs", b"sCAL", b"pCAL", b"sTER",
            b"cICP")


def _png_chunk_data(data: bytes) -> dict[bytes, bytes]:
    """{type: data} of the first chunk of each type in PNG_KEPT, and IHDR."""
    out, pos = {}, 8
    while pos + 8 <= len(data):
        n, typ = struct.unpack(">I4s", data[pos:pos + 8])
        if (typ in PNG_KEPT or typ == b"IHDR") and typ not in out:
            out[typ] = data[pos + 8:pos + 8 + n]
        pos += 12 + n
    return out


def _png_meta(im) -> dict[str, bytes]:
    """The kept chunks of a PNG file (a bKGD grey level of a 1-4-bit grey file is left out: Pillow reads
    those samples scaled to 8 bits, and the level is scaled with them) and its text chunks."""
    out = {}
    if isinstance(getattr(im, "filename", None), str) and im.filename:
        chunks = _png_chunk_data(Path(im.filename).read_bytes())
        ihdr = chunks.pop(b"IHDR", b"")
        low_grey = len(ihdr) >= 10 and ihdr[8] < 8 and ihdr[9] in (0, 4)
        out.update({"png:" + t.decode(): d for t, d in chunks.items() if not (t == b"bKGD" and low_grey)})
    if im.text:
        out["text"] = repr(sorted(im.text.items())).encode()
    return out


def _exif_dirs(exif) -> dict:
    """{directory: {tag: value}} of a Pillow Exif: the first directory (pointers left out), Exif, GPS, Interop."""
    out = {0: {k: v for k, v in exif.items() if k not in (0x8769, 0x8825)}}
    for tag in (0x8769, 0x8825):
        if tag in exif:
            out[tag] = {k: v for k, v in exif.get_ifd(tag).items() if k != 0xA005}
    if 0x8769 in exif and 0xA005 in exif.get_ifd(0x8769):
        out[0xA005] = dict(exif.get_ifd(0xA005))
    return out


def exif_lost_in_tiff(block: bytes, tiff) -> str | None:
    """A TIFF holds EXIF as its own directories: every tag of the EXIF block (every directory, the
    thumbnail's IFD1 included) must read back from the TIFF with its value. What is missing or differs."""
    from PIL import Image

    src = Image.Exif()
    src.load(block)
    want, got = _exif_dirs(src), _exif_dirs(tiff.getexif())
    if src.get_ifd(-1):
        return "the thumbnail directory (IFD1)"
    for ifd, tags in want.items():
        for tag, value in tags.items():
            if got.get(ifd, {}).get(tag, ...) != value:
                return f"tag {tag:#x} of directory {ifd:#x}"
    return None


def _meta(im) -> dict[str, bytes]:
    """ICC profile, EXIF and XMP of an opened image (after load: PNG text and eXIf may follow the pixels),
    normalised for comparison; for PNG also its other kept chunks and text."""
    out = {}
    info = im.info
    icc = info.get("icc_profile")
    if icc:
        out["icc"] = bytes(icc)
    exif = info.get("exif")
    if exif:
        exif = bytes(exif)
        out["exif"] = exif[6:] if exif.startswith(b"Exif\0\0") else exif
    xmp = info.get("xmp") or info.get("XML:com.adobe.xmp")
    if not xmp and im.format == "TIFF":
        xmp = im.tag_v2.get(700)
    if xmp:
        xmp = xmp.encode("utf-8") if isinstance(xmp, str) else bytes(xmp)
        out["xmp"] = xmp.strip(b"\0 \r\n\t")
    t = info.get("transparency")
    if t is not None and im.mode not in ("P", "PA"):  # palette transparency is compared through RGBA pixels
        out["transparency"] = repr(t).encode()
    if im.format == "PNG":
        out.update(_png_meta(im))
    return out


class Reading:
    """An independent reading of an image file at full depth."""

    def __init__(self, path: Path):
        from PIL import Image

        self.path = path
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            im = Image.open(path)
            self.format = im.format
            self.frames = _frames(im)
            self.meta = _meta(im)
            self.stated = _stated_depth(path, im)
            self.error = None
            self.array = None
            self.png16 = None
            data = path.read_bytes()[:1 << 16] if im.format == "PNG" else b""
            self.sbit = im.format == "PNG" and b"sBIT" in _png_chunks(path.read_bytes())
            if im.format == "PNG" and len(data) >= 26 and data[24] == 16:
                self.png16 = data[25]  # colour type
            try:
                im.load()
            except Exception as e:  # Pillow opened it but cannot decode it: tricodec must refuse it
                self.error = f"{type(e).__name__}: {e}"
                self.mode, self.size = im.mode, im.size
                return
            self.mode, self.size = im.mode, im.size
            self.image = im
            self.meta = _meta(im)
            self.depth = _mode_depth(im.mode)
            if self.png16 is not None:
                import png

                w, h, rows, info = png.Reader(bytes=path.read_bytes()).read()
                self.array = np.vstack([np.asarray(r, dtype=np.uint16) for r in rows]).reshape(h, w, -1)
                self.depth = 16
            elif im.format in ("TIFF", "SGI") and self.stated > self.depth:
                # None when that reader cannot read it either
                self.array = (_tiff_samples if im.format == "TIFF" else _sgi16_samples)(path)
                if self.array is not None:
                    self.depth = self.array.dtype.itemsize * 8

    def truncated_by_pillow(self) -> bool:
        """The file states more bits per sample than Pillow's image holds, and no other reader gave the
        samples: nothing can confirm a round trip."""
        return self.array is None and self.stated > self.depth


def _sgi16_samples(path: Path) -> np.ndarray | None:
    """A 16-bit SGI image at full depth, (H, W, C), read here (Pillow truncates it to 8 bits); None if it
    is not one or is malformed. Verbatim: planes of big-endian rows, bottom row first; RLE: per row and
    plane an offset and a length, runs of 16-bit items (count in the low 7 bits; high bit: literal run)."""
    try:
        d = path.read_bytes()
        magic, storage, bpc, dim, xs, ys, zs = struct.unpack(">hBBHHHH", d[:12])
        if magic != 474 or bpc != 2 or storage not in (0, 1):
            return None
        ys, zs = (ys if dim >= 2 else 1), (zs if dim >= 3 else 1)
        if storage == 0:
            a = np.frombuffer(d, ">u2", xs * ys * zs, 512).reshape(zs, ys, xs)
        else:
            n = ys * zs
            starts = np.frombuffer(d, ">u4", n, 512)
            lengths = np.frombuffer(d, ">u4", n, 512 + 4 * n)
            a = np.zeros((zs, ys, xs), np.uint16)
            for i in range(n):
                items = np.frombuffer(d[starts[i]:starts[i] + lengths[i]], ">u2")
                row, k = [], 0
                while k < len(items):
                    count = int(items[k]) & 0x7F
                    if count == 0:
                        break
                    if items[k] & 0x80:
                        row.extend(items[k + 1:k + 1 + count])
                        k += 1 + count
                    else:
                        row.extend([items[k + 1]] * count)
                        k += 2
                if len(row) != xs:
                    return None
                a[i // ys, i % ys] = row
        return np.ascontiguousarray(a[:, ::-1, :].transpose(1, 2, 0))
    except Exception:
        return None


def _tiff_samples(path: Path) -> np.ndarray | None:
    """First page of a TIFF at full depth, (H, W, C), by tifffile (not Pillow); None if it cannot."""
    try:
        import tifffile

        with tifffile.TiffFile(path) as tf:
            page = tf.pages[0]
            a, axes = page.asarray(), page.axes
        if axes.startswith("S") and a.ndim == 3:
            a = np.moveaxis(a, 0, -1)
        return a.reshape(a.shape[0], a.shape[1], -1)
    except Exception:
        return None


def samples(image) -> np.ndarray:
    """An image's samples as an (H, W, C) array at full depth (PIL image or tricodec's deep array)."""
    if isinstance(image, np.ndarray):
        return image.reshape(image.shape[0], image.shape[1], -1)
    a = np.asarray(image)
    return a.reshape(image.height, image.width, -1)


def _mode(image) -> str:
    if not isinstance(image, np.ndarray):
        return image.mode
    c = image.shape[2] if image.ndim == 3 else 1
    return {2: "LA;16", 3: "RGB;16", 4: "RGBA;16"}.get(c, f"{c}x{image.dtype.itemsize * 8}-bit samples")


def _mode_family(mode: str) -> str:
    """Modes that differ only in the byte order of their samples (I;16, I;16B, I;16L) hold the same image."""
    return "I;16" if mode.startswith("I;16") and mode[4:] in ("", "B", "L") else mode


def same_samples(a: np.ndarray, b: np.ndarray) -> bool:
    """Same shape, same kind and size of sample, same values (bit for bit, whatever the byte order)."""
    if a.shape != b.shape or a.dtype.kind != b.dtype.kind or a.dtype.itemsize != b.dtype.itemsize:
        return False
    le = a.dtype.newbyteorder("<") if a.dtype.itemsize > 1 else a.dtype
    return np.ascontiguousarray(a, le).tobytes() == np.ascontiguousarray(b, le).tobytes()


def compare_to_reading(ref: Reading, image, file_level: bool = False) -> tuple[str, str] | None:
    """(LOST class, detail) when ``image`` (a tricodec-read or decoded image) is not the file's content.
    ``file_level``: ``image`` was read back from a decoded file, whose format may hold the samples in
    another Pillow mode of the same values (a 16-bit PGM is mode I in Pillow, its PNG is I;16)."""
    if ref.frames > 1:
        return (f"frames: a {ref.format} of {ref.frames} frames/sizes coded as one image",
                f"{ref.frames} frames")
    if ref.truncated_by_pillow():
        return (f"depth: {ref.stated}-bit {ref.format} read at {ref.depth} bits",
                f"file states {ref.stated} bits per sample, image mode {ref.mode}")
    mode = _mode(image)
    size = (image.shape[1], image.shape[0]) if isinstance(image, np.ndarray) else image.size
    if size != ref.size:
        return "size differs", f"{size} != {ref.size}"
    if ref.array is not None:  # 16-bit PNG (pypng) or deep TIFF (tifffile): Pillow's image is not the truth
        got = samples(image)
        deep = ref.array.dtype.itemsize * 8
        if ref.png16 is not None:
            kind = {0: "grey", 2: "RGB", 4: "grey+alpha", 6: "RGBA"}.get(ref.png16, str(ref.png16)) + " PNG"
        else:
            kind = f"{ref.array.shape[2]}-sample {ref.format}"
        if _mode_depth(mode) < deep:
            return f"depth: {deep}-bit {kind} read at {_mode_depth(mode)} bits", f"got mode {mode}"
        if got.shape != ref.array.shape or not np.array_equal(got.astype(np.int64), ref.array.astype(np.int64)):
            why = " (file has sBIT)" if ref.sbit else ""
            return f"pixels: {deep}-bit {kind} samples altered{why}", f"mode {mode}, shape {got.shape}"
        return None
    if file_level and {_mode_family(mode), _mode_family(ref.mode)} <= {"I", "I;16"}:
        if np.array_equal(samples(image).astype(np.int64), samples(ref.image).astype(np.int64)):
            return None
    if _mode_family(mode) != _mode_family(ref.mode):
        return f"mode: {ref.mode} became {mode}", f"{ref.format} {ref.mode} -> {mode}"
    if not same_samples(samples(image), samples(ref.image)):
        return "pixels differ", f"mode {mode}"
    if mode in ("P", "PA"):
        pal_a = ref.image.convert("RGBA").tobytes()
        pal_b = image.convert("RGBA").tobytes()
        if pal_a != pal_b:
            return "palette or transparency differs", f"mode {mode}"
    return None


def same_decoded(a, b) -> bool:
    """tricodec's decode gave back exactly what was encoded."""
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        return isinstance(a, np.ndarray) and isinstance(b, np.ndarray) and a.dtype == b.dtype \
            and np.array_equal(a, b)
    if a.mode != b.mode or a.size != b.size or a.tobytes() != b.tobytes():
        return False
    return a.mode not in ("P", "PA") or a.getpalette() == b.getpalette()


def _one_line(msg: str, path: Path | None = None) -> str:
    msg = str(msg).strip().splitlines()[0] if str(msg).strip() else ""
    if path is not None:
        msg = msg.replace(str(path), "FILE")
    return msg


def reason_key(msg: str) -> str:
    """Grouping key of a refusal message: no file names, numbers as N."""
    msg = re.sub(r"^.*?FILE:?\s*", "", msg) if "FILE" in msg else re.sub(r"^\S+/\S+:\s*", "", msg)
    msg = re.sub(r"/\S+", "PATH", msg)
    return re.sub(r"\d+", "N", msg)[:160]


# ---------------------------------------------------------------------------------------------------------
# API path (runs in the worker process)


def pillow_sequence(data: bytes) -> tuple:
    """An independent reading of a multi-frame file: Pillow's frames (composited, as a viewer shows them;
    palette frames as RGBA), with each frame's duration, disposal and blend, and the loop count."""
    import io

    from PIL import Image

    im = Image.open(io.BytesIO(data))
    frames = []
    if im.format == "ICO":   # one "frame" in Pillow: its sizes are the frames
        for i in range(len(im.ico.entry)):
            f = im.ico.frame(i)
            px = f.convert("RGBA").tobytes() if f.mode in ("P", "PA") else f.tobytes()
            frames.append((f.mode, f.size, px, None, None, None, None, None))
        return im.format, None, frames
    if im.format == "ICNS":   # likewise: every size, in Pillow's order
        for size in sorted(im.info["sizes"]):
            f = im.icns.getimage(size)
            f.load()
            frames.append((f.mode, f.size, f.tobytes(), None, None, None, None, None))
        return im.format, None, frames
    for i in range(im.n_frames):
        im.seek(i)
        im.load()
        px = im.convert("RGBA").tobytes() if im.mode in ("P", "PA") else im.tobytes()
        dpi = im.info.get("dpi")
        if im.format == "TIFF" and 282 not in im.tag_v2:
            dpi = None   # Pillow's reader says 1 dpi for a TIFF page without XResolution
        frames.append((im.mode, im.size, px, im.info.get("duration"), im.info.get("disposal"),
                       im.info.get("blend"), dpi, im.info.get("icc_profile")))
    return im.format, im.info.get("loop"), frames


def sequence_lost(src: bytes, out: bytes) -> str | None:
    """What a multi-frame output lost against its source, as Pillow reads both (None: nothing)."""
    a, b = pillow_sequence(src), pillow_sequence(out)
    if a[0] != b[0] or a[1] != b[1] or len(a[2]) != len(b[2]):
        return f"{a[0]} of {len(a[2])} frames, loop {a[1]} -> {b[0]} of {len(b[2])} frames, loop {b[1]}"
    for i, (x, y) in enumerate(zip(a[2], b[2])):
        for what, u, v in zip(("mode", "size", "pixels", "duration", "disposal", "blend", "dpi", "ICC"), x, y):
            if u != v:
                return f"frame {i}: {what}"
    return None


def check_frames_api(path: Path) -> dict:
    """A multi-frame file tricodec keeps (APNG, multi-page TIFF): read_frames -> encode_frames ->
    decode_all -> write_frames; the written file must show the same frames as the source in Pillow."""
    import io

    import tricodec
    from tricodec import frames

    try:
        fr = frames.read_frames(path)
        data = frames.encode_frames(fr, device="cpu")
    except tricodec.TricodecError as e:
        return {"status": "refused", "reason": _one_line(e, path), "stage": "read"}
    except Exception as e:
        return {"status": "LOST", "class": f"frames: untyped exception in read/encode: {type(e).__name__}",
                "detail": _one_line(f"{type(e).__name__}: {e}", path)}
    try:
        back = frames.decode_all(data, device="cpu")
    except Exception as e:
        return {"status": "LOST", "class": "frames: decode fails on what encode wrote",
                "detail": _one_line(f"{type(e).__name__}: {e}", path)}
    if not frames.same_frames(back, fr):
        return {"status": "LOST", "class": "frames: decode differs from what was encoded",
                "detail": frames.frames_differ(fr, back)}
    buf = io.BytesIO()
    try:
        frames.write_frames(back, buf)
    except tricodec.TricodecError as e:
        return {"status": "refused", "reason": _one_line(e, path), "stage": "write"}
    lost = sequence_lost(path.read_bytes(), buf.getvalue())
    if lost:
        return {"status": "LOST", "class": f"frames: written {fr.kind} differs", "detail": lost}
    return {"status": "ok", "mode": f"{fr.kind} x{len(fr)}", "bytes": len(data)}


def check_api(path: Path) -> dict:
    import tricodec
    from PIL import Image
    from tricodec.pixels import read_image

    from tricodec import frames
    if frames.is_multi_frame_file(path):
        return check_frames_api(path)

    not_image = False
    try:
        ref = Reading(path)
    except Image.UnidentifiedImageError:
        ref, not_image = None, True
    except Exception:  # an image Pillow cannot open (too large, broken header ...): tricodec must refuse it
        ref = None
    try:
        image = read_image(path)
    except tricodec.TricodecError as e:
        if not_image:
            return {"status": "skip", "detail": "not an image (neither Pillow nor tricodec opens it)"}
        return {"status": "refused", "reason": _one_line(e, path), "stage": "read"}
    except Exception as e:
        return {"status": "LOST", "class": f"untyped exception in read_image: {type(e).__name__}",
                "detail": _one_line(f"{type(e).__name__}: {e}", path)}
    if ref is None:
        return {"status": "LOST", "class": "tricodec reads a file Pillow cannot open (unchecked)",
                "detail": ""}
    if ref.error is not None:
        return {"status": "LOST", "class": "tricodec read a file Pillow cannot decode",
                "detail": ref.error}
    lost = compare_to_reading(ref, image, file_level=True)  # the reader may pick another mode of equal samples
    if lost:
        return {"status": "LOST", "class": "read: " + lost[0], "detail": lost[1]}
    try:
        data = tricodec.encode(image, device="cpu")
    except tricodec.TricodecError as e:
        return {"status": "refused", "reason": _one_line(e, path), "stage": "encode"}
    except Exception as e:
        return {"status": "LOST", "class": f"untyped exception in encode: {type(e).__name__}",
                "detail": _one_line(f"{type(e).__name__}: {e}", path)}
    try:
        from tricodec.codec import decode_any
        back = decode_any(data, device="cpu")
    except tricodec.TricodecError as e:
        return {"status": "LOST", "class": "decode refuses what encode wrote", "detail": _one_line(e, path)}
    except Exception as e:
        return {"status": "LOST", "class": f"untyped exception in decode: {type(e).__name__}",
                "detail": _one_line(f"{type(e).__name__}: {e}", path)}
    if not same_decoded(back, image):
        return {"status": "LOST", "class": "decode differs from what was encoded", "detail": ""}
    return {"status": "ok", "mode": _mode(back), "bytes": len(data)}


def worker_main() -> None:
    """Read paths from stdin, write one JSON result per line."""
    for line in sys.stdin:
        path = Path(line.rstrip("\n"))
        try:
            result = check_api(path)
        except BaseException as e:  # noqa: BLE001 - everything is a finding here
            result = {"status": "LOST", "class": f"untyped exception: {type(e).__name__}",
                      "detail": _one_line(f"{type(e).__name__}: {e}")}
        sys.stdout.write(json.dumps(result) + "\n")
        sys.stdout.flush()


def run_api(files: list[Path], timeout: float, progress) -> dict[str, dict]:
    """API results by path, files checked in a worker process restarted after a crash or a hang."""
    import selectors

    results: dict[str, dict] = {}
    todo = list(files)
    while todo:
        proc = subprocess.Popen([sys.executable, __file__, "--worker"], stdin=subprocess.PIPE,
                                stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, bufsize=1)
        sel = selectors.DefaultSelector()
        sel.register(proc.stdout, selectors.EVENT_READ)
        while todo:
            path = todo[0]
            proc.stdin.write(str(path) + "\n")
            proc.stdin.flush()
            line = ""
            if sel.select(timeout):
                line = proc.stdout.readline()
            todo.pop(0)
            if line:
                results[str(path)] = json.loads(line)
                progress(path, results[str(path)])
                continue
            alive = proc.poll() is None
            if alive:
                proc.kill()
            proc.wait()
            results[str(path)] = {"status": "LOST", "class": "hang" if alive else "crash",
                                  "detail": f"no answer within {timeout:.0f} s" if alive
                                  else f"worker died (exit {proc.returncode})"}
            progress(path, results[str(path)])
            break
        else:
            proc.stdin.close()
            proc.wait()
    return results


# ---------------------------------------------------------------------------------------------------------
# CLI path


def _cli() -> list[str]:
    """The ``tricodec`` command of this interpreter's tricodec (the one the API path imports)."""
    return [sys.executable, "-c", "import sys; sys.argv[0] = 'tricodec'; from tricodec.cli.main import app; app()"]


def _run_cli(args: list[str], timeout: float) -> tuple[int, dict | None, str]:
    try:
        p = subprocess.run(_cli() + args + ["--json", "--force"], capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return -1, None, "timeout"
    summary = None
    for line in reversed(p.stdout.splitlines()):
        try:
            summary = json.loads(line)
            break
        except ValueError:
            continue
    return p.returncode, summary, p.stderr


def _failures(summary: dict | None) -> dict[str, str]:
    return {str(Path(f["file"]).resolve()): f["error"] for f in (summary or {}).get("failures", [])}


def _decoded_output(out_dir: Path, name: str) -> Path | None:
    """The file ``tricodec decode`` wrote for a source called ``name`` (``name`` or ``name.<suffix>``)."""
    if not out_dir.is_dir():
        return None
    cands = [p for p in out_dir.iterdir() if p.name == name or (p.name.startswith(name + ".") and
                                                                 not p.name.endswith(".tric"))]
    return sorted(cands, key=lambda p: len(p.name))[0] if cands else None


def _classify_failure(msg: str, path: Path, stage: str) -> dict:
    one = _one_line(msg, path)
    if "internal error" in one or "Traceback" in msg:
        return {"status": "LOST", "class": f"CLI {stage}: untyped error", "detail": one}
    return {"status": "refused", "reason": one, "stage": stage}


def check_cli_file(src: Path, rel: Path, tric: Path, out: Path, enc_fail: dict, dec_fail: dict,
                   enc_rc: int, dec_rc: int) -> dict:
    key = str(src.resolve())
    if key in enc_fail:
        return _classify_failure(enc_fail[key], src, "encode")
    if not tric.exists():
        return {"status": "LOST", "class": "CLI encode: no .tric written and no failure reported",
                "detail": f"exit {enc_rc}"}
    tkey = str(tric.resolve())
    if tkey in dec_fail:
        msg = dec_fail[tkey]
        r = _classify_failure(msg, tric, "decode")
        if r["status"] == "refused" and "would also be written from" not in msg:
            # encoded, but no image comes back: the user cannot restore it (a name clash between two
            # outputs is a refusal by design: each file decodes alone to another name)
            r = {"status": "LOST", "class": "CLI decode refuses a file the CLI encoded", "detail": r["reason"]}
        return r
    dec = _decoded_output(out / rel.parent, rel.name)
    if dec is None:
        return {"status": "LOST", "class": "CLI decode: no output file and no failure reported",
                "detail": f"exit {dec_rc}"}
    from tricodec import frames
    if frames.is_multi_frame_file(src):   # frames of an APNG or multi-page TIFF: compared frame by frame
        try:
            lost = sequence_lost(src.read_bytes(), dec.read_bytes())
        except Exception as e:
            return {"status": "LOST", "class": "CLI decode wrote a multi-frame file that cannot be read back",
                    "detail": _one_line(f"{type(e).__name__}: {e}")}
        if lost:
            return {"status": "LOST", "class": "CLI: frames differ", "detail": lost + f" (output {dec.name})"}
        return {"status": "ok", "output": dec.name}
    try:
        ref = Reading(src)
        got = Reading(dec)
    except Exception as e:
        return {"status": "LOST", "class": "CLI decode wrote a file that cannot be read back",
                "detail": _one_line(f"{type(e).__name__}: {e}")}
    if got.error is not None:
        return {"status": "LOST", "class": "CLI decode wrote a file that cannot be read back", "detail": got.error}
    if ref.error is not None:
        return {"status": "LOST", "class": "CLI encoded a file Pillow cannot decode", "detail": ref.error}
    image = got.image if got.array is None else _deep(got)
    lost = compare_to_reading(ref, image, file_level=True)
    if lost:
        return {"status": "LOST", "class": "CLI: " + lost[0], "detail": lost[1] + f" (output {dec.name})"}
    if "exif" in ref.meta and got.format == "TIFF":   # EXIF as the TIFF's own directories
        missing = exif_lost_in_tiff(ref.meta["exif"], got.image)
        if missing:
            return {"status": "LOST", "class": f"CLI metadata: EXIF altered ({ref.format} -> TIFF)",
                    "detail": f"{missing} (output {dec.name})"}
        got.meta["exif"] = ref.meta["exif"]
    for k in sorted(ref.meta, key=lambda k: (k not in ("icc", "exif", "xmp", "transparency"), k)):
        if k not in got.meta:
            return {"status": "LOST", "class": f"CLI metadata: {k if ':' in k else k.upper()} dropped ({ref.format} -> "
                    f"{got.format})", "detail": f"output {dec.name}"}
        if k in ref.meta and got.meta[k] != ref.meta[k]:
            return {"status": "LOST", "class": f"CLI metadata: {k if ':' in k else k.upper()} altered ({ref.format} -> "
                    f"{got.format})", "detail": f"output {dec.name}"}
    return {"status": "ok", "output": dec.name}


def _deep(reading: Reading):
    """A 16-bit file's raw samples as the image to compare: I;16 for grey, else the (H, W, C) array."""
    from PIL import Image

    a = reading.array
    return Image.fromarray(a[:, :, 0].astype("<u2")) if a.shape[2] == 1 else a


def run_cli(files: list[Path], root: Path, timeout: float) -> dict[str, dict]:
    results: dict[str, dict] = {}
    with tempfile.TemporaryDirectory(prefix="tric-conf-") as tmp:
        tmp = Path(tmp)
        src_root, packed, restored = tmp / "src", tmp / "packed", tmp / "restored"
        for f in files:
            rel = f.relative_to(root)
            (src_root / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(f, src_root / rel)
        rels = [f.relative_to(root) for f in files]
        enc_rc, enc_sum, _ = _run_cli(["encode", str(src_root), str(packed)], timeout * max(1, len(rels)))
        enc_fail = _failures(enc_sum)
        singles = {rel for rel in rels
                   if not (packed / (str(rel) + ".tric")).exists() and str((src_root / rel).resolve()) not in enc_fail}
        single_rc = {}
        for rel in sorted(singles):  # the folder walk did not take them: one single-file encode each
            tric = packed / (str(rel) + ".tric")
            tric.parent.mkdir(parents=True, exist_ok=True)
            rc, summary, err = _run_cli(["encode", str(src_root / rel), str(tric)], timeout)
            enc_fail.update(_failures(summary))
            if rc == -1 or (summary is None and rc != 0):
                tail = [ln for ln in err.splitlines() if ln.strip()]
                single_rc[rel] = {"status": "LOST", "class": "CLI encode: " + ("hang" if rc == -1 else "crash"),
                                  "detail": "timeout" if rc == -1 else _one_line(tail[-1] if tail else f"exit {rc}")}
        dec_rc, dec_sum, _ = _run_cli(["decode", str(packed), str(restored)], timeout * max(1, len(rels)))
        dec_fail = _failures(dec_sum)
        for rel in rels:
            r = single_rc.get(rel) or check_cli_file(src_root / rel, rel, packed / (str(rel) + ".tric"), restored,
                                                     enc_fail, dec_fail, enc_rc, dec_rc)
            r["run"] = "single-file encode (the folder walk skipped it)" if rel in singles else "folder"
            results[str(root / rel)] = r
    return results


# ---------------------------------------------------------------------------------------------------------
# Report


def summarise(results: dict[str, dict], title: str) -> str:
    counted = {p: r for p, r in results.items() if r["status"] != "skip"}
    by = collections.Counter(r["status"] for r in counted.values())
    lines = [f"== {title}: {len(counted)} images: round-tripped {by['ok']}, refused {by['refused']}, "
             f"LOST {by['LOST']} (not images, skipped: {len(results) - len(counted)})"]
    reasons = collections.Counter(reason_key(r["reason"]) for r in counted.values() if r["status"] == "refused")
    if reasons:
        lines.append("-- refused, top reasons:")
        lines += [f"  {n:4d}  {k}" for k, n in reasons.most_common(15)]
        if len(reasons) > 15:
            lines.append(f"  ({len(reasons) - 15} more reasons, {sum(n for _, n in reasons.most_common()[15:])} files)")
    lost = lost_classes(results)
    if lost:
        lines.append("-- LOST, by class:")
        for cls, items in lost:
            lines.append(f"  {len(items):4d}  {cls}")
            for p, detail in items:
                lines.append(f"          {p}" + (f"  [{detail}]" if detail else ""))
    return "\n".join(lines)


def lost_classes(results: dict[str, dict]) -> list[tuple[str, list[tuple[str, str]]]]:
    groups: dict[str, list] = collections.defaultdict(list)
    for p, r in sorted(results.items()):
        if r["status"] == "LOST":
            groups[r["class"]].append((p, r.get("detail", "")))
    return sorted(groups.items(), key=lambda kv: (-len(kv[1]), kv[0]))


def lost_report(out: dict, note: str = "") -> str:
    """The LOST entries of a run, by path (API, CLI) and class, each with its files and details."""
    lines = ["LOST files of perf/conformance.py (a file whose round trip gave back something else, or failed",
             "with an untyped error, a crash or a hang), by class. Refused files (typed errors) are not listed.",
             f"corpus: {out['dir']} ({out['files']} files)"] + ([note] if note else []) + [""]
    for key, title in (("api", "API (read_image -> encode -> decode_any)"),
                       ("cli", "CLI (tricodec encode / tricodec decode)")):
        if key not in out:
            continue
        classes = lost_classes(out[key])
        total = sum(len(items) for _, items in classes)
        lines.append(f"== {title}: {total} LOST in {len(classes)} classes")
        for cls, items in classes:
            lines.append(f"[{len(items)}] {cls}")
            for p, detail in items:
                rel = os.path.relpath(p, out["dir"])
                lines.append(f"    {rel}" + (f"  -- {detail}" if detail else ""))
        lines.append("")
    return "\n".join(lines)


def main(argv=None) -> int:
    from PIL import Image

    Image.init()   # Pillow's plugin order, not the order files happen to be opened in (a .ico after a .tga reads as TGA)
    if argv is None and sys.argv[1:2] == ["--worker"]:
        worker_main()
        return 0
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("dir", type=Path)
    ap.add_argument("--cli", action="store_true", help="also round-trip through the tricodec CLI")
    ap.add_argument("--no-api", action="store_true", help="only the CLI path")
    ap.add_argument("--json", type=Path, help="write every file's result here")
    ap.add_argument("--timeout", type=float, default=120.0, help="seconds per file before it counts as a hang")
    ap.add_argument("--lost", type=Path, help="write the categorised LOST list (API and CLI) here")
    ap.add_argument("--note", default="", help="a line for the head of the --lost file (commit, machine ...)")
    ap.add_argument("--quiet", action="store_true")
    a = ap.parse_args(argv)
    root = a.dir.resolve()
    files = sorted(p for p in root.rglob("*") if p.is_file() and not p.is_symlink())
    t0 = time.time()
    out = {"dir": str(root), "files": len(files)}
    text = []

    def progress(path, r):
        if not a.quiet:
            print(f"[{time.time() - t0:7.1f}s] {r['status']:7s} {path.relative_to(root)}"
                  + (f"  {r.get('reason') or r.get('class')}" if r["status"] != "ok" else ""), file=sys.stderr)

    api = {}
    if not a.no_api:
        api = run_api(files, a.timeout, progress)
        out["api"] = api
        text.append(summarise(api, "API (read_image -> encode -> decode_any)"))
    if a.cli:
        images = [f for f in files if api.get(str(f), {}).get("status") != "skip"] if api else files
        if not api:
            from PIL import Image
            keep = []
            for f in files:
                try:
                    Image.open(f).close()
                    keep.append(f)
                except Exception:
                    pass
            images = keep
        cli = run_cli(images, root, a.timeout)
        out["cli"] = cli
        text.append(summarise(cli, "CLI (tricodec encode / tricodec decode, files compared)"))
    out["seconds"] = round(time.time() - t0, 1)
    print("\n\n".join(text))
    print(f"\n{len(files)} files under {root}, {out['seconds']} s")
    if a.json:
        a.json.write_text(json.dumps(out, indent=1, sort_keys=True) + "\n")
    if a.lost:
        a.lost.write_text(lost_report(out, a.note))
    return 0


if __name__ == "__main__":
    sys.exit(main())
