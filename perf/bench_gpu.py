"""Throughput of tricodec on a GPU (``device="cuda"``), encode and decode, on a folder of images.

What it measures, for the shipped default (``tric-wf3``) or ``--model NAME`` (``tric-wf2``: the model whose kernels
``device="auto"`` runs on a GPU; ``tric-cx1`` the old sequential one):

* ``single``: one image a call, ``tricodec.encode(img, device="cuda")`` / ``tricodec.decode(data,
  device="cuda")``;
* ``batch B``: ``tricodec.encode_batch`` / ``decode_batch`` on batches of B images (default 8 and 24;
  a folder with fewer images is cycled to fill a batch).

Figures are MB/s of raw pixels (H x W x C bytes), total bytes / total time. Every unit (an image, a
batch) runs once as a warm-up (Triton's JIT compiles here, and may again for a new shape), then
``--repeat`` times timed, each call between ``torch.cuda.synchronize()``. Every output is checked,
outside the timed calls: the GPU's bytes equal the CPU twin's (``device="cpu"``), the GPU decodes the
CPU's bytes and the CPU decodes the GPU's bytes, both to the original pixels. The CPU twin's own calls
(one per unit: they make the reference bytes and the cross decode) are reported as ``cpu`` rows.

    python perf/bench_gpu.py ../shared/data/kodak --json bench_gpu.json --max-seconds 240
    python perf/bench_gpu.py ../shared/data/kodak --model tric-cx1

``--max-seconds N`` bounds the run: the phases (single, then each batch size) share N seconds, and a
phase stops taking new units once its share (plus what earlier phases left) is spent. Exit codes: 0 all
outputs checked, 1 a mismatch, 2 no CUDA GPU (or no images). ``--interpret`` runs without a GPU under
the Triton interpreter on tiny crops, to check the script itself (slow; its numbers mean nothing).
"""
from __future__ import annotations

import argparse
import json
import math
import os
import platform
import shlex
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_DIR = REPO_ROOT.parent / "shared" / "data" / "kodak"
SUFFIXES = {".png", ".ppm", ".pgm", ".bmp", ".tif", ".tiff", ".webp"}
KEPT_MODES = ("L", "RGB", "RGBA")      # other modes are converted to RGB
INTERPRET_CROP = (8, 6)                # --interpret: images cropped to this (W, H)
NO_GPU = ("bench_gpu: no CUDA GPU is visible to torch here; this benchmark measures tricodec's Triton "
          "kernels on a GPU, so there is nothing to measure (CPU figures: perf/bench_codecs.py; "
          "--interpret checks this script under the Triton interpreter).")


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("folder", nargs="?", type=Path, default=DEFAULT_DIR, help=f"images (default {DEFAULT_DIR})")
    p.add_argument("--model", default=None, help="model name or weights file (default: the shipped default)")
    p.add_argument("--batch-sizes", default="8,24", help="comma-separated batch sizes (default 8,24; '' for none)")
    p.add_argument("--repeat", type=int, default=2, help="timed runs per image or batch after one warm-up")
    p.add_argument("--limit", type=int, default=0, help="use at most this many images (0: all)")
    p.add_argument("--max-seconds", type=float, default=0, help="stop taking new images after this long (0: no bound)")
    p.add_argument("--json", type=Path, default=None, metavar="OUT", help="also write the report as JSON here")
    p.add_argument("--interpret", action="store_true",
                   help="no GPU: Triton interpreter on tiny crops (checks the script)")
    args = p.parse_args(argv)
    args.batch_sizes = [int(s) for s in args.batch_sizes.split(",") if s.strip()]
    if args.repeat < 1 or any(b < 1 for b in args.batch_sizes):
        p.error("--repeat and batch sizes must be >= 1")
    return args


# ---------------------------------------------------------------- pure helpers (tested without a GPU)

def raw_bytes(image) -> int:
    """Raw pixel bytes of a PIL image: H x W x C (one byte a sample for the 8-bit modes measured here)."""
    return image.width * image.height * len(image.getbands())


def mb_per_s(nbytes: int, seconds: float) -> float | None:
    """Decimal MB (10^6 bytes) per second; None when nothing was timed."""
    return nbytes / 1e6 / seconds if seconds > 0 else None


