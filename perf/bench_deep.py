"""Benchmark tricodec on 16-bit images against PNG-16 and JPEG-XL lossless at 16 bits, in one run.

    python perf/bench_deep.py DIR [--repeat N] [--jxl-effort 7 3] [--png-level 9] [--csv FILE]

DIR holds 16-bit PNGs (grey, RGB or RGBA; ``tools/fetch_deep_set.py DIR`` builds the named set) or
uint16 TIFFs. Per image and codec: bpsp = 8 x bytes / (H x W x C) and encode / decode MB/s, where MB are
the raw 16-bit bytes (2 x H x W x C, decimal) over the median of N timed runs after one warm-up; every
decode is checked to give the exact uint16 samples back (any mismatch fails the run, exit code 1).

Codecs, all from one process:
* tricodec: ``tricodec.encode`` of a PIL "I;16" image (grey) or a uint16 (H, W, C) array (colour), and
  ``tricodec.decode_array``; whatever encode does today (model or exact fallback: the ``fallback``
  column, from ``tricodec.read_header(data).is_fallback``).
* png16: libpng through ``imagecodecs.png_encode(arr, level=L)``, zlib level 9 by default and libpng's
  own adaptive per-row filter choice; decoded with ``imagecodecs.png_decode``.
* jxl-eN: libjxl through ``imagecodecs.jpegxl_encode(arr, lossless=True, effort=N)`` on the uint16 array
  (the codestream's bits_per_sample is 16: a uint16 input), decoded with ``imagecodecs.jpegxl_decode``
  (which returns uint16 only for > 8 bits per sample: checked). Both on all cores (numthreads).
"""
from __future__ import annotations

import argparse
import csv
import os
import statistics
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from tricodec.bench import _median_time, _ratio, measure_all, print_run_header

SUFFIXES = {".png", ".tif", ".tiff"}
JXL_REFERENCE_EFFORT = 7


# ---- images ----

@dataclass
class Deep:
    """One 16-bit image: the uint16 array (H, W) or (H, W, C) and what tricodec is given."""
    name: str
    arr: np.ndarray
    tric_input: object     # PIL "I;16" image for grey, the array itself for colour

    @property
    def samples(self) -> int:
        return self.arr.size

    @property
    def bits_used(self) -> int:
        return max(int(self.arr.max()).bit_length(), 1)


def read_deep(path: Path) -> np.ndarray | None:
    """The uint16 samples of a 16-bit PNG (via pypng: Pillow keeps only 8 bits of 16-bit colour) or a
    uint16 TIFF; None for anything else."""
    if path.suffix.lower() == ".png":
        import png
        w, h, rows, info = png.Reader(filename=str(path)).asDirect()
        if info["bitdepth"] != 16:
            return None
        a = np.vstack([np.asarray(r, dtype=np.uint16) for r in rows]).reshape(h, w, info["planes"])
    else:
        import tifffile
        a = tifffile.imread(path)
        if a.dtype != np.uint16 or a.ndim not in (2, 3):
            return None
        a = a[..., None] if a.ndim == 2 else a
    if a.shape[2] == 2:   # grey + alpha: no tricodec input type for it
        return None
    return np.ascontiguousarray(a[..., 0] if a.shape[2] == 1 else a)


def load_deep(d: Path) -> tuple[list[Deep], list[str]]:
    from PIL import Image
    images, notes = [], []
    for path in sorted(p for p in d.iterdir() if p.suffix.lower() in SUFFIXES):
        a = read_deep(path)
        if a is None:
            notes.append(f"{path.name} skipped: not 16-bit grey/RGB/RGBA")
            continue
        tric_input = Image.fromarray(a) if a.ndim == 2 else a
        if a.ndim == 2 and tric_input.mode != "I;16":
            raise RuntimeError(f"{path.name}: Pillow made mode {tric_input.mode}, not I;16")
        images.append(Deep(path.name, a, tric_input))
    return images, notes


# ---- codecs: encode(Deep) -> bytes, decode(bytes) -> uint16 array ----

@dataclass
class DeepCodec:
    name: str
    encode: Callable[[Deep], bytes]
    decode: Callable[[bytes], np.ndarray]


def jxl_codestream(data: bytes) -> bytes:
    """The bare JPEG XL codestream inside an ISOBMFF container (its one ``jxlc`` box), or ``data`` itself
    when it is a bare codestream already or keeps the codestream in several ``jxlp`` parts."""
    if data[:2] == b"\xff\x0a":
        return data
    pos = 0
    while pos + 8 <= len(data):
        size, kind = int.from_bytes(data[pos:pos + 4], "big"), data[pos + 4:pos + 8]
        head = 8
        if size == 1:
            size, head = int.from_bytes(data[pos + 8:pos + 16], "big"), 16
        elif size == 0:
            size = len(data) - pos
        if kind == b"jxlc":
            return data[pos + head:pos + size]
        if size < head:
            break
        pos += size
    return data


