"""Research: per-image levers inside tric-wf2's present shape (coder on residuals only), measured with real
coded bytes (issue 13).

    python tools/research_image_levers.py ../shared/data [--sets kodak dev dev_gray] [--step K]

For each image (every K-th of each set): tric-wf2's residuals with the encoder's choices, then

* ``ls<N>``: a per-image least-squares linear predictor of v (the plane minus its colour reference) from
  N causal neighbours (W, N, NW, NE, WW, NN, NNE, NWW, NNW, NWW.., all on earlier anti-diagonals), fitted
  on every third pixel, coefficients rounded to 1/64 (2 bytes each as side information), added to the
  blend as a seventh sub-predictor (``blend+ls``) or used alone; ``per-plane best`` picks, per plane, the
  smallest of tric-wf2, blend+ls and ls alone by real bytes (every combination coded);
* ``prior oracle``: every context's starting table fitted to the image's own token counts at that
  context (mixed with the trained table as ``lam`` observations): an upper bound for any per-image
  starting tables sent as side information (their cost not counted);
* ``cap``: the tables' adaptation window (weight_lut ``min(u + 16, cap)``; shipped 512), best per image;
* ``binscale``: the activity bins read at ``activity x s`` (coarser or finer contexts), best per image;
* ``predictor params chosen by real bytes``: each plane's mode and colour reference picked by coding
  every option (coordinate descent from the encoder's choice) instead of blend_select's estimate.

Bytes: tric-wf2's LANES (+ SIDE) through the wavefront coder twin (``research_blend_bias.coded_bytes``).
Research only: nothing here is a codec path.
"""
from __future__ import annotations

import argparse
import itertools
from pathlib import Path

import numpy as np
from numba import njit

import research_blend_bias as rbb
from tricodec import blend_ref as br
from tricodec import blend_select as bs
from tricodec import context_ref as cr
from tricodec import wavefront_ref as wr
from tricodec.context_model import plane_kinds, tables_from_counts

MODEL = rbb.MODEL
INIT_A, INIT_B, BIN_A, BIN_B, LUT = MODEL.arrays
TAPS = [(0, 1), (1, 0), (1, 1), (1, -1), (0, 2), (2, 0), (2, -1), (1, 2), (2, 1), (1, -2), (2, -2), (2, 2)]


def coded(res: np.ndarray, init_a=INIT_A, init_b=INIT_B, bin_a=BIN_A, bin_b=BIN_B, lut=LUT) -> int:
    p, h, w = res.shape
    counts, words = wr.encode_wavefront_lanes(res, plane_kinds(p), init_a, init_b, bin_a, bin_b, lut,
                                              MODEL.update_steps, MODEL.lane_rows(w, h))
    return 12 * counts.shape[0] + 2 * words.size