def batches(n_images: int, size: int) -> list[list[int]]:
    """Image indices of ceil(n / size) batches of ``size``, cycling through the images to fill them."""
    if n_images <= 0:
        return []
    return [[(k * size + j) % n_images for j in range(size)] for k in range(math.ceil(n_images / size))]


def phase_deadlines(start: float, max_seconds: float, n_phases: int) -> list[float]:
    """End time of each phase: equal shares of ``max_seconds`` (what a phase leaves goes to the next)."""
    if max_seconds <= 0:
        return [math.inf] * n_phases
    return [start + max_seconds * (i + 1) / n_phases for i in range(n_phases)]


@dataclass
class Row:
    """Timed passes of one view on one device: each pass codes ``images`` images of ``raw_bytes`` bytes."""
    view: str
    device: str
    batch: int
    images: int = 0           # images coded in timed passes (encode; decode codes as many)
    raw_bytes: int = 0        # their raw pixel bytes
    encode_s: float = 0.0
    decode_s: float = 0.0

    def add(self, images: int, nbytes: int, encode_s: float, decode_s: float) -> None:
        self.images += images
        self.raw_bytes += nbytes
        self.encode_s += encode_s
        self.decode_s += decode_s

    def summary(self) -> dict:
        per = (lambda s: 1e3 * s / self.images) if self.images else (lambda s: None)
        return {**asdict(self),
                "encode_mb_s": mb_per_s(self.raw_bytes, self.encode_s),
                "decode_mb_s": mb_per_s(self.raw_bytes, self.decode_s),
                "encode_ms_per_image": per(self.encode_s), "decode_ms_per_image": per(self.decode_s)}


def _cell(v, fmt: str) -> str:
    return "-" if v is None else format(v, fmt)


def markdown(report: dict) -> str:
    """The report as markdown: the setting as a list, then one table row per Row summary."""
    env = report["env"]
    lines = [f"## bench_gpu: {env['model']} on {env['gpu']}", "",
             f"- GPU: {env['gpu']} (device `{env['device']}`)",
             f"- versions: torch {env['torch']}, triton {env['triton']}, python {env['python']}",
             f"- command: `{env['command']}`",
             f"- commit: {env['commit']}",
             f"- images: {report['images_measured']} of {report['images_found']} in {env['folder']}; "
             f"timed runs: {env['repeat']} after 1 warm-up per image or batch",
             f"- wall: {report['wall_s']:.1f} s" + ("; stopped early (--max-seconds): " + ", ".join(report['stopped'])
                                                     if report["stopped"] else ""),
             "- checks: " + (f"{len(report['mismatches'])} MISMATCHES OR ERRORS, first: {report['mismatches'][0]}"
                             if report["mismatches"] else
                             "all outputs checked (GPU bytes == CPU twin bytes; both devices decode both "
                             "devices' bytes to the original pixels)"),
             "",
             "| view | device | batch | images | raw MB | encode MB/s | decode MB/s | encode ms/image "
             "| decode ms/image |",
             "|---|---|---:|---:|---:|---:|---:|---:|---:|"]
    for r in report["rows"]:
        lines.append(f"| {r['view']} | {r['device']} | {r['batch']} | {r['images']} | {r['raw_bytes'] / 1e6:.2f} | "
                     f"{_cell(r['encode_mb_s'], '.2f')} | {_cell(r['decode_mb_s'], '.2f')} | "
                     f"{_cell(r['encode_ms_per_image'], '.2f')} | {_cell(r['decode_ms_per_image'], '.2f')} |")
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------- setting

