"""Decode critical path of real .tric files, without a GPU: how many dependent steps one image needs and
how many symbols each step decodes together, for the default model (tric-wf2) next to tric-wf1 and tric-cx1
(and the opt-in tric-wf3 with ``--models``).

    python perf/parallelism.py DIR [--json] [--models tric-wf2 tric-wf1 tric-cx1 tric-wf3]

For each image (RGB or grey, read as the CLI reads it) both models encode a real file; then
* wavefront models: the twin decodes the file's strips and counts the dependent steps it actually runs:
  rANS rounds (K symbols of a step at once) of the longest strip; diagonal steps are shown too;
* context models: every symbol of a lane is one dependent step, lanes run side by side, so the longest
  lane's symbol count;
* the fused model (tric-wf3): the rANS rounds of its longest strip from the file's strip table (ceil(N_t / K)
  summed over the strip's steps: what the wavefront twin counts as it runs), with no scan after it (its
  prediction runs inside the coder's steps).
``symbols/step`` = the image's symbols / its critical path (mean), and the fewest symbols any dependent
step of the longest strip decodes (min).  ``scan`` = the steps of the reconstruction scan kernel: MED
(``kernels/predictor_scan.py``: strips of 256 rows, all planes of a strip in one wavefront on diagonals
``x + y``) or, for tric-wf2, the blend (``kernels/blend_scan.py``: strips of 256 rows, diagonals ``x + 2y``,
it reads NE and NNE); a decode's whole critical path is the coder's plus the scan's.
With ``--json`` the last line is one JSON object for the first model:
``{"images": [{"name", "steps", "symbols_per_step", "bytes"}, ...]}``.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

import tricodec
from tricodec import container as fmt
from tricodec import context_model as cm
from tricodec import wavefront_model as wm
from tricodec import wavefront_ref as wr
from tricodec.pixels import read_image

SCAN_BLOCK_H = 256   # kernels/predictor_scan.py's and blend_scan.py's BLOCK_H (not imported: needs Triton)


def _images(folder: Path):
    for path in sorted(folder.iterdir()):
        if path.is_file():
            try:
                image = read_image(path)
            except tricodec.TricodecError:
                continue
            if image.mode in ("RGB", "L"):
                yield path.name, image


def _strip_min_round(shape, lane_rows, log2k) -> int:
    """The fewest symbols any rANS round of a strip decodes (its first and last steps hold one pixel)."""
    n_planes, _, w = shape
    k = 1 << log2k
    least = None
    for t in range(wr.n_steps(n_planes, lane_rows, w)):
        n = sum(max(0, hi - lo) for lo, hi in (wr._row_range.py_func(t - 2 * p, lane_rows, w)
                                               for p in range(n_planes)))
        if n:
            last = n - k * ((n - 1) // k)
            least = last if least is None else min(least, last)
    return least or 0


def wavefront_path(data: bytes) -> dict:
    header, sections = fmt.unpack(data)
    shape = (header.channels, header.height, header.width)
    model = tricodec.load_model(header.model_name)
    lane_rows = wm.unpack_side(sections[fmt.SEC_SIDE][:4], header.height, header.width)
    counts, words = wm.unpack_lanes(sections[fmt.SEC_LANES], shape, lane_rows)
    stats = np.zeros((counts.shape[0], 2), np.int64)
    wr.decode_wavefront_lanes(counts, words, shape, cm.plane_kinds(shape[0]), *model.arrays, model.update_steps,
                              lane_rows, stats)
    longest = int(np.argmax(stats[:, 1]))
    rows = min(lane_rows, header.height - longest * lane_rows)
    return {"steps": int(stats[:, 1].max()), "diagonals": int(stats[:, 0].max()),
            "min": _strip_min_round(shape, rows, int(counts[longest, 2])), "strips": int(counts.shape[0])}


def _strip_rounds(shape, rows, log2k) -> int:
    """rANS rounds of a strip: ceil(N_t / K) summed over its steps (one after another on a GPU)."""
    n_planes, _, w = shape
    k = 1 << log2k
    total = 0
    for t in range(wr.n_steps(n_planes, rows, w)):
        n = sum(max(0, hi - lo) for lo, hi in (wr._row_range.py_func(t - 2 * p, rows, w) for p in range(n_planes)))
        total += -(-n // k)
    return total


def fused_path(data: bytes) -> dict:
    from tricodec import fused_model as fm
    header, sections = fmt.unpack(data)
    full = (header.channels, header.height, header.width)
    lane_rows, _, _, (fy, fx), _ = fm.unpack_side(sections[fmt.SEC_SIDE], full)
    shape = (header.channels, -(-header.height // fy), -(-header.width // fx))
    counts, _ = wm.unpack_lanes(sections[fmt.SEC_LANES], shape, lane_rows)
    rows = [min(lane_rows, shape[1] - g * lane_rows) for g in range(counts.shape[0])]
    rounds = [_strip_rounds(shape, r, int(c)) for r, c in zip(rows, counts[:, 2])]
    g = int(np.argmax(rounds))
    return {"steps": rounds[g], "diagonals": wr.n_steps(shape[0], rows[g], shape[2]),
            "min": _strip_min_round(shape, rows[g], int(counts[g, 2])), "strips": int(counts.shape[0])}


def context_path(data: bytes) -> dict:
    header, sections = fmt.unpack(data)
    lane_rows = cm.unpack_side(sections[fmt.SEC_SIDE], header.height, header.width)
    longest = min(lane_rows, header.height) * header.width * header.channels
    n_lanes = -(-header.height // lane_rows)
    return {"steps": longest, "diagonals": longest, "min": 1, "strips": n_lanes}


def scan_steps(height: int, width: int, planes: int, row_lag: int = 1) -> int:
    """Steps of the scan kernel: strips of SCAN_BLOCK_H rows one after another, every plane of a strip in
    the same wavefront (plane k one step behind plane k - 1, row y ``row_lag`` steps behind row y - 1: 1 for
    MED, 2 for the blend)."""
    strips = -(-height // SCAN_BLOCK_H)
    return sum(width + row_lag * (min(SCAN_BLOCK_H, height - s * SCAN_BLOCK_H) - 1) + planes - 1
               for s in range(strips))


def measure(name: str, image, model: str) -> dict:
    data = tricodec.encode(image, model=model, device="cpu")
    header = tricodec.read_header(data)
    if header.is_fallback:
        return {"name": name, "model": model, "fallback": True, "bytes": len(data)}
    m = tricodec.load_model(header.model_name)
    path = {"wavefront": wavefront_path, "fused": fused_path}.get(m.kind, context_path)(data)
    lag = 2 if getattr(m, "predictor", "med") == "blend" else 1
    symbols = header.width * header.height * header.channels
    return {"name": name, "model": model, "bytes": len(data), "symbols": symbols, **path,
            "symbols_per_step": symbols / path["steps"],
            "scan": 0 if m.kind == "fused" else scan_steps(header.height, header.width, header.channels, lag)}


def _row(r: dict) -> str:
    if r.get("fallback"):
        return f"| {r['name']} | {r['model']} | (fallback file) | | | | | {r['bytes']} |"
    return (f"| {r['name']} | {r['model']} | {r['steps']} | {r['diagonals']} | {r['symbols_per_step']:.0f} | "
            f"{r['min']} | {r['scan']} | {r['bytes']} |")


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("dir", type=Path)
    p.add_argument("--models", nargs="+", default=["tric-wf2", "tric-wf1", "tric-cx1"])
    p.add_argument("--json", action="store_true", help="end with one JSON line for the first model")
    a = p.parse_args(argv)
    if not a.dir.is_dir():
        p.error(f"{a.dir} is not a folder")
    rows = [measure(name, image, m) for name, image in _images(a.dir) for m in a.models]
    print(f"command: python perf/parallelism.py {' '.join(argv if argv is not None else sys.argv[1:])}")
    print("| image | model | coder critical path (dependent steps) | diagonal steps | symbols/step mean | min | "
          "scan steps | bytes |")
    print("|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(_row(r))
    for m in a.models:
        coded = [r for r in rows if r["model"] == m and not r.get("fallback")]
        if coded:
            print(f"{m}: {len(coded)} images, critical path max {max(r['steps'] for r in coded)}, mean "
                  f"{np.mean([r['steps'] for r in coded]):.0f}; symbols/step mean "
                  f"{np.mean([r['symbols_per_step'] for r in coded]):.0f}, min over images "
                  f"{min(r['symbols_per_step'] for r in coded):.0f}; bytes {sum(r['bytes'] for r in rows if r['model'] == m)}")
    if a.json:
        first = [r for r in rows if r["model"] == a.models[0]]
        print(json.dumps({"images": [{"name": r["name"], "steps": r.get("steps"),
                                      "symbols_per_step": r.get("symbols_per_step"), "bytes": r["bytes"]}
                                     for r in first]}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
