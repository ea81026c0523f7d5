"""Throughput of the Triton path (GPU) against the CPU twins, encode and decode, on a folder of images.

Two views, both in MB/s of raw pixels (H x W x C bytes per second, aggregated: total bytes / total time):

* ``codec``: the public API, ``tricodec.encode/decode(..., device="cuda")`` against ``device="cpu"``
  (numpy at the Backend boundary: every stage uploads, runs and downloads; the encoder's side-info
  choice runs on the CPU in both);
* ``batch``: ``tricodec.encode_batch/decode_batch`` of all the images at once (on the GPU the lanes of
  all images share the kernel launches; on the CPU several images are coded at once);
* ``kernels``: the coding stages alone, on data already where the backend keeps it (GPU tensors for
  Triton, numpy for the twins), with per-stage times: for a context model (the default) encode =
  residuals + context lanes, decode = context lanes + predictor scan; for a block-scale model encode =
  residuals + table ids + rANS lanes, decode = table ids + rANS lanes + predictor scan.

Each measurement runs once as warm-up (discarded: it includes Triton's JIT) and then ``--repeat`` times;
every timed run re-checks its output inside the timed region (encode: bytes/words equal to the CPU
twin's; decode: pixels equal to the original), and a mismatch fails the run with exit code 1.

    python perf/bench_gpu.py                          # ../shared/data/dev, 5 repeats
    python perf/bench_gpu.py ../shared/data/kodak --repeat 3
    python perf/bench_gpu.py --model tric-bs2          # the block-scale kernels

Without a CUDA GPU it exits with code 2 and says so (``--interpret`` runs it anyway under the Triton
interpreter on a few tiny crops, to check the script itself: its numbers mean nothing).
"""
from __future__ import annotations

import argparse
import os
import platform
import shlex
import statistics
import sys
import time
from pathlib import Path

import numpy as np

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_DIR = REPO_ROOT.parent / "shared" / "data" / "dev"
SUFFIXES = {".png", ".ppm", ".pgm", ".bmp", ".tif", ".tiff", ".webp"}


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("folder", nargs="?", type=Path, default=DEFAULT_DIR, help=f"images (default {DEFAULT_DIR})")
    p.add_argument("--repeat", type=int, default=5, help="timed runs per measurement after one warm-up")
    p.add_argument("--limit", type=int, default=0, help="use at most this many images (0: all)")
    p.add_argument("--model", default=None, help="model name or weights file (default: the shipped default)")
    p.add_argument("--interpret", action="store_true",
                   help="no GPU: run under TRITON_INTERPRET on 16x12 crops (checks the script; numbers are meaningless)")
    return p.parse_args(argv)


def machine_lines() -> list[str]:
    import torch
    import triton

    cpu = platform.processor() or ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    u = platform.uname()
    gpu = "none (Triton interpreter)"
    if torch.cuda.is_available():
        prop = torch.cuda.get_device_properties(0)
        gpu = f"{prop.name}, {prop.total_memory / 2**30:.0f} GiB, {prop.multi_processor_count} SMs"
    return [f"machine: {u.system} {u.release} {u.machine}; cpu: {cpu or 'unknown'} x {os.cpu_count()} threads",
            f"gpu: {gpu}",
            f"versions: python {platform.python_version()}, numpy {np.__version__}, torch {torch.__version__}, "
            f"triton {triton.__version__}"]


def load_images(folder: Path, limit: int, crop: tuple | None):
    from PIL import Image

    paths = sorted(p for p in folder.iterdir() if p.suffix.lower() in SUFFIXES) if folder.is_dir() else []
    images = []
    for path in paths:
        image = Image.open(path)
        if image.mode not in ("RGB", "L"):
            image = image.convert("RGB")
        if crop:
            image = image.crop((0, 0, min(crop[0], image.width), min(crop[1], image.height)))
        image.load()
        images.append((path.name, image))
        if limit and len(images) >= limit:
            break
    return images


