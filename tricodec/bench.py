"""Benchmark tricodec against PNG, WebP lossless and JPEG-XL lossless on the same images in one run.

Reports, per codec, the mean per-image bpsp = 8 x bytes / (H x W x C) and the aggregate encode and
decode throughput in MB/s of raw pixels (total H x W x C bytes / total median time), plus ratios
against JPEG-XL effort 7 and PNG (DESIGN.md section 6). Every decode is checked to give the original
pixels back; any mismatch fails the run with exit code 1.

    python perf/bench_codecs.py                              # ../shared/data/dev, 3 repeats
    python perf/bench_codecs.py ../shared/data/kodak --repeat 1 --csv /tmp/kodak.csv
    tricodec bench photos/ --plot bench.png                  # the same, from the CLI

Lives in the package so that ``tricodec bench`` can run it; ``perf/bench_codecs.py`` is its script.
"""
from __future__ import annotations

import argparse
import gc
import io
import os
import platform
import shlex
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from PIL import Image, features

# The development photos beside a checkout (the perf script's default); elsewhere a DIR is required.
DEFAULT_DIR = Path(__file__).resolve().parents[2] / "shared" / "data" / "dev"
IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".ppm", ".pgm", ".webp"}
BENCH_MODES = {"RGB": 3, "L": 1}
CODEC_FAMILIES = ("tricodec", "png", "webp", "jxl")
JXL_REFERENCE = "jxl-e7"
PNG_REFERENCE = "png"


# ---- codecs ----

@dataclass
class Codec:
    """A named encode/decode pair: ``encode(PIL image) -> bytes`` and ``decode(bytes) -> loaded PIL image``."""
    name: str
    encode: Callable[[Image.Image], bytes]
    decode: Callable[[bytes], Image.Image]


def _pillow_codec(name: str, fmt: str, **save_kwargs) -> Codec:
    """A codec going through Pillow's save/open, so every format pays the same wrapper overhead."""
    def encode(image: Image.Image) -> bytes:
        buf = io.BytesIO()
        image.save(buf, format=fmt, **save_kwargs)
        return buf.getvalue()

    def decode(data: bytes) -> Image.Image:
        image = Image.open(io.BytesIO(data))
        image.load()  # Image.open is lazy: without load() no pixels would be decoded
        return image

    return Codec(name, encode, decode)


def _tricodec_codec(device: str, model: str | None = None) -> Codec:
    """tricodec on one device with one model (None: the default); raises if the installed backend does not
    accept the device or the model is unknown."""
    import tricodec
    from tricodec.backend import get_backend

    get_backend(device)  # fail here, not inside the timing loop
    m = tricodec.load_model(model)
    name = f"tricodec-{device}" if model is None else f"tricodec-{m.name.replace('tric-', '')}-{device}"
    return Codec(name, lambda image: tricodec.encode(image, device=device, model=m),
                 lambda data: tricodec.decode(data, device=device, model=m))


def build_codecs(families: list[str], jxl_efforts: list[int], models: list[str] = ()) -> tuple[list[Codec], list[str]]:
    """The codecs to run, and notes on the ones that are unavailable here. ``models``: other tricodec
    models to run beside the default (e.g. ``tric-cx1``)."""
    codecs, notes = [], []
    if "tricodec" in families:
        codecs.append(_tricodec_codec("cpu"))
        codecs += [_tricodec_codec("cpu", m) for m in models]
        try:
            import torch
            if torch.cuda.is_available():
                codecs.append(_tricodec_codec("cuda"))
            else:
                notes.append("tricodec-cuda skipped: torch.cuda.is_available() is False")
        except Exception as e:  # noqa: BLE001 - any failure only means "no GPU row"
            notes.append(f"tricodec-cuda skipped: {type(e).__name__}: {e}")
    if "png" in families:
        # Level 6 is Pillow's (and zlib's) default; optimize=True would try many settings and is not what
        # people get from a plain save.
        codecs.append(_pillow_codec("png", "PNG", compress_level=6, optimize=False))
    if "webp" in families:
        if features.check("webp"):
            codecs.append(_pillow_codec("webp-ll", "WEBP", lossless=True, quality=100, method=4))
        else:
            notes.append("webp skipped: Pillow was built without WebP support")
    if "jxl" in families:
        try:
            import pillow_jxl  # noqa: F401 - importing registers the JXL plugin with Pillow
            notes.append("jxl: pillow_jxl's default num_threads=-1, so libjxl encodes and decodes on all cores")
            for e in jxl_efforts:
                codecs.append(_pillow_codec(f"jxl-e{e}", "JXL", lossless=True, effort=e))
        except ImportError:
            notes.append("jxl skipped: pillow_jxl is not installed (pip install pillow-jxl-plugin)")
    return codecs, notes