def build_codecs(efforts: list[int], png_level: int, device: str, threads: int) -> tuple[list[DeepCodec], list[str]]:
    import imagecodecs
    import tricodec

    notes = [f"png16: {imagecodecs.png_version()} via "
             f"imagecodecs.png_encode(level={png_level}), libpng's adaptive filters; one thread",
             f"jxl: {imagecodecs.jpegxl_version()} via "
             f"imagecodecs.jpegxl_encode(lossless=True, effort=N, numthreads={threads}), uint16 input (16 bits "
             f"per sample in the codestream)"]
    codecs = [DeepCodec(f"tricodec-{device}", lambda im: tricodec.encode(im.tric_input, device=device),
                        lambda data: tricodec.decode_array(data, device=device)),
              DeepCodec("png16", lambda im: imagecodecs.png_encode(im.arr, level=png_level), imagecodecs.png_decode)]
    notes.append("jxl: sizes and decodes are of the bare codestream (the jxlc box of imagecodecs' container, "
                 "as cjxl writes by default): the container's ~40 bytes are not counted")
    for e in efforts:
        codecs.append(DeepCodec(
            f"jxl-e{e}",
            lambda im, e=e: jxl_codestream(imagecodecs.jpegxl_encode(im.arr, lossless=True, effort=e, numthreads=threads)),
            lambda data: imagecodecs.jpegxl_decode(data, numthreads=threads)))
    return codecs, notes


# ---- measurement ----

@dataclass
class DeepResult:
    image: str
    codec: str
    samples: int
    nbytes: int
    enc_s: float
    dec_s: float
    info: str = ""          # tricodec: "fallback" or the model name from the header

    @property
    def bpsp(self) -> float:
        return 8.0 * self.nbytes / self.samples

    @property
    def raw_mb(self) -> float:
        return 2 * self.samples / 1e6


def measure(codec: DeepCodec, im: Deep, repeat: int) -> tuple[DeepResult | None, str | None]:
    try:
        warm = codec.encode(im)
        codec.decode(warm)
        enc_s, data = _median_time(codec.encode, im, repeat)
        dec_s, out = _median_time(codec.decode, data, repeat)
    except Exception as e:  # noqa: BLE001 - reported as a failure, the run goes on
        return None, f"{codec.name} on {im.name}: {type(e).__name__}: {e}"
    out = np.asarray(out)
    if out.ndim == 3 and out.shape[2] == 1 and im.arr.ndim == 2:
        out = out[..., 0]
    if out.dtype != np.uint16 or out.shape != im.arr.shape or not np.array_equal(out, im.arr):
        return None, (f"{codec.name} on {im.name}: decode is not the original "
                      f"({out.dtype} {out.shape} vs uint16 {im.arr.shape})")
    info = ""
    if codec.name.startswith("tricodec"):
        import tricodec
        h = tricodec.read_header(data)
        info = "fallback" if h.is_fallback else (h.model_name or "model")
    return DeepResult(im.name, codec.name, im.samples, len(data), enc_s, dec_s, info), None


# ---- reporting ----

def summary_rows(results: list[DeepResult], names: list[str], images: list[str]) -> dict[str, tuple[float, float, float]]:
    """codec -> (mean per-image bpsp, encode MB/s, decode MB/s) over ``images``; MB/s = total raw MB over
    total median time."""
    out = {}
    for n in names:
        rs = [r for r in results if r.codec == n and r.image in images]
        if rs:
            mb = sum(r.raw_mb for r in rs)
            out[n] = (statistics.fmean(r.bpsp for r in rs), mb / sum(r.enc_s for r in rs), mb / sum(r.dec_s for r in rs))
    return out