@njit(cache=True)
def _blend_n(v, s, lut, pv4):
    """blend_ref's rule with any number of sub-predictions s (n, H, W) (quarter units) -> pv4."""
    n, h, w = s.shape
    e = np.zeros((n, h, w), np.int32)
    for y in range(h):
        for x in range(w):
            tw = np.int64(0)
            ts = np.int64(0)
            for i in range(n):
                S = 0
                if x > 0:
                    S += 2 * e[i, y, x - 1]
                if x > 1:
                    S += e[i, y, x - 2]
                if y > 0:
                    S += 2 * e[i, y - 1, x]
                    if x > 0:
                        S += 2 * e[i, y - 1, x - 1]
                    if x < w - 1:
                        S += 2 * e[i, y - 1, x + 1]
                    if y > 1:
                        S += e[i, y - 2, x]
                wi = np.int64(lut[min(S, lut.shape[0] - 1)])
                tw += wi
                ts += wi * np.int64(s[i, y, x] + 4096)
            pv4[y, x] = s[0, y, x] if tw == 0 else np.int32((ts + (tw >> 1)) // tw) - 4096
            for i in range(n):
                e[i, y, x] = min(abs(4 * v[y, x] - s[i, y, x]), 4080)


def _shifted(v: np.ndarray, dy: int, dx: int) -> np.ndarray:
    """v[y - dy, x - dx], coordinates clamped to the image (research approximation of the edge rules)."""
    h, w = v.shape
    return v[np.clip(np.arange(h) - dy, 0, h - 1)][:, np.clip(np.arange(w) - dx, 0, w - 1)]


def ls_prediction(v: np.ndarray, n_taps: int, scale: int = 64) -> np.ndarray:
    """Quarter-unit prediction of v by its per-image least-squares fit on n_taps causal neighbours."""
    x = np.stack([_shifted(v, dy, dx) for dy, dx in TAPS[:n_taps]], -1).reshape(-1, n_taps).astype(np.float64)
    c, *_ = np.linalg.lstsq(x[::3], v.reshape(-1)[::3].astype(np.float64), rcond=None)
    p = x.astype(np.int64) @ np.round(c * scale).astype(np.int64)
    return np.floor(4 * p / scale + 0.5).astype(np.int32).reshape(v.shape)


def ls_variants(sts: list, base: list) -> dict:
    out = {}
    for n_taps in (6, 12):
        with_ls, alone = [], []
        for st in sts:
            q = ls_prediction(st["v"], n_taps)
            pv4 = np.empty_like(st["v"])
            _blend_n(st["v"], np.ascontiguousarray(np.concatenate([st["s"], q[None]]), dtype=np.int32),
                     br.WEIGHT_LUT, pv4)
            with_ls.append(rbb.residuals(dict(st, pv4=pv4)))
            alone.append(rbb.residuals(dict(st, pv4=q)))
        side = 2 * n_taps * len(sts)
        out[f"blend+ls{n_taps} every plane"] = coded(np.stack(with_ls)) + side
        options = list(zip(base, with_ls, alone))
        out[f"ls{n_taps}: per-plane best of wf2 / blend+ls / ls"] = min(
            coded(np.stack([o[c] for o, c in zip(options, combo)])) for combo in
            itertools.product(range(3), repeat=len(sts))) + side + 1
    return out


def table_variants(res: np.ndarray) -> dict:
    p, h, w = res.shape
    hist_a = np.zeros((3, INIT_A.shape[1], cr.N_TOKENS), np.int64)
    hist_b = np.zeros((3, INIT_B.shape[1], cr.N_TOKENS), np.int64)
    cr.count_contexts(res, plane_kinds(p), BIN_A, BIN_B, MODEL.lane_rows(w, h), hist_a, hist_b)
    prob_a, prob_b = (np.diff(t.astype(np.float64), axis=-1) / cr.Q_ADAPT for t in (INIT_A, INIT_B))
    out = {f"prior oracle lam={lam}": coded(res, tables_from_counts(hist_a + lam * prob_a),
                                            tables_from_counts(hist_b + lam * prob_b)) for lam in (16, 64)}
    u = np.arange(LUT.size)
    out["cap: best of 128..2048 per image"] = min(
        coded(res, lut=np.minimum(u + 16, cap).astype(np.int32)) for cap in (128, 256, 512, 1024, 2048))

    def scaled(b, s):
        return b[np.minimum((np.arange(b.size) * s).astype(np.int64), b.size - 1)].astype(np.int32)
    out["binscale: best of 0.5..2 per image"] = min(
        coded(res, bin_a=scaled(BIN_A, s), bin_b=scaled(BIN_B, s)) for s in (0.5, 0.7, 1.0, 1.4, 2.0))
    return out


def params_by_real_bytes(planes: np.ndarray, params: np.ndarray, base: int) -> int:
    """Bytes with each plane's mode and colour reference chosen by real coded bytes instead of
    blend_select's entropy estimate (coordinate descent from its choice, two sweeps over the planes)."""
    best, p = base, params.copy()
    n = planes.shape[0]
    for _ in range(2):
        for k in range(n):
            for ref in (bs.REFS_RGB[k] if n >= 3 and k < 3 else ((-1, 0, -1, 0),)):
                for mode in (br.MODE_MED, br.MODE_BLEND):
                    q = p.copy()
                    q[k] = (mode,) + tuple(ref)
                    c = coded(br.compute_blend_residuals(planes, q))
                    if c < best:
                        best, p = c, q
    return best


def variants(arr: np.ndarray) -> dict:
    planes, _, _ = rbb.planes_of(arr)
    params = bs.choose_params(planes)
    sts = [rbb.plane_state(planes, params, k) for k in range(planes.shape[0])]
    base = [rbb.residuals(st) for st in sts]
    res = np.stack(base)
    assert np.array_equal(res, br.compute_blend_residuals(planes, params)), "twin mismatch"
    b = coded(res)
    return {"tric-wf2": b, **ls_variants(sts, base), **table_variants(res),
            "predictor params chosen by real bytes": params_by_real_bytes(planes, params, b)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("data", type=Path, help="folder holding the sets (e.g. ../shared/data)")
    ap.add_argument("--sets", nargs="+", default=["kodak", "dev", "dev_gray"])
    ap.add_argument("--step", type=int, default=1, help="every K-th image of each set")
    a = ap.parse_args()
    for name in a.sets:
        ims = rbb.load(a.data / name, None)[::a.step]
        per: dict = {}
        for _, arr in ims:
            for k, b in variants(arr).items():
                per.setdefault(k, []).append(8 * b / arr.size)
        base = np.mean(per["tric-wf2"])
        print(f"{name} ({len(ims)} images): LANES bpsp, change against tric-wf2")
        for k, v in per.items():
            print(f"  {k:45s} {np.mean(v):.4f}  {100 * (np.mean(v) / base - 1):+.2f}%", flush=True)


if __name__ == "__main__":
    main()