# ---- images ----

@dataclass
class Sample:
    """One benchmark image and its raw size in bytes (H x W x C)."""
    name: str
    image: Image.Image
    raw_bytes: int


def load_images(dirs: list[Path]) -> tuple[list[Sample], list[str]]:
    """Every RGB or L image in ``dirs`` (sorted by name), unconverted; other modes are skipped with a note."""
    samples, notes = [], []
    for d in dirs:
        for path in sorted(p for p in d.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES):
            with Image.open(path) as im:
                im.load()
                # copy() drops format and filename: pillow_jxl would otherwise losslessly *transcode* a
                # JPEG file's DCT data instead of coding the pixels.
                image = im.copy()
            if image.mode not in BENCH_MODES:
                notes.append(f"{path.name} skipped: mode {image.mode}")
                continue
            name = path.name if len(dirs) == 1 else f"{d.name}/{path.name}"
            samples.append(Sample(name, image, image.width * image.height * BENCH_MODES[image.mode]))
    return samples, notes


# ---- measurement ----

@dataclass
class Result:
    """One codec on one image: encoded size and median times in seconds."""
    image: str
    codec: str
    raw_bytes: int
    nbytes: int
    enc_s: float
    dec_s: float

    @property
    def bpsp(self) -> float:
        return 8.0 * self.nbytes / self.raw_bytes


def _median_time(fn: Callable, arg, repeat: int):
    """Median wall time of ``repeat`` calls of ``fn(arg)`` and the last call's result."""
    times, out = [], None
    for _ in range(repeat):
        gc.collect()  # keep collections of earlier garbage out of the timed region
        t0 = time.perf_counter()
        out = fn(arg)
        times.append(time.perf_counter() - t0)
    return statistics.median(times), out


def same_pixels(original: Image.Image, decoded: Image.Image) -> bool:
    """True when size and every pixel agree, in the original mode.

    WebP has no grey-scale format and hands an L image back as RGB with R = G = B; that is still lossless,
    so an RGB result for an L original passes when each of its three channels equals the original.
    """
    if original.size != decoded.size:
        return False
    if original.mode == "L" and decoded.mode == "RGB":
        want = original.tobytes()
        return all(band.tobytes() == want for band in decoded.split())
    return original.mode == decoded.mode and original.tobytes() == decoded.tobytes()


def measure(codec: Codec, sample: Sample, repeat: int) -> tuple[Result | None, str | None]:
    """Warm up once (JIT compilation, lazy model and plugin loading), then time ``repeat`` runs each way."""
    try:
        warm = codec.encode(sample.image)
        codec.decode(warm)
        enc_s, data = _median_time(codec.encode, sample.image, repeat)
        dec_s, decoded = _median_time(codec.decode, data, repeat)
    except Exception as e:  # noqa: BLE001 - reported as a failure, the run goes on
        return None, f"{codec.name} on {sample.name}: {type(e).__name__}: {e}"
    if not same_pixels(sample.image, decoded):
        return None, (f"{codec.name} on {sample.name}: decoded pixels differ from the original "
                      f"(mode {decoded.mode} {decoded.size} vs {sample.image.mode} {sample.image.size})")
    return Result(sample.name, codec.name, sample.raw_bytes, len(data), enc_s, dec_s), None


# ---- reporting ----

@dataclass
class Summary:
    """Aggregates of one codec over all images."""
    codec: str
    bpsp: float
    enc_mbs: float
    dec_mbs: float
    per_image: dict = field(default_factory=dict)


def summarise(results: list[Result], codec_names: list[str]) -> dict[str, Summary]:
    """Mean per-image bpsp, and MB/s as total raw bytes over total median time (not a mean of rates)."""
    out = {}
    for name in codec_names:
        rs = [r for r in results if r.codec == name]
        if not rs:
            continue
        raw = sum(r.raw_bytes for r in rs) / 1e6
        out[name] = Summary(name, statistics.fmean(r.bpsp for r in rs),
                            raw / sum(r.enc_s for r in rs), raw / sum(r.dec_s for r in rs),
                            {r.image: r.bpsp for r in rs})
    return out


