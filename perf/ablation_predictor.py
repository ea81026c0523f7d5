"""What each part of tric-wf2's predictor earns: real files through the wavefront coder, one variant a row.

    python perf/ablation_predictor.py ../shared/data/kodak ../shared/data/dev ../shared/data/dev_gray

Variants (each coded with the wavefront coder; bytes are whole .tric files' model sections):

* ``wf1``: MED on G, R-G, B-G with tric-wf1's tables (the previous default);
* ``+ colour refs``: the encoder's choice of each plane's reference, MED everywhere (tric-wf1's tables);
* ``+ blend everywhere``: the blend on every plane, references G / R-G / B-G (tric-wf1's tables);
* ``+ choice of mode``: reference and mode chosen per plane (blend_select), tric-wf1's tables;
* ``wf2``: the same with tric-wf2's tables (fitted to the blend's residuals) = the shipped default.

Prints mean per-image bpsp per folder and the change against ``wf1``, and the single-thread time of the
predictor's encode (choice + residuals) and decode scan per megapixel.
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
from PIL import Image

import tricodec
from tricodec import blend_ref as br
from tricodec import blend_select as bs
from tricodec import wavefront_ref as wr
from tricodec.context_model import plane_kinds
from tricodec.predictor_ref import compute_residuals


def _planes(path: Path) -> np.ndarray:
    im = Image.open(path)
    a = np.asarray(im.convert("L" if im.mode in ("L", "I;16", "1") else "RGB"))
    if a.ndim == 2:
        return a[None].copy()
    return np.ascontiguousarray(a.transpose(2, 0, 1)[[1, 0, 2]])


def _bits(res: np.ndarray, model) -> int:
    p, h, w = res.shape
    counts, words = wr.encode_wavefront_lanes(res, plane_kinds(p), *model.arrays, model.update_steps,
                                              model.lane_rows(w, h))
    return 8 * (12 * counts.shape[0] + 2 * words.size)


def _fixed(n: int, mode: int) -> np.ndarray:
    rows = [(mode, -1, 0, -1, 0), (mode, 0, 4, -1, 0), (mode, 0, 4, -1, 0)]
    return np.array(rows[:n] if n == 3 else rows[:1], np.int32)


def _refs_only(planes: np.ndarray) -> np.ndarray:
    p = bs.choose_params(planes)
    p[:, 0] = br.MODE_MED
    # the reference chosen with MED (choose_params picks the reference before the mode)
    return p


def variants(planes: np.ndarray, wf1, wf2) -> dict:
    n = planes.shape[0]
    chosen = bs.choose_params(planes)
    return {
        "wf1": _bits(compute_residuals(planes, (-1,) if n == 1 else (-1, 0, 0)), wf1),
        "+ colour refs": _bits(br.compute_blend_residuals(planes, _refs_only(planes)), wf1),
        "+ blend everywhere": _bits(br.compute_blend_residuals(planes, _fixed(n, br.MODE_BLEND)), wf1),
        "+ choice of mode": _bits(br.compute_blend_residuals(planes, chosen), wf1),
        "wf2": _bits(br.compute_blend_residuals(planes, chosen), wf2),
    }


def _timing(planes: np.ndarray) -> tuple[float, float]:
    params = bs.choose_params(planes)
    t = time.perf_counter()
    params = bs.choose_params(planes)
    res = br.compute_blend_residuals(planes, params)
    enc = time.perf_counter() - t
    t = time.perf_counter()
    br.reconstruct_blend(res, params)
    return enc, time.perf_counter() - t


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("folders", nargs="+", type=Path)
    a = ap.parse_args()
    wf1, wf2 = tricodec.load_model("tric-wf1"), tricodec.load_model("tric-wf2")
    for folder in a.folders:
        files = sorted(p for p in folder.iterdir() if p.suffix.lower() in (".png", ".ppm", ".pgm", ".tif", ".tiff"))
        per = {}
        enc = dec = mpx = 0.0
        for f in files:
            planes = _planes(f)
            for k, v in variants(planes, wf1, wf2).items():
                per.setdefault(k, []).append(v / planes.size)
            e, d = _timing(planes)
            enc, dec, mpx = enc + e, dec + d, mpx + planes.size / 1e6
        base = np.mean(per["wf1"])
        print(f"{folder.name} ({len(files)} images)")
        for k, v in per.items():
            print(f"  {k:20s} {np.mean(v):.4f} bpsp  {100 * (np.mean(v) / base - 1):+.2f}%")
        print(f"  predictor time: encode (choice + residuals) {1e3 * enc / mpx:.1f} ms/MP-samples, "
              f"decode scan {1e3 * dec / mpx:.1f} ms/MP-samples")


if __name__ == "__main__":
    main()