class Timer:
    """Accumulates wall time per named stage (synchronising the GPU at stage ends)."""

    def __init__(self, sync):
        self.sync = sync
        self.times: dict[str, list[float]] = {}

    def run(self, name, fn, *args):
        self.sync()
        t = time.perf_counter()
        out = fn(*args)
        self.sync()
        self.times.setdefault(name, []).append(time.perf_counter() - t)
        return out


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.interpret:
        os.environ["TRITON_INTERPRET"] = "1"   # before any kernel module is imported
    import torch

    if not torch.cuda.is_available() and not args.interpret:
        print("bench_gpu: no CUDA GPU is visible to torch on this machine; this benchmark measures the "
              "Triton kernels on a GPU, so there is nothing to run here (the CPU figures are in "
              "perf/bench_codecs.py).", file=sys.stderr)
        return 2

    import tricodec
    from tricodec import context_model, context_ref, predictor_ref, rans_ref
    from tricodec.backend import CPU, get_backend
    from tricodec.kernels import (context_decode, context_encode, predictor_residual, predictor_scan, rans_decode,
                                  rans_encode, table_ids)
    from tricodec.model import block_table_ids, load_model

    dev = "cuda" if torch.cuda.is_available() and not args.interpret else "cpu"
    device_name = "cuda" if dev == "cuda" else "triton"
    sync = torch.cuda.synchronize if dev == "cuda" else (lambda: None)
    command = "python " + shlex.join(sys.argv if argv is None else [sys.argv[0], *argv])
    print(f"command: {command}")
    for line in machine_lines():
        print(line)
    images = load_images(args.folder, args.limit, (16, 12) if args.interpret else None)
    if not images:
        print(f"bench_gpu: no images in {args.folder}", file=sys.stderr)
        return 2
    repeat = 1 if args.interpret else max(1, args.repeat)
    model = load_model(args.model)
    is_ctx = model.kind == "context"
    if not is_ctx:
        lane = 1 << model.lane_log2
        cdf_np = model.cdf
        cdf_t = torch.from_numpy(cdf_np.astype(np.int32)).to(dev)
    else:
        ctx_np = model.arrays
        ctx_t = [torch.from_numpy(a).to(dev) for a in ctx_np]
    get_backend(device_name)
    raw_total = sum(im.width * im.height * len(im.getbands()) for _, im in images)
    print(f"images: {len(images)} from {args.folder} ({raw_total / 1e6:.2f} MB raw), repeat {repeat} after 1 warm-up")

    failures = []

    def check(name: str, d: str, enc_ok: bool, dec_ok: bool) -> None:
        if not enc_ok:
            failures.append(f"{name}: kernel-view encode on {d} differs from the twin")
        if not dec_ok:
            failures.append(f"{name}: kernel-view decode on {d} differs from the original")
    t_codec = {("cpu", "enc"): 0.0, ("cpu", "dec"): 0.0, (device_name, "enc"): 0.0, (device_name, "dec"): 0.0}
    stages = {"cpu": Timer(lambda: None), device_name: Timer(sync)}

    for name, image in images:
        raw = image.tobytes()
        ref_bytes = tricodec.encode(image, device="cpu", model=model)
        # ---- codec view ----
        for d in ("cpu", device_name):
            for it in range(repeat + 1):
                t = time.perf_counter()
                data = tricodec.encode(image, device=d, model=model)
                ok = data == ref_bytes
                dt = time.perf_counter() - t
                if it:
                    t_codec[(d, "enc")] += dt
                if not ok:
                    failures.append(f"{name}: codec encode on {d} differs from cpu")
                t = time.perf_counter()
                back = tricodec.decode(ref_bytes, device=d, model=model)
                ok = back.tobytes() == raw
                dt = time.perf_counter() - t
                if it:
                    t_codec[(d, "dec")] += dt
                if not ok:
                    failures.append(f"{name}: codec decode on {d} differs from the original")
        # ---- kernels view ----
        arr = np.asarray(image, dtype=np.uint8).reshape(image.height, image.width, -1)
        order, refs = model.plane_layout(arr.shape[2])      # images here are RGB or L
        planes = np.ascontiguousarray(arr.transpose(2, 0, 1)[list(order)])
        p, h, w = planes.shape
        res_np = predictor_ref.compute_residuals(planes, refs)
        if is_ctx:
            kinds_np = context_model.plane_kinds(p)
            kinds_t = torch.from_numpy(kinds_np).to(dev)
            rows = model.lane_rows(w, h)
            counts_np, words_np = context_ref.encode_context_lanes(res_np, kinds_np, *ctx_np, rows)
            planes_t = torch.from_numpy(planes).to(dev)
            counts_t = torch.from_numpy(counts_np.astype(np.int64)).to(dev)
            words_t = torch.from_numpy(words_np).to(dev)
            # The same stages on both sides: (residuals, lane encoder, lane decoder, scan, inputs, equality).
            sides = {
                "cpu": (predictor_ref.compute_residuals, context_ref.encode_context_lanes,
                        context_ref.decode_context_lanes, predictor_ref.reconstruct,
                        (planes, kinds_np, ctx_np, counts_np, words_np), np.array_equal),
                device_name: (predictor_residual.compute_residuals, context_encode.encode_context_lanes,
                              context_decode.decode_context_lanes, predictor_scan.reconstruct,
                              (planes_t, kinds_t, ctx_t, counts_t, words_t),
                              lambda a, b: bool(torch.equal(a.to(b.dtype), b))),
            }
            for it in range(repeat + 1):
                for d, tm in stages.items():
                    if not it:  # warm-up into a throw-away timer
                        tm = Timer(tm.sync)
                    residual_fn, enc_fn, dec_fn, scan_fn, (pl, kinds, ctx, counts0, words0), same = sides[d]
                    tm.sync()
                    t = time.perf_counter()
                    r = tm.run("enc residuals", residual_fn, pl, refs)
                    c, wd = tm.run("enc lanes", enc_fn, r, kinds, *ctx, rows)
                    ok = same(c, counts0) and same(wd, words0)
                    tm.times.setdefault("enc total", []).append(time.perf_counter() - t)
                    tm.sync()
                    t = time.perf_counter()
                    s_ = tm.run("dec lanes", dec_fn, counts0, words0, (p, h, w), kinds, *ctx, rows)
                    x = tm.run("dec scan", scan_fn, s_, refs)
                    ok2 = same(x, pl)
                    tm.times.setdefault("dec total", []).append(time.perf_counter() - t)
                    check(name, d, ok, ok2)
            print(f"  {name}: {w}x{h}x{p}, {len(ref_bytes)} bytes ({8 * len(ref_bytes) / (w * h * p):.3f} bpsp)")
            continue
        q = model.choose_side_info(res_np, CPU)
        ids_np = block_table_ids(q, h, w, model.block_log2)
        counts_np, words_np = rans_ref.encode_lanes(res_np.reshape(-1), ids_np.reshape(-1), cdf_np, lane)
        planes_t, q_t = torch.from_numpy(planes).to(dev), torch.from_numpy(q).to(dev)
        counts_t = torch.from_numpy(counts_np.astype(np.int64)).to(dev)
        words_t = torch.from_numpy(words_np).to(dev)
        for it in range(repeat + 1):
            for d, tm in stages.items():
                if not it:  # warm-up into a throw-away timer
                    tm = Timer(tm.sync)
                if d == "cpu":
                    t = time.perf_counter()
                    r = tm.run("enc residuals", predictor_ref.compute_residuals, planes, refs)
                    i = tm.run("enc table ids", block_table_ids, q, h, w, model.block_log2)
                    c, wd = tm.run("enc rans", rans_ref.encode_lanes, r.reshape(-1), i.reshape(-1), cdf_np, lane)
                    ok = np.array_equal(c, counts_np) and np.array_equal(wd, words_np)
                    tm.times.setdefault("enc total", []).append(time.perf_counter() - t)
                    t = time.perf_counter()
                    i = tm.run("dec table ids", block_table_ids, q, h, w, model.block_log2)
                    s = tm.run("dec rans", rans_ref.decode_lanes, counts_np, words_np, i.reshape(-1), cdf_np, lane)
                    x = tm.run("dec scan", predictor_ref.reconstruct, s.reshape(p, h, w), refs)
                    ok2 = np.array_equal(x, planes)
                    tm.times.setdefault("dec total", []).append(time.perf_counter() - t)
                else:
                    sync()
                    t = time.perf_counter()
                    r = tm.run("enc residuals", predictor_residual.compute_residuals, planes_t, refs)
                    i = tm.run("enc table ids", table_ids.block_table_ids, q_t, h, w, model.block_log2)
                    c, wd = tm.run("enc rans", rans_encode.encode_lanes, r.reshape(-1), i.reshape(-1), cdf_t, lane)
                    ok = bool(torch.equal(c.to(torch.int64), counts_t) and torch.equal(wd, words_t))
                    tm.times.setdefault("enc total", []).append(time.perf_counter() - t)
                    sync()
                    t = time.perf_counter()
                    i = tm.run("dec table ids", table_ids.block_table_ids, q_t, h, w, model.block_log2)
                    s = tm.run("dec rans", rans_decode.decode_lanes, counts_t, words_t, i.reshape(-1), cdf_t, lane)
                    x = tm.run("dec scan", predictor_scan.reconstruct, s.reshape(p, h, w), refs)
                    ok2 = bool(torch.equal(x, planes_t))
                    tm.times.setdefault("dec total", []).append(time.perf_counter() - t)
                check(name, d, ok, ok2)
        print(f"  {name}: {w}x{h}x{p}, {len(ref_bytes)} bytes ({8 * len(ref_bytes) / (w * h * p):.3f} bpsp)")

    # ---- batch view: every image in one encode_batch / decode_batch call ----
    all_images = [im for _, im in images]
    all_refs = [tricodec.encode(im, device="cpu", model=model) for im in all_images]
    t_batch = {}
    for d in ("cpu", device_name):
        for it in range(repeat + 1):
            t = time.perf_counter()
            ok = tricodec.encode_batch(all_images, device=d, model=model) == all_refs
            dt = time.perf_counter() - t
            if it:
                t_batch[(d, "enc")] = t_batch.get((d, "enc"), 0.0) + dt
            t = time.perf_counter()
            backs = tricodec.decode_batch(all_refs, device=d, model=model)
            dt = time.perf_counter() - t
            ok2 = all(b.tobytes() == im.tobytes() for b, im in zip(backs, all_images))
            if it:
                t_batch[(d, "dec")] = t_batch.get((d, "dec"), 0.0) + dt
            if not (ok and ok2):
                failures.append(f"batch view on {d}: output differs")

    mb = raw_total / 1e6

    def rate(seconds):
        return f"{mb * repeat / seconds:8.2f}" if seconds > 0 else "     inf"

    print("\ncodec view (tricodec.encode/decode), MB/s of raw pixels")
    print(f"  {'device':8s} {'encode':>8s} {'decode':>8s}")
    for d in ("cpu", device_name):
        print(f"  {d:8s} {rate(t_codec[(d, 'enc')])} {rate(t_codec[(d, 'dec')])}")
    print("\nbatch view (tricodec.encode_batch/decode_batch of all images; GPU: lanes of all images per launch)")
    print(f"  {'device':8s} {'encode':>8s} {'decode':>8s}")
    for d in ("cpu", device_name):
        print(f"  {d:8s} {rate(t_batch[(d, 'enc')])} {rate(t_batch[(d, 'dec')])}")
    print("\nkernels view (coding stages on resident data), MB/s of raw pixels; stage times in ms per image "
          "(median)")
    names = (["enc total", "enc residuals", "enc lanes", "dec total", "dec lanes", "dec scan"] if is_ctx else
             ["enc total", "enc residuals", "enc table ids", "enc rans",
              "dec total", "dec table ids", "dec rans", "dec scan"])
    print(f"  {'stage':14s} " + " ".join(f"{d + ' MB/s':>12s} {d + ' ms':>10s}" for d in stages))
    for n in names:
        cells = []
        for d, tm in stages.items():
            ts = tm.times.get(n, [])
            cells.append(f"{rate(sum(ts)):>12s} {1e3 * statistics.median(ts):10.3f}" if ts else f"{'-':>12s} {'-':>10s}")
        print(f"  {n:14s} " + " ".join(cells))
    if args.interpret:
        print("\n(--interpret: Triton interpreter on CPU, tiny crops; these numbers say nothing about a GPU)")
    if failures:
        print("\nMISMATCHES:\n  " + "\n  ".join(failures), file=sys.stderr)
        return 1
    print("\nall outputs checked: identical to the CPU twins / the original pixels")
    return 0


if __name__ == "__main__":
    sys.exit(main())