def _ratio(a: float, b: float | None) -> str:
    return "n/a" if b is None or b == 0 else f"{a / b:.3f}"


def print_tables(summaries: dict[str, Summary], images: list[str]) -> None:
    """The codec table (ratios vs JPEG-XL e7 and vs PNG) and the per-image bpsp table, as markdown."""
    jxl, png = summaries.get(JXL_REFERENCE), summaries.get(PNG_REFERENCE)
    print("| codec | bpsp | enc MB/s | dec MB/s | bpsp/JXL-e7 | enc speed x JXL-e7 | dec speed x JXL-e7 "
          "| bpsp/PNG | enc speed x PNG | dec speed x PNG |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for s in summaries.values():
        print(f"| {s.codec} | {s.bpsp:.3f} | {s.enc_mbs:.2f} | {s.dec_mbs:.2f} "
              f"| {_ratio(s.bpsp, jxl and jxl.bpsp)} | {_ratio(s.enc_mbs, jxl and jxl.enc_mbs)} "
              f"| {_ratio(s.dec_mbs, jxl and jxl.dec_mbs)} "
              f"| {_ratio(s.bpsp, png and png.bpsp)} | {_ratio(s.enc_mbs, png and png.enc_mbs)} "
              f"| {_ratio(s.dec_mbs, png and png.dec_mbs)} |")
    print()
    print("Per-image bpsp:")
    print()
    names = list(summaries)
    print("| image | " + " | ".join(names) + " |")
    print("|---|" + "---|" * len(names))
    for img in images:
        cells = [f"{summaries[n].per_image[img]:.3f}" if img in summaries[n].per_image else "-" for n in names]
        print(f"| {img} | " + " | ".join(cells) + " |")


def write_csv(path: Path, results: list[Result]) -> None:
    """One row per (image, codec)."""
    import csv
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["image", "codec", "bytes", "bpsp", "enc_s", "dec_s"])
        for r in results:
            w.writerow([r.image, r.codec, r.nbytes, f"{r.bpsp:.5f}", f"{r.enc_s:.6f}", f"{r.dec_s:.6f}"])


def write_plot(path: Path, summaries: dict[str, Summary], title: str) -> bool:
    """bpsp against encode and decode MB/s; False when matplotlib is not importable (it is not a dependency)."""
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.5), sharey=True)
    for ax, attr, label in ((axes[0], "enc_mbs", "encode"), (axes[1], "dec_mbs", "decode")):
        for s in summaries.values():
            x = getattr(s, attr)
            ax.scatter(x, s.bpsp)
            ax.annotate(s.codec, (x, s.bpsp), textcoords="offset points", xytext=(4, 4), fontsize=8)
        ax.set_xscale("log")
        ax.set_xlabel(f"{label} MB/s of raw pixels (log)")
        ax.grid(True, which="both", alpha=0.3)
    axes[0].set_ylabel("mean bpsp (lower is better)")
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return True


def machine_lines(threads: int) -> list[str]:
    """Machine, library and commit facts, printed so every figure can be recorded with its context."""
    cpu = platform.processor() or ""
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next((ln.split(":", 1)[1].strip() for ln in f if ln.startswith("model name")), cpu)
    except OSError:
        pass
    u = platform.uname()
    lines = [f"machine: {u.system} {u.release} {u.machine}; cpu: {cpu or 'unknown'}; "
             f"os.cpu_count()={os.cpu_count()}; torch threads={threads}"]
    versions = [f"python {platform.python_version()}", f"Pillow {Image.__version__}"]
    try:
        import numba
        versions.append(f"numba {numba.__version__} (threads {numba.get_num_threads()})")
    except ImportError:
        pass
    try:
        from importlib.metadata import version
        import tricodec
        versions.append(f"tricodec {tricodec.__version__}")
        versions.append(f"pillow-jxl-plugin {version('pillow-jxl-plugin')}")
    except Exception:  # noqa: BLE001 - a missing version is not worth failing over
        pass
    lines.append("versions: " + ", ".join(versions))
    try:
        rev = subprocess.run(["git", "-C", str(Path(__file__).resolve().parent), "describe", "--always", "--dirty"],
                             capture_output=True, text=True, timeout=10).stdout.strip()
        if rev:
            lines.append(f"commit: {rev}")
    except (OSError, subprocess.SubprocessError):
        pass
    return lines


