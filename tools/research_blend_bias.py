"""Research: bias cancellation on tric-wf2's predictor (issue 13), measured with real coded bytes.

    python tools/research_blend_bias.py ../shared/data [--sets kodak dev dev_gray] [--limit N]

For each image: tric-wf2's per-plane predictor params (``blend_select.choose_params``), the blend's
prediction before rounding (``pv4``, quarter units, recomputed here exactly as ``blend_ref`` does; the
script asserts that the baseline residuals are ``compute_blend_residuals``' byte for byte), then per
variant a post-hoc change of the prediction that a decoder could reproduce, the residuals, and their
bytes through the real wavefront coder twin (``wavefront_ref.encode_wavefront_lanes`` with tric-wf2's
tables; bytes = LANES + SIDE + the variant's extra side information). The baseline is also checked
against ``model.encode_image`` on the CPU backend (the file's SIDE + LANES sections).

Variants (``e4 = 4 v - pv4``: the blend's error in quarter units, v the plane minus its colour reference):

* ``base``: tric-wf2 as shipped.
* ``static <ctx> mean|median``: CALIC-like bias cancellation: per context, the image's mean (or median) e4
  (rounded, int8, sent as side info: one byte per context per plane) is added to pv4 before rounding.
* ``adapt <ctx> mean|median``: the same contexts, but the bias comes from pixels already known to a
  wavefront decoder: in the GPU scan's order (strips of ``SCAN_ROWS`` rows one after another; in a
  strip, diagonals x + 2y) a pixel sees the earlier strips and its strip's diagonals <= d - 2. ``mean``:
  integer running sums, halved when a context reaches ``ADAPT_MAX`` uses; ``median``: a tracker moved one
  quarter unit per committed diagonal towards the side most errors fell on. No side info.
* ``..., blend planes``: the bias on blend-mode planes only (MED planes keep plain MED); ``..., per-plane
  choice``: the encoder tries every subset of the planes with real bytes and records one byte of flags
  (an upper bound for a per-plane switch).
* ``subbias``: each sub-predictor of the blend gets its own static bias per gradient context (16
  contexts: signs of W-NW, N-NW, NE-N x 2 activity buckets; 6 x 16 int8 per blend plane, 16 per MED plane);
  the blend's errors and weights then use the corrected sub-predictors (mean or median per context).

Contexts of the bias (all computed from causal values: neighbours of v, pv4, the blend's error sums):

* ``t4`` (16): bits 4X > pv4 for X = W, N, NW, NE;
* ``t4e4`` (64): t4 x 4 buckets of the activity (blend planes: min_i S_i; MED planes: |W-NW|+|N-NW|+|NE-N|);
* ``t6e4`` (256): t4e4 x bits for WW, NN;
* ``t4e4s2`` (256): t4e4 x the signs of the blend's own error e4 at W and at N.

Research only: nothing here is a codec path; the numba loop below is written for clarity, not speed.
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
from numba import njit
from PIL import Image

import tricodec
from tricodec import blend_ref as br
from tricodec import blend_select as bs
from tricodec import wavefront_ref as wr
from tricodec.codec import backend_for
from tricodec.context_model import plane_kinds

MODEL = tricodec.load_model("tric-wf2")
SCAN_ROWS = 256                       # the GPU scan's strip height (kernels/blend_scan.py BLOCK_H)
ADAPT_MAX = 256                       # adaptive sums are halved when a context has this many uses
S_EDGES = np.array([40, 120, 320])    # activity buckets of min_i S_i (blend planes; quarter units, 10 terms)
G_EDGES = np.array([3, 9, 24])        # ... of |W-NW| + |N-NW| + |NE-N| (MED planes)
CONTEXTS = ("t4", "t4e4", "t6e4", "t4e4s2")
N_CTX = {"t4": 16, "t4e4": 64, "t6e4": 256, "t4e4s2": 256, "g16": 16}


# ---- images ----

def load(folder: Path, limit: int | None) -> list:
    files = sorted(p for p in folder.iterdir() if p.suffix.lower() in (".png", ".ppm", ".pgm", ".tif", ".tiff"))
    out = []
    for f in files[:limit]:
        im = Image.open(f)
        a = np.asarray(im.convert("L" if im.mode in ("L", "I;16", "1") else "RGB"))
        out.append((f.name, a[:, :, None] if a.ndim == 2 else a))
    return out


def planes_of(arr: np.ndarray) -> tuple:
    order, refs = MODEL.plane_layout(arr.shape[2])
    return np.ascontiguousarray(arr.transpose(2, 0, 1)[list(order)]), order, refs


# ---- the blend, recomputed with its pre-rounding prediction exposed ----

def neighbours(v: np.ndarray) -> dict:
    """W, N, NW, NE, NNE, WW, NN of every pixel of v (H, W) with blend_ref's fallbacks at the edges (WW
    falls back to W, NN to N: used only by the contexts)."""
    h, w = v.shape
    W = np.zeros_like(v)
    W[:, 1:] = v[:, :-1]
    W[1:, 0] = v[:-1, 0]
    N = W.copy()
    N[1:] = v[:-1]
    NW = N.copy()
    NW[1:, 1:] = v[:-1, :-1]
    NE = N.copy()
    NE[1:, :-1] = v[:-1, 1:]
    NNE = NE.copy()
    NNE[2:, :-1] = v[:-2, 1:]
    WW = W.copy()
    WW[:, 2:] = v[:, :-2]
    NN = N.copy()
    NN[2:] = v[:-2]
    return dict(W=W, N=N, NW=NW, NE=NE, NNE=NNE, WW=WW, NN=NN)


def sub_predictions(nb: dict) -> np.ndarray:
    """The six sub-predictors (quarter units), int32 (6, H, W)."""
    W, N, NW, NE, NNE = nb["W"], nb["N"], nb["NW"], nb["NE"], nb["NNE"]
    med = np.where(NW >= np.maximum(W, N), np.minimum(W, N),
                   np.where(NW <= np.minimum(W, N), np.maximum(W, N), W + N - NW))
    return np.stack([4 * med, 4 * W, 4 * N, 4 * (W + NE - N), 4 * (N + NE - NNE), 2 * (W + N) + NE - NW])


@njit(cache=True)
def _blend(v, s, blend, lut, pv4, smin):
    """pv4 (quarter units, before rounding) and min_i S_i of every pixel, from v (H, W) and the
    sub-predictions s (6, H, W) (possibly bias-corrected): blend_ref's rule, straight (errors of the
    given s, weights WEIGHT_LUT[S_i], integer division)."""
    h, w = v.shape
    off = 4096
    e = np.zeros((6, h, w), np.int32)
    for y in range(h):
        for x in range(w):
            if not blend:
                pv4[y, x] = s[0, y, x]
                smin[y, x] = 0
                continue
            tw = np.int64(0)
            ts = np.int64(0)
            mn = 1 << 30
            for i in range(6):
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
                mn = min(mn, S)
                wi = np.int64(lut[S])
                tw += wi
                ts += wi * np.int64(s[i, y, x] + off)
            pv4[y, x] = s[0, y, x] if tw == 0 else np.int32((ts + (tw >> 1)) // tw) - off
            smin[y, x] = mn
            v4 = 4 * v[y, x]
            for i in range(6):
                e[i, y, x] = min(abs(v4 - s[i, y, x]), 4080)


def plane_state(planes: np.ndarray, params: np.ndarray, k: int, sub_bias=None, gctx=None) -> dict:
    """Everything the variants need of plane k: x, ref, v, its neighbours, pv4, min S_i (or the MED
    planes' gradient activity), and whether the plane has a reference.  ``sub_bias`` (6, G) int with
    ``gctx`` (H, W): add sub_bias[i, gctx] to sub-predictor i first (the ``subbias`` variant)."""
    mode, q1, c1, q2, c2 = (int(t) for t in params[k])
    x = planes[k].astype(np.int32)
    ref = np.zeros_like(x)
    if q1 >= 0:
        ref += c1 * planes[q1].astype(np.int32)
    if q2 >= 0:
        ref += c2 * planes[q2].astype(np.int32)
    ref >>= 2
    v = x - ref
    nb = neighbours(v)
    s = np.ascontiguousarray(sub_predictions(nb), dtype=np.int32)
    if sub_bias is not None:
        s += sub_bias[:, gctx].astype(np.int32)
    pv4 = np.empty_like(v)
    act = np.empty_like(v)
    _blend(v, s, mode == br.MODE_BLEND, br.WEIGHT_LUT, pv4, act)
    grad = np.abs(nb["W"] - nb["NW"]) + np.abs(nb["N"] - nb["NW"]) + np.abs(nb["NE"] - nb["N"])
    if mode != br.MODE_BLEND:
        act = grad
    return dict(x=x, ref=ref, v=v, nb=nb, s=s, pv4=pv4, act=act, grad=grad, blend=mode == br.MODE_BLEND,
                has_ref=q1 >= 0 or q2 >= 0)


def residuals(st: dict, bias4=None) -> np.ndarray:
    """uint8 residual symbols of one plane for pv4 + bias4 (quarter units), as blend_ref rounds them."""
    p4 = st["pv4"] if bias4 is None else st["pv4"] + bias4
    pv = (p4 + 2) >> 2                                      # = ((pv4 + 2 + OFF) >> 2) - OFF / 4
    pv[0, 0] = 0 if st["has_ref"] else 128
    pred = np.clip(pv + st["ref"], 0, 255)
    return ((st["x"] - pred + 128) & 255).astype(np.uint8)


# ---- contexts and biases ----

def context(st: dict, kind: str) -> np.ndarray:
    nb, pv4 = st["nb"], st["pv4"]
    t = np.zeros(pv4.shape, np.int32)
    for b, name in enumerate(("W", "N", "NW", "NE")):
        t |= (4 * nb[name] > pv4).astype(np.int32) << b
    if kind == "t4":
        return t
    e = np.searchsorted(S_EDGES if st["blend"] else G_EDGES, st["act"], side="right").astype(np.int32)
    c = t * 4 + e
    if kind == "t4e4":
        return c
    if kind == "t6e4":
        return (c * 2 + (4 * nb["WW"] > pv4)) * 2 + (4 * nb["NN"] > pv4)
    if kind == "t4e4s2":
        e4 = 4 * st["v"] - pv4
        en = neighbours(e4)
        return (c * 2 + (en["W"] > 0)) * 2 + (en["N"] > 0)
    raise ValueError(kind)


def gradient_context(st: dict) -> np.ndarray:
    """``g16``: signs of W-NW, N-NW, NE-N x 2 buckets of their activity (no prediction needed)."""
    nb = st["nb"]
    g = ((nb["W"] > nb["NW"]).astype(np.int32) * 2 + (nb["N"] > nb["NW"])) * 2 + (nb["NE"] > nb["N"])
    return g * 2 + (st["grad"] > 8)


def _round_mean(s: np.ndarray, n: np.ndarray) -> np.ndarray:
    """round(s / n) in integers, 0 where n == 0."""
    return np.where(n > 0, (2 * s + n) // np.maximum(2 * n, 1), 0)


def static_table(err: np.ndarray, ctx: np.ndarray, n_ctx: int, stat: str = "mean") -> np.ndarray:
    """int8 per context: the rounded mean (or the median) of err over the image (the (0, 0) pixel left
    out: its prediction is fixed)."""
    m = np.ones(err.shape, bool)
    m[0, 0] = False
    e, c = err[m].astype(np.int64), ctx[m]
    if stat == "mean":
        t = _round_mean(np.bincount(c, weights=e.astype(np.float64), minlength=n_ctx).astype(np.int64),
                        np.bincount(c, minlength=n_ctx).astype(np.int64))
    else:
        order = np.lexsort((e, c))
        cs, es = c[order], e[order]
        lo = np.searchsorted(cs, np.arange(n_ctx), side="left")
        hi = np.searchsorted(cs, np.arange(n_ctx), side="right")
        t = np.where(hi > lo, es[np.maximum((lo + hi - 1) // 2, 0) % max(len(es), 1)], 0)
    return np.clip(t, -128, 127).astype(np.int8)


@njit(cache=True)
def _adaptive_bias(err, ctx, n_ctx, scan_rows, cap, median, out):
    """Bias of every pixel from the pixels of its context a wavefront decoder already has: earlier strips
    of ``scan_rows`` rows, and in the strip diagonals <= d - 2 (d = x + 2 * local row).  Diagonal d is
    committed before diagonal d + 2 reads, each context once per commit (order-independent).
    ``median`` false: the running mean, integer sums halved when a context reaches ``cap`` uses;
    true: a median tracker, the bias moves one quarter unit a commit towards the side of most errors."""
    h, w = err.shape
    S = np.zeros(n_ctx, np.int64)
    N = np.zeros(n_ctx, np.int64)
    B = np.zeros(n_ctx, np.int64)
    pend_c = np.zeros((2, scan_rows), np.int32)
    pend_e = np.zeros((2, scan_rows), np.int32)
    pend_n = np.zeros(2, np.int64)
    for y0 in range(0, h, scan_rows):
        rows = min(scan_rows, h - y0)
        n_diag = (w - 1) + 2 * (rows - 1) + 1
        for d in range(n_diag + 2):                  # two more: commit the strip's last diagonals
            slot = d & 1
            for j in range(pend_n[slot]):            # commit diagonal d - 2
                c = pend_c[slot, j]
                if median:
                    e = pend_e[slot, j]
                    S[c] += 1 if e > B[c] else (-1 if e < B[c] else 0)
                else:
                    S[c] += pend_e[slot, j]
                    N[c] += 1
            for j in range(pend_n[slot]):
                c = pend_c[slot, j]
                if median:
                    B[c] += 1 if S[c] > 0 else (-1 if S[c] < 0 else 0)
                    S[c] = 0
                elif N[c] >= cap:
                    S[c] = S[c] // 2 if S[c] >= 0 else -((-S[c]) // 2)
                    N[c] //= 2
            pend_n[slot] = 0
            if d >= n_diag:
                continue
            lo = max(0, (d - w + 2) // 2)
            hi = min(rows, d // 2 + 1)
            for i in range(lo, hi):
                y = y0 + i
                x = d - 2 * i
                c = ctx[y, x]
                if median:
                    out[y, x] = B[c]
                else:
                    out[y, x] = 0 if N[c] == 0 else (2 * S[c] + N[c]) // (2 * N[c])
                if y == 0 and x == 0:
                    continue
                pend_c[slot, pend_n[slot]] = c
                pend_e[slot, pend_n[slot]] = err[y, x]
                pend_n[slot] += 1


def adaptive_bias(err: np.ndarray, ctx: np.ndarray, n_ctx: int, stat: str = "mean") -> np.ndarray:
    out = np.zeros(err.shape, np.int32)
    _adaptive_bias(err.astype(np.int32), ctx.astype(np.int32), n_ctx, SCAN_ROWS, ADAPT_MAX, stat == "median", out)
    return out


# ---- coding ----

def coded_bytes(res: np.ndarray) -> int:
    """LANES + SIDE bytes of tric-wf2's coder for these residual planes (P, H, W)."""
    p, h, w = res.shape
    counts, words = wr.encode_wavefront_lanes(res, plane_kinds(p), *MODEL.arrays, MODEL.update_steps,
                                              MODEL.lane_rows(w, h))
    return 12 * counts.shape[0] + 2 * words.size + 4 + 5 * p


def _best_of_planes(base: list, new: list, side: list) -> tuple:
    """The encoder's per-plane choice (1 bit a plane, one byte in all) by real bytes: every subset of
    the planes takes the variant, the others keep the baseline -> (bytes, side bytes) of the smallest."""
    best = None
    for mask in range(1 << len(base)):
        on = [(mask >> k) & 1 for k in range(len(base))]
        extra = 1 + sum(s for s, o in zip(side, on) if o)
        b = coded_bytes(np.stack([n if o else r for r, n, o in zip(base, new, on)])) + extra
        if best is None or b < best[0]:
            best = (b, extra)
    return best


def variants(arr: np.ndarray, check_file: bool) -> dict:
    """(bytes, side bytes) of every variant for one image (H, W, C)."""
    planes, order, refs = planes_of(arr)
    params = bs.choose_params(planes)
    n = planes.shape[0]
    sts = [plane_state(planes, params, k) for k in range(n)]
    base = [residuals(st) for st in sts]
    assert np.array_equal(np.stack(base), br.compute_blend_residuals(planes, params)), "twin mismatch"
    out = {"base": (coded_bytes(np.stack(base)), 0)}
    if check_file:
        secs = MODEL.encode_image(arr, order, refs, backend_for("cpu", MODEL))
        real = sum(len(payload) for _, payload in secs)
        assert real == out["base"][0], (real, out["base"][0])
    blend = [st["blend"] for st in sts]
    errs = [4 * st["v"] - st["pv4"] for st in sts]
    for kind in CONTEXTS:
        nc = N_CTX[kind]
        ctxs = [context(st, kind) for st in sts]
        stats = ("mean", "median") if kind in ("t4e4", "t4e4s2") else ("mean",)
        for stat in stats:
            tables = [static_table(e, c, nc, stat) for e, c in zip(errs, ctxs)]
            res = [residuals(st, t.astype(np.int32)[c]) for st, t, c in zip(sts, tables, ctxs)]
            out[f"static {kind} {stat}"] = (coded_bytes(np.stack(res)) + nc * n, nc * n)
            if stat == "median":
                side = nc * sum(blend)
                mixed = [r if on else r0 for r, r0, on in zip(res, base, blend)]
                out[f"static {kind} {stat}, blend planes"] = (coded_bytes(np.stack(mixed)) + side, side)
                out[f"static {kind} {stat}, per-plane choice"] = _best_of_planes(base, res, [nc] * n)
        for stat in stats:
            res = [residuals(st, adaptive_bias(e, c, nc, stat)) for st, e, c in zip(sts, errs, ctxs)]
            out[f"adapt {kind} {stat}"] = (coded_bytes(np.stack(res)), 0)
            if len(stats) > 1:
                mixed = [r if on else r0 for r, r0, on in zip(res, base, blend)]
                out[f"adapt {kind} {stat}, blend planes"] = (coded_bytes(np.stack(mixed)), 0)
                out[f"adapt {kind} {stat}, per-plane choice"] = _best_of_planes(base, res, [0] * n)
    # each sub-predictor's own static bias per gradient context, the blend then run on the corrected ones
    for stat in ("mean", "median"):
        sub, side = [], 0
        for k, st in enumerate(sts):
            g = gradient_context(st)
            n_sub = 6 if st["blend"] else 1
            sb = np.zeros((6, N_CTX["g16"]), np.int32)
            for i in range(n_sub):
                sb[i] = static_table(4 * st["v"] - st["s"][i], g, N_CTX["g16"], stat)
            side += n_sub * N_CTX["g16"]
            sub.append(plane_state(planes, params, k, sb, g))
        out[f"subbias g16 {stat}"] = (coded_bytes(np.stack([residuals(st) for st in sub])) + side, side)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("data", type=Path, help="folder holding the sets (e.g. ../shared/data)")
    ap.add_argument("--sets", nargs="+", default=["kodak", "dev", "dev_gray"])
    ap.add_argument("--limit", type=int, default=None, help="first N images of each set")
    ap.add_argument("--no-check", action="store_true", help="skip the check of the baseline against a real file")
    a = ap.parse_args()
    for name in a.sets:
        ims = load(a.data / name, a.limit)
        per: dict = {}
        t0 = time.perf_counter()
        for fname, arr in ims:
            for k, (b, side) in variants(arr, not a.no_check).items():
                per.setdefault(k, []).append((8 * b / arr.size, 8 * side / arr.size))
        base = np.mean([b for b, _ in per["base"]])
        print(f"{name} ({len(ims)} images, {time.perf_counter() - t0:.0f} s)")
        for k, v in per.items():
            bpsp = np.mean([b for b, _ in v])
            side = np.mean([s for _, s in v])
            print(f"  {k:38s} {bpsp:.4f} bpsp  {100 * (bpsp / base - 1):+.2f}%  (side {side:.4f} bpsp)", flush=True)


if __name__ == "__main__":
    main()