def git_commit() -> str:
    """HEAD's short hash (+ ' (dirty)'), or 'unknown' where there is no git checkout (a copied tree)."""
    def git(*a):
        return subprocess.run(["git", "-C", str(REPO_ROOT), *a], capture_output=True, text=True, timeout=10)
    try:
        head = git("rev-parse", "--short", "HEAD")
        if head.returncode:
            return "unknown (no git checkout)"
        dirty = git("status", "--porcelain", "--untracked-files=no").stdout.strip()
        return head.stdout.strip() + (" (dirty)" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        return "unknown (no git)"


def gpu_name(interpret: bool) -> str | None:
    """torch.cuda.get_device_name(0); 'none (Triton interpreter)' with --interpret; None without a GPU."""
    try:
        import torch
    except Exception:
        return "none (Triton interpreter)" if interpret else None
    if torch.cuda.is_available() and not interpret:
        return torch.cuda.get_device_name(0)
    return "none (Triton interpreter)" if interpret else None


def environment(args, argv, gpu: str, device: str, model_name: str) -> dict:
    import numpy
    import torch
    import triton
    return {"gpu": gpu, "device": device, "model": model_name, "torch": torch.__version__,
            "triton": triton.__version__, "numpy": numpy.__version__, "python": platform.python_version(),
            "cpu_threads": os.cpu_count(), "commit": git_commit(), "folder": str(args.folder), "repeat": args.repeat,
            "command": "python " + shlex.join(sys.argv if argv is None else ["perf/bench_gpu.py", *argv])}


def image_paths(folder: Path, limit: int) -> list[Path]:
    paths = sorted(p for p in folder.iterdir() if p.suffix.lower() in SUFFIXES) if folder.is_dir() else []
    return paths[:limit] if limit else paths


def load_image(path: Path, crop: tuple | None):
    """The image as measured: 8-bit L, RGB or RGBA (others converted to RGB), cropped with --interpret."""
    from PIL import Image
    image = Image.open(path)
    if image.mode not in KEPT_MODES:
        image = image.convert("RGB")
    if crop:
        image = image.crop((0, 0, min(crop[0], image.width), min(crop[1], image.height)))
    image.load()
    return image


# ---------------------------------------------------------------- measuring

class Checker:
    """Collects mismatches and errors (a bench that prints figures for wrong output would be worse than none)."""

    def __init__(self):
        self.mismatches: list[str] = []

    def expect(self, ok: bool, what: str) -> None:
        if not ok:
            self.mismatches.append(what)
            print(f"  MISMATCH: {what}", file=sys.stderr)

    def pixels(self, got, want, what: str) -> None:
        self.expect(got.mode == want.mode and got.size == want.size and got.tobytes() == want.tobytes(), what)


def timed(fn, sync):
    """(fn(), wall seconds), the device synchronised before and after."""
    sync()
    t = time.perf_counter()
    out = fn()
    sync()
    return out, time.perf_counter() - t


def warm_up_cpu(tc, images, model) -> None:
    """Compile the CPU twin's numba code before anything is timed (a small crop of each mode)."""
    for image in {im.mode: im for im in images}.values():
        crop = image.crop((0, 0, min(32, image.width), min(32, image.height)))
        tc.decode(tc.encode(crop, device="cpu", model=model), device="cpu", model=model)


def measure_image(tc, name, image, model, device, repeat, sync, rows, check) -> None:
    """One image through encode/decode on ``device`` (1 warm-up + ``repeat`` timed) and the CPU twin."""
    gpu, cpu = rows
    ref, t_enc_cpu = timed(lambda: tc.encode(image, device="cpu", model=model), sync)
    for it in range(repeat + 1):          # it == 0: warm-up (JIT), checked, not timed
        data, t_enc = timed(lambda: tc.encode(image, device=device, model=model), sync)
        check.expect(data == ref, f"{name}: {device} bytes differ from the CPU twin's")
        back, t_dec = timed(lambda: tc.decode(ref, device=device, model=model), sync)   # CPU bytes on the GPU
        check.pixels(back, image, f"{name}: {device} decode of the CPU's bytes")
        if it:
            gpu.add(1, raw_bytes(image), t_enc, t_dec)
    back, t_dec_cpu = timed(lambda: tc.decode(data, device="cpu", model=model), sync)   # GPU bytes on the CPU
    check.pixels(back, image, f"{name}: CPU decode of the {device} bytes")
    cpu.add(1, raw_bytes(image), t_enc_cpu, t_dec_cpu)


def measure_batch(tc, label, images, model, device, repeat, sync, rows, check) -> None:
    """One batch through encode_batch/decode_batch on ``device`` (1 warm-up + ``repeat`` timed) and on the
    CPU twin (whose bytes are the reference)."""
    gpu, cpu = rows
    nbytes = sum(map(raw_bytes, images))
    refs, t_enc_cpu = timed(lambda: tc.encode_batch(images, device="cpu", model=model), sync)
    for it in range(repeat + 1):
        datas, t_enc = timed(lambda: tc.encode_batch(images, device=device, model=model), sync)
        check.expect(datas == refs, f"{label}: {device} encode_batch bytes differ from the CPU twin's")
        backs, t_dec = timed(lambda: tc.decode_batch(refs, device=device, model=model), sync)
        for k, (back, image) in enumerate(zip(backs, images)):
            check.pixels(back, image, f"{label} image {k}: {device} decode_batch of the CPU's bytes")
        if it:
            gpu.add(len(images), nbytes, t_enc, t_dec)
    backs, t_dec_cpu = timed(lambda: tc.decode_batch(datas, device="cpu", model=model), sync)
    for k, (back, image) in enumerate(zip(backs, images)):
        check.pixels(back, image, f"{label} image {k}: CPU decode_batch of the {device} bytes")
    cpu.add(len(images), nbytes, t_enc_cpu, t_dec_cpu)


def out_of_time(first: bool, deadline: float, final: float) -> bool:
    """A phase stops at its deadline, but measures one unit at least unless the whole run is out of time."""
    now = time.perf_counter()
    return now > final or (not first and now > deadline)


def run_phase(tc, paths, crop, model, device, args, sync, size, deadlines, check) -> tuple[list[Row], bool]:
    """Single images (``size`` None) or batches of ``size`` until ``deadlines[0]`` -> (rows: device, cpu twin;
    whether it stopped early)."""
    view = "single" if size is None else f"batch {size}"
    rows = (Row(view, device, size or 1), Row(view, "cpu (twin)", size or 1))
    units = [[i] for i in range(len(paths))] if size is None else batches(len(paths), size)
    for k, unit in enumerate(units):
        if out_of_time(k == 0, deadlines[0], deadlines[-1]):
            return list(rows), True
        label = paths[unit[0]].name if size is None else f"{view} #{k}"
        try:        # an unreadable file or a failing call is reported with the rest, not a traceback
            images = [load_image(paths[i], crop) for i in unit]
            measure = measure_image if size is None else measure_batch
            measure(tc, label, images[0] if size is None else images, model, device, args.repeat, sync, rows, check)
        except Exception as e:
            check.expect(False, f"{label}: {type(e).__name__}: {e}")
        print(f"  {view}: {k + 1}/{len(units)}", flush=True)
    return list(rows), False


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.interpret:
        os.environ["TRITON_INTERPRET"] = "1"   # before any kernel module is imported
    gpu = gpu_name(args.interpret)
    if gpu is None:
        print(NO_GPU, file=sys.stderr)
        return 2
    paths = image_paths(args.folder, args.limit)
    if not paths:
        print(f"bench_gpu: no images ({', '.join(sorted(SUFFIXES))}) in {args.folder}", file=sys.stderr)
        return 2
    import torch
    import tricodec as tc

    device = "triton" if args.interpret else "cuda"
    sync = torch.cuda.synchronize if device == "cuda" else (lambda: None)
    crop = INTERPRET_CROP if args.interpret else None
    model = tc.load_model(args.model)
    env = environment(args, argv, gpu, device, model.name)
    print(f"bench_gpu: {model.name} on {gpu}, {len(paths)} images in {args.folder}", flush=True)
    start = time.perf_counter()
    warm_up_cpu(tc, [load_image(paths[0], crop)], model)
    sizes = [None, *args.batch_sizes]               # None: the single-image phase
    deadlines = phase_deadlines(start, args.max_seconds, len(sizes))
    check, rows, stopped = Checker(), [], []
    for i, size in enumerate(sizes):
        phase_rows, cut = run_phase(tc, paths, crop, model, device, args, sync, size, deadlines[i:], check)
        rows += phase_rows
        stopped += [phase_rows[0].view] if cut else []
        report = {"env": env, "complete": i == len(sizes) - 1, "images_found": len(paths),
                  "images_measured": rows[0].images // args.repeat, "wall_s": time.perf_counter() - start,
                  "stopped": stopped, "mismatches": check.mismatches, "rows": [r.summary() for r in rows]}
        if args.json:      # after every phase: a run killed later still leaves its figures so far
            args.json.parent.mkdir(parents=True, exist_ok=True)
            args.json.write_text(json.dumps(report, indent=2) + "\n")
    print("\n" + markdown(report))
    if args.interpret:
        print("(--interpret: Triton interpreter on CPU, tiny crops; these numbers say nothing about a GPU)")
    return 1 if check.mismatches else 0

if __name__ == "__main__":
    sys.exit(main())