def print_summary(title: str, s: dict[str, tuple[float, float, float]], jxl_ref: str) -> None:
    print(f"{title}")
    print()
    print("| codec | bpsp | enc MB/s | dec MB/s | bpsp/JXL-e7 | enc x JXL-e7 | dec x JXL-e7 | bpsp/PNG | enc x PNG | dec x PNG |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    j, p = s.get(jxl_ref), s.get("png16")
    for n, (b, e, d) in s.items():
        print(f"| {n} | {b:.3f} | {e:.2f} | {d:.2f} | {_ratio(b, j and j[0])} | {_ratio(e, j and j[1])} "
              f"| {_ratio(d, j and j[2])} | {_ratio(b, p and p[0])} | {_ratio(e, p and p[1])} | {_ratio(d, p and p[2])} |")
    print()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("dir", type=Path, metavar="DIR", help="folder of 16-bit PNGs / uint16 TIFFs")
    ap.add_argument("--repeat", type=int, default=3, help="timed runs per codec and image, after one warm-up")
    ap.add_argument("--jxl-effort", type=int, nargs="+", default=[7, 3], help="JPEG-XL efforts (default 7 3)")
    ap.add_argument("--png-level", type=int, default=9, help="zlib level of the PNG-16 encoder (default 9)")
    ap.add_argument("--device", default="cpu", help="tricodec device (default cpu)")
    ap.add_argument("--csv", type=Path, help="per-image rows: image, codec, bytes, bpsp, enc_s, dec_s, info")
    args = ap.parse_args(argv)
    if args.repeat < 1:
        ap.error("--repeat must be at least 1")
    if not args.dir.is_dir():
        ap.error(f"{args.dir} is not a directory")

    import imagecodecs
    threads = os.cpu_count() or 1
    print_run_header(argv)
    print(f"versions: imagecodecs {imagecodecs.__version__} (libjxl, libpng, zlib as built into it)")

    images, notes = load_deep(args.dir)
    codecs, cnotes = build_codecs(args.jxl_effort, args.png_level, args.device, threads)
    for n in notes + cnotes:
        print(f"note: {n}")
    if not images:
        print("error: no 16-bit images found", file=sys.stderr)
        return 2
    total_mb = sum(2 * im.samples for im in images) / 1e6
    print(f"images: {len(images)} from {args.dir}; {total_mb:.2f} MB raw (16-bit); repeat {args.repeat} "
          f"(median, after 1 discarded warm-up)")
    print(f"codecs: {', '.join(c.name for c in codecs)}")
    print()

    t0 = time.perf_counter()
    results, failures = measure_all(images, codecs, args.repeat, measure)

    names = [c.name for c in codecs]
    tric = names[0]
    jxl_ref = f"jxl-e{JXL_REFERENCE_EFFORT}" if JXL_REFERENCE_EFFORT in args.jxl_effort else f"jxl-e{args.jxl_effort[0]}"
    by = {(r.image, r.codec): r for r in results}

    print("Per image (bpsp; tricodec/JXL and tricodec/PNG are bpsp ratios):")
    print()
    print("| image | shape | bits used | " + " | ".join(names) + f" | tricodec kind | tricodec/{jxl_ref} | tricodec/PNG |")
    print("|---|---|---|" + "---|" * len(names) + "---|---|---|")
    for im in images:
        cells = [f"{by[(im.name, n)].bpsp:.3f}" if (im.name, n) in by else "FAIL" for n in names]
        t, j, p = by.get((im.name, tric)), by.get((im.name, jxl_ref)), by.get((im.name, "png16"))
        kind = t.info if t else "-"
        print(f"| {im.name} | {'x'.join(map(str, im.arr.shape))} | {im.bits_used} | " + " | ".join(cells)
              + f" | {kind} | {_ratio(t.bpsp, j and j.bpsp) if t else 'n/a'} | {_ratio(t.bpsp, p and p.bpsp) if t else 'n/a'} |")
    print()

    grey = [im.name for im in images if im.arr.ndim == 2]
    colour = [im.name for im in images if im.arr.ndim == 3]
    print_summary(f"All {len(images)} images (mean per-image bpsp; MB/s of raw 16-bit bytes):",
                  summary_rows(results, names, [im.name for im in images]), jxl_ref)
    if grey and colour:
        print_summary(f"Grey only ({len(grey)}):", summary_rows(results, names, grey), jxl_ref)
        print_summary(f"Colour only ({len(colour)}):", summary_rows(results, names, colour), jxl_ref)
    nfb = sum(1 for r in results if r.codec == tric and r.info == "fallback")
    print(f"tricodec files that are fallbacks: {nfb} of {sum(1 for r in results if r.codec == tric)}")
    print(f"benchmark wall time: {time.perf_counter() - t0:.1f} s")

    if args.csv:
        with open(args.csv, "w", newline="") as f:
            w = csv.writer(f)
            w.writerow(["image", "codec", "bytes", "bpsp", "enc_s", "dec_s", "info"])
            for r in results:
                w.writerow([r.image, r.codec, r.nbytes, f"{r.bpsp:.5f}", f"{r.enc_s:.6f}", f"{r.dec_s:.6f}", r.info])
        print(f"csv: {args.csv}")
    if failures:
        print(f"\n!!! {len(failures)} FAILURE(S):", file=sys.stderr)
        for f in failures:
            print(f"!!!   {f}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
