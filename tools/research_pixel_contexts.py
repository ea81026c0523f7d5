"""Research: would contexts from *pixels* (not residuals) pay in tric-wf2's coder? (issue 13)

    python tools/research_pixel_contexts.py ../shared/data [--sets kodak dev dev_gray] [--limit N]

tric-wf2's coder sees only residuals (its decoder runs the coder first, the predictor's scan after it), so
its contexts are magnitudes and signs of neighbouring residuals.  JPEG-XL's context tree also reads
pixel values, gradients and its predictor's own error estimate; on the colour-difference planes of kodak
that is where tricodec loses (see perf/RESULTS.md: as single grey images, R-G costs JPEG-XL e7 12.6% fewer
bytes than tricodec, G the same).  A decoder can know such contexts only if the predictor runs inside the
coder's wavefront (each step's pixels rebuilt before the next step's contexts are formed): a fused
decoder, a new model kind.  This tool measures what it would earn before anyone builds it.

For each image: tric-wf2's residuals and predictor state exactly as the codec makes them
(``research_blend_bias.plane_state``: v = plane minus its colour reference, v's neighbours, the blend's
prediction before rounding ``pv4`` in quarter units, and its error estimate min_i S_i; for MED planes the
gradient |W-NW| + |N-NW| + |NE-N|), a third table C whose context is a function of those (all causal in
the wavefront schedule), and the coder's pass of ``research_coder_mixing`` (same strips, schedule,
updates; ideal code lengths) with A, B and C mixed by each rule there, and by static mixes leaning on C
(``static per image``: the best static mix per image and plane kind, which an encoder could record).  Table C's starting tables are
counted on ``DATA/train`` (the blend's residuals with the encoder's choices, as tric-wf2's A and B were).

Contexts of table C (``rel``: where W and N lie against the prediction, 7 signed levels each, in quarter
units: 0, <= 2, <= 6, > 6):

* ``frac``: the prediction's rounding, pv4 & 3 (4) x 16 bins of the error estimate;
* ``err``: 32 finer bins of the error estimate alone;
* ``rel``: rel(W) x rel(N) x 8 bins of the error estimate;
* ``rel+frac``: rel(W) x rel(N) x 6 bins x pv4 & 3;
* ``rel3``: rel(W), rel(N), rel(NE) in 5 levels each (0, <= 4, > 4) x 8 bins;
* ``rel3+frac``: the same x 3 bins x pv4 & 3;
* ``rel3+frac8``: the same with 8 bins (4000 contexts).

``--restart``: the predictor starts afresh at each coder strip's top row, as a fused decoder running its
strips in parallel must (the baseline then is tric-wf2's coder on those residuals; its real LANES are
printed too).  Research only: nothing here is a codec path.
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

import research_blend_bias as rbb
import research_coder_mixing as rcm
from tricodec import blend_select as bs
from tricodec import context_model as cm
from tricodec.context_model import plane_kinds
from tricodec.context_ref import N_TOKENS, token_of_residual

MODEL = rcm.MODEL
# research_coder_mixing's three-table rules, and static mixes leaning on table C: the encoder could pick
# one per image and plane kind and record it (no cost to a decoder), as "static per image" reports
RULES = rcm.rules_abc() + [(f"static {wa}:{wb}:{wc}", rcm.STATIC, [wa, wb, wc], (0, 0))
                           for wa, wb, wc in ((3, 3, 10), (2, 2, 12), (1, 1, 14), (0, 0, 16), (8, 0, 8), (0, 8, 8))]
KINDS = ("frac", "err", "rel", "rel+frac", "rel3", "rel3+frac", "rel3+frac8")
NC = 4000                         # table C's contexts per plane kind (the largest kind's)
S_EDGES = np.array([8, 16, 28, 44, 64, 90, 124, 170, 230, 310, 420, 570, 770, 1040, 1400], np.int64)   # blend
G_EDGES = np.array([1, 2, 3, 4, 6, 8, 11, 15, 20, 27, 36, 48, 64, 86, 115], np.int64)                  # MED


def _rel(d: np.ndarray, levels: int) -> np.ndarray:
    """Signed level of a quarter-unit distance: 7 levels (0, <= 2, <= 6, > 6 each side) or 5 (0, <= 4, > 4)."""
    a = np.abs(d)
    mag = (a > 0).astype(np.int64) + (a > 2) + (a > 6) if levels == 7 else (a > 0).astype(np.int64) + (a > 4)
    half = levels // 2
    return np.where(d < 0, half - mag, half + mag)


def _bins(st: dict, n: int) -> np.ndarray:
    """n bins (16 edges subsampled) of the blend's error estimate, or of the MED plane's gradient."""
    edges = S_EDGES if st["blend"] else G_EDGES
    return np.minimum(np.searchsorted(edges, st["act"], side="right") * n // 16, n - 1)


def context(st: dict, kind: str) -> np.ndarray:
    nb, pv4 = st["nb"], st["pv4"]
    frac = pv4 & 3
    if kind == "frac":
        return frac * 16 + _bins(st, 16)
    if kind == "err":
        edges = S_EDGES if st["blend"] else G_EDGES
        fine = np.concatenate([edges, (edges[1:] + edges[:-1]) // 2])
        return np.searchsorted(np.unique(fine), st["act"], side="right")
    rw, rn = _rel(4 * nb["W"] - pv4, 7), _rel(4 * nb["N"] - pv4, 7)
    if kind == "rel":
        return (rw * 7 + rn) * 8 + _bins(st, 8)
    if kind == "rel+frac":
        return ((rw * 7 + rn) * 6 + _bins(st, 6)) * 4 + frac
    r5 = [_rel(4 * nb[k] - pv4, 5) for k in ("W", "N", "NE")]
    if kind == "rel3":
        return ((r5[0] * 5 + r5[1]) * 5 + r5[2]) * 8 + _bins(st, 8)
    if kind == "rel3+frac":
        return (((r5[0] * 5 + r5[1]) * 5 + r5[2]) * 3 + _bins(st, 3)) * 4 + frac
    if kind == "rel3+frac8":
        return (((r5[0] * 5 + r5[1]) * 5 + r5[2]) * 8 + _bins(st, 8)) * 4 + frac
    raise ValueError(kind)


def _with_bias(st: dict) -> dict:
    """The blend plane's prediction corrected by research_blend_bias's best static bias (the median error
    of each of 64 contexts, sent as 64 int8): the state a predictor with bias cancellation would have."""
    if not st["blend"]:
        return st
    ctx = rbb.context(st, "t4e4")
    table = rbb.static_table(4 * st["v"] - st["pv4"], ctx, rbb.N_CTX["t4e4"], "median")
    return dict(st, pv4=st["pv4"] + table.astype(np.int32)[ctx])


def image_state(arr: np.ndarray, restart: bool = False, bias: bool = False) -> tuple:
    """(residuals (P, H, W) uint8, {kind: contexts (P, H, W) int32}) of one image, as tric-wf2 codes it
    (``restart``: the predictor starts afresh at each coder strip's top row, each strip predicted as an
    image of its own: what a fused decoder running strips in parallel must do; ``bias``: with
    :func:`_with_bias`)."""
    planes, _, _ = rbb.planes_of(arr)
    params = bs.choose_params(planes)
    h, w = planes.shape[1:]
    rows = MODEL.lane_rows(w, h) if restart else h
    res, ctx = [], {k: [] for k in KINDS}
    for y0 in range(0, h, rows):
        part = np.ascontiguousarray(planes[:, y0:y0 + rows])
        sts = [rbb.plane_state(part, params, k) for k in range(planes.shape[0])]
        if bias:
            sts = [_with_bias(st) for st in sts]
        res.append(np.stack([rbb.residuals(st) for st in sts]))
        for k in KINDS:
            ctx[k].append(np.stack([context(st, k) for st in sts]))
    return (np.concatenate(res, axis=1),
            {k: np.ascontiguousarray(np.concatenate(c, axis=1), dtype=np.int32) for k, c in ctx.items()})


def train_tables(train: Path) -> dict:
    """Table C's starting tables per context kind, from token counts on the training images."""
    from PIL import Image
    from tricodec.train import image_files
    hist = {k: np.zeros((3, NC, N_TOKENS), np.int64) for k in KINDS}
    for path in image_files(train):
        im = Image.open(path)
        arr = np.asarray(im.convert("L" if im.mode in ("L", "I;16", "1") else "RGB"))
        res, ctx = image_state(arr[:, :, None] if arr.ndim == 2 else arr)
        tok = token_of_residual(res)
        kinds = plane_kinds(res.shape[0])
        for k in KINDS:
            for p in range(res.shape[0]):
                np.add.at(hist[k][kinds[p]], (ctx[k][p].ravel(), tok[p].ravel()), 1)
    return {k: cm.tables_from_counts(h).astype(np.int32) for k, h in hist.items()}