# ---- main ----

def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("dirs", nargs="*", type=Path, metavar="DIR",
                   help=f"image folders (default: {DEFAULT_DIR})")
    p.add_argument("--repeat", type=int, default=3, help="timed runs per codec and image, after one warm-up")
    p.add_argument("--csv", type=Path, help="write per-image rows (image, codec, bytes, bpsp, enc_s, dec_s)")
    p.add_argument("--plot", type=Path, help="write a bpsp-vs-speed PNG scatter (needs matplotlib)")
    p.add_argument("--codecs", nargs="+", choices=CODEC_FAMILIES, default=list(CODEC_FAMILIES),
                   help="codec families to run (default: all)")
    p.add_argument("--jxl-efforts", default="1,3,7", help="comma-separated JPEG-XL efforts (default 1,3,7)")
    p.add_argument("--models", nargs="*", default=[], help="other tricodec models to run beside the default "
                                                             "(names or weights files, e.g. tric-cx1)")
    args = p.parse_args(argv)
    if args.repeat < 1:
        p.error("--repeat must be at least 1")
    try:
        args.jxl_efforts = [int(e) for e in args.jxl_efforts.split(",") if e.strip()]
    except ValueError:
        p.error(f"--jxl-efforts must be comma-separated integers, got {args.jxl_efforts!r}")
    if not args.dirs:
        if not DEFAULT_DIR.is_dir():
            p.error(f"no DIR given and the default {DEFAULT_DIR} does not exist; pass an image folder")
        args.dirs = [DEFAULT_DIR]
    for d in args.dirs:
        if not d.is_dir():
            p.error(f"{d} is not a directory")
    return args



def measure_all(samples, codecs, repeat: int, measure) -> tuple[list, list]:
    """``measure(codec, sample, repeat) -> (result, error)`` of every codec on every sample -> (results,
    errors); failures and progress go to stderr (stdout stays a clean report)."""
    results, failures = [], []
    t_start = time.perf_counter()
    for sample in samples:
        for codec in codecs:
            r, err = measure(codec, sample, repeat)
            if err:
                failures.append(err)
                print(f"!!! FAILURE: {err}", file=sys.stderr, flush=True)
            else:
                results.append(r)
        print(f"  done {sample.name} ({time.perf_counter() - t_start:.0f} s)", file=sys.stderr, flush=True)
    return results, failures


def print_run_header(argv: list[str] | None) -> str:
    """Torch on every core, then the command line and the machine lines every benchmark starts with ->
    the command line."""
    threads = os.cpu_count() or 1
    try:
        import torch
        torch.set_num_threads(threads)
        threads = torch.get_num_threads()
    except ImportError:
        threads = "n/a (torch not installed)"
    command = "python " + shlex.join(sys.argv if argv is None else [sys.argv[0], *argv])
    print(f"command: {command}")
    for line in machine_lines(threads):
        print(line)
    return command


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    command = print_run_header(argv)

    samples, image_notes = load_images(args.dirs)
    codecs, codec_notes = build_codecs(args.codecs, args.jxl_efforts, args.models)
    for note in image_notes + codec_notes:
        print(f"note: {note}")
    if not samples:
        print("error: no RGB or L images found", file=sys.stderr)
        return 2
    print(f"images: {len(samples)} from {', '.join(str(d) for d in args.dirs)}; "
          f"{sum(s.raw_bytes for s in samples) / 1e6:.2f} MB raw; repeat {args.repeat} "
          f"(median, after 1 discarded warm-up)")
    print(f"codecs: {', '.join(c.name for c in codecs)}")
    print()

    t_start = time.perf_counter()
    results, failures = measure_all(samples, codecs, args.repeat, measure)

    summaries = summarise(results, [c.name for c in codecs])
    print_tables(summaries, [s.name for s in samples])
    print()
    print(f"benchmark wall time: {time.perf_counter() - t_start:.1f} s")

    if args.csv:
        write_csv(args.csv, results)
        print(f"csv: {args.csv}")
    if args.plot:
        if write_plot(args.plot, summaries, command):
            print(f"plot: {args.plot}")
        else:
            print("plot not written: matplotlib is not installed (it is not a tricodec dependency)")

    if failures:
        print(f"\n!!! {len(failures)} FAILURE(S): decoded output is not lossless or a codec raised:", file=sys.stderr)
        for f in failures:
            print(f"!!!   {f}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