def _pad(t: np.ndarray) -> np.ndarray:
    """A (3, n, 25) table set padded with flat tables to NC contexts (A, B and C stacked share a shape)."""
    out = np.tile(np.round(np.arange(N_TOKENS + 1) * rcm.Q_ADAPT / N_TOKENS).astype(np.int32), (3, NC, 1))
    out[:, :t.shape[1]] = t
    return out


def costs(arr: np.ndarray, tables: dict, restart: bool, c_every: int = 1, bias: bool = False) -> dict:
    res, ctx = image_state(arr, restart, bias)
    n, h, w = res.shape
    kinds = plane_kinds(n)
    lane_rows = MODEL.lane_rows(w, h)
    a, b = _pad(MODEL.init_a), _pad(MODEL.init_b)
    lut = MODEL.weight_lut.astype(np.int32)
    rules = RULES
    out = {}
    if restart:            # the baseline itself changes: tric-wf2's coder on the restarted residuals
        counts, words = rcm.wr.encode_wavefront_lanes(res, kinds, *MODEL.arrays, MODEL.update_steps, lane_rows)
        out["_lanes"] = 12 * counts.shape[0] + 2 * words.size
    for k in KINDS:
        cost = np.zeros((len(rules), 3))
        for y0 in range(0, h, lane_rows):
            rcm._strip_cost(res, kinds, y0, min(h, y0 + lane_rows), np.stack([a, b, _pad(tables[k])]), MODEL.bin_a,
                            MODEL.bin_b, np.array([rcm.PIXEL]), np.stack([lut, lut, lut]), MODEL.update_steps,
                            *rcm.rule_arrays(rules), cost, ctx[k], c_every)
        out[k] = cost
    return out, [r[0] for r in rules]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("data", type=Path, help="folder holding the sets and train/ (e.g. ../shared/data)")
    ap.add_argument("--sets", nargs="+", default=["kodak", "dev", "dev_gray"])
    ap.add_argument("--limit", type=int, default=None, help="first N images of each set")
    ap.add_argument("--c-every", type=int, default=1,
                    help="table C is updated at every K-th update of A and B (fewer updates: a cheaper decoder)")
    ap.add_argument("--bias", action="store_true",
                    help="blend planes with bias cancellation (research_blend_bias's static median per context; "
                         "its side information, 64 bytes a plane, not counted)")
    ap.add_argument("--restart", action="store_true",
                    help="the predictor restarts at each coder strip (a fused decoder's strips in parallel)")
    a = ap.parse_args()
    t0 = time.perf_counter()
    tables = train_tables(a.data / "train")
    print(f"table C trained on {a.data / 'train'} ({time.perf_counter() - t0:.0f} s)")
    for name in a.sets:
        ims = rcm.load(a.data / name, a.limit)
        t0 = time.perf_counter()
        per = [costs(arr, tables, a.restart, a.c_every, a.bias) for _, arr in ims]
        names = per[0][1]
        samples = np.array([arr.size for _, arr in ims], np.float64)
        print(f"\n{name} ({len(ims)} images, {time.perf_counter() - t0:.0f} s); ideal code lengths, "
              f"change against the shipped (A+B)/2" + (" on the restarted residuals" if a.restart else "")
              + (", bias-cancelled" if a.bias else ""))
        if a.restart:
            real = np.mean([8 * c["_lanes"] / n for (c, _), n in zip(per, samples)])
            print(f"  tric-wf2's real LANES on the restarted residuals: {real:.4f} bpsp")
        static = [m for m, r in enumerate(RULES) if r[1] == rcm.STATIC]
        for k in KINDS:
            full = np.array([c[k] for c, _ in per])              # (images, rules, plane kinds)
            bpsp = (full.sum(2) / samples[:, None]).mean(0)
            base = bpsp[0]
            best = int(np.argmin(bpsp))
            chosen = (full[:, static, :].min(1).sum(1) / samples).mean()   # best static mix per image and kind
            print(f"  C {k:9s} base {base:.4f} bpsp | (a+b+c)/3 {100 * (bpsp[1] / base - 1):+.2f}% | static per "
                  f"image {100 * (chosen / base - 1):+.2f}% | best rule '{names[best]}' "
                  f"{100 * (bpsp[best] / base - 1):+.2f}%", flush=True)


if __name__ == "__main__":
    main()
