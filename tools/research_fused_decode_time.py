"""Research: what would a *fused* decoder cost on the CPU? (issue 13)

    python tools/research_fused_decode_time.py ../shared/data/dev [--limit N] [--repeat R]

tools/research_pixel_contexts.py measures what contexts from the predictor's state earn (a third table
C): a decoder can form them only if the predictor runs inside the coder's wavefront, each pixel rebuilt
as soon as its residual is known.  Today's decoder runs the coder over all strips (in parallel), then
the blend's scan (one thread per plane).  This tool times, per image, on this machine's cores:

* ``today``: ``wavefront_ref.decode_wavefront_lanes`` of the real tric-wf2 streams, then
  ``blend_ref.reconstruct_blend``: what ``tricodec.decode`` spends in the model (best of R);
* ``fused AB``: one loop per strip (today's strips, in parallel, the predictor restarting at each strip's
  top),
  per symbol in the wavefront order: the blend's prediction (blend_ref's arithmetic), contexts A and B
  (``wavefront_ref._ctx_ring``), the mixed tables' token search, the step's counts, the pixel rebuilt,
  its errors stored; tables updated between steps as today (``wavefront_ref._update``);
* ``fused ABC``: the same plus table C's context (research_pixel_contexts' ``rel3+frac``, from the
  prediction and v's neighbours), a three-table static mix, C's counts and updates (and two variants
  that update C at every second update of A and B, or never: the updates' share of C's cost).

The fused loops skip the rANS arithmetic (the symbol is known: its token's search runs against the
mixed tables as a decoder's would, to the same depth) and keep four-row rings of v and of the blend's
errors, as the blend's scan does: they time the work a fused decoder adds, not its exact cost (a guide
for the decode speed floor, not a codec).
Research only: nothing here is a codec path.
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
from numba import njit, prange

import tricodec
from tricodec import blend_ref as br
from tricodec.blend_ref import _med
from tricodec import blend_select as bs
from tricodec import wavefront_ref as wr
from tricodec.context_model import plane_kinds
from tricodec.context_ref import N_TOKENS, _token
from tricodec.wavefront_ref import RING, _clear_slot, _ctx_ring, _row_range, _update, n_steps

MODEL = tricodec.load_model("tric-wf2")
# (label, tables, table C updated at every k-th update of A and B; 0: never, to time the updates' share)
VARIANTS = (("fused AB", 2, 1), ("fused ABC", 3, 1), ("ABC, C every 2nd", 3, 2), ("ABC, C frozen", 3, 0))
S_EDGES3 = np.array([64, 310], np.int64)       # 3 bins of the blend's error estimate (research_pixel_contexts)
G_EDGES3 = np.array([6, 27], np.int64)         # ... of a MED plane's gradient


@njit(cache=True, nogil=True, inline="always")
def _rel5(d):
    a = abs(d)
    m = (1 if a > 0 else 0) + (1 if a > 4 else 0)
    return 2 - m if d < 0 else 2 + m


@njit(cache=True, nogil=True)
def _fused_strip(res, params, kinds, init_a, init_b, init_c, bin_a, bin_b, lut, wlut, update_steps, y0, y1,
                 n_tab, c_every, out):
    """One strip: residuals ``res`` (known) -> pixels ``out``, doing a fused decoder's per-symbol work
    (``n_tab`` 2 or 3 tables; table C updated at every ``c_every``-th update of A and B, never if 0)."""
    n_planes, _, w = res.shape
    rows = y1 - y0
    ta, tb, ha, hb, sa, sb, ua, ub, lista, listb = wr._fresh(init_a, init_b)
    tc = init_c.copy()
    hc = np.zeros((init_c.shape[0], init_c.shape[1], N_TOKENS), np.int32)
    sc = np.zeros(init_c.shape[:2], np.int32)
    uc = np.zeros(init_c.shape[:2], np.int32)
    listc = np.empty((init_c.shape[0] * init_c.shape[1], 2), np.int32)
    ring = np.zeros((n_planes, RING, rows + 2), np.int16)
    # four-row rings of v and of the blend's errors per plane (a pixel reads two rows up; a slot is
    # rewritten only on a later diagonal than any pixel that reads its old row)
    v = np.zeros((n_planes, 4, w), np.int32)
    err = np.zeros((n_planes, 6, 4, w), np.int16)
    s = np.zeros(6, np.int32)
    na = nb = nc = 0
    steps = n_steps(n_planes, rows, w)
    checksum = 0
    for t in range(steps):
        for p in range(n_planes):
            d = t - 2 * p
            kind = kinds[p]
            mode, q1, c1, q2, c2 = params[p, 0], params[p, 1], params[p, 2], params[p, 3], params[p, 4]
            lo_y, hi_y = _row_range(d, rows, w)
            _clear_slot(ring, p, d)
            for yy in range(lo_y, hi_y):
                x = d - 2 * yy
                y = y0 + yy
                ref = np.int32(0)
                if q1 >= 0:
                    ref += c1 * np.int32(out[q1, y, x])
                if q2 >= 0:
                    ref += c2 * np.int32(out[q2, y, x])
                ref >>= 2
                vp = v[p]
                r0 = yy & 3
                r1 = (yy - 1) & 3
                r2 = (yy - 2) & 3
                vw = vp[r0, x - 1] if x > 0 else (vp[r1, x] if yy > 0 else 0)
                vn = vp[r1, x] if yy > 0 else vw
                vnw = vp[r1, x - 1] if (yy > 0 and x > 0) else vn
                vne = vp[r1, x + 1] if (yy > 0 and x < w - 1) else vn
                act = np.int32(0)
                if mode == 0:
                    pv4 = 4 * _med(vw, vn, vnw)
                    act = abs(vw - vnw) + abs(vn - vnw) + abs(vne - vn)
                else:
                    vnne = vp[r2, x + 1] if (yy > 1 and x < w - 1) else vne
                    s[0] = 4 * _med(vw, vn, vnw)
                    s[1] = 4 * vw
                    s[2] = 4 * vn
                    s[3] = 4 * (vw + vne - vn)
                    s[4] = 4 * (vn + vne - vnne)
                    s[5] = 2 * (vw + vn) + vne - vnw
                    tw = np.int64(0)
                    ts = np.int64(0)
                    smin = np.int32(1 << 30)
                    ep = err[p]
                    for i in range(6):
                        S = np.int32(0)
                        if x > 0:
                            S += 2 * np.int32(ep[i, r0, x - 1])
                        if x > 1:
                            S += np.int32(ep[i, r0, x - 2])
                        if yy > 0:
                            S += 2 * np.int32(ep[i, r1, x])
                            if x > 0:
                                S += 2 * np.int32(ep[i, r1, x - 1])
                            if x < w - 1:
                                S += 2 * np.int32(ep[i, r1, x + 1])
                            if yy > 1:
                                S += np.int32(ep[i, r2, x])
                        smin = min(smin, S)
                        wi = np.int64(lut[S])
                        tw += wi
                        ts += wi * np.int64(s[i] + 4096)
                    pv4 = s[0] if tw == 0 else np.int32(np.float64(ts + (tw >> 1)) / np.float64(tw)) - 4096
                    act = smin
                pv = ((pv4 + 2 + 4096) >> 2) - 1024
                if yy == 0 and x == 0:
                    pv = 128 if (q1 < 0 and q2 < 0) else 0
                pred = min(max(pv + ref, 0), 255)
                a, b = _ctx_ring(ring, p, kind, d, yy + 2, bin_a, bin_b)
                r = np.int32(res[p, y, x]) - 128
                tok, _, _ = _token(2 * r if r >= 0 else -2 * r - 1)
                c = 0
                if n_tab == 3:
                    edges = S_EDGES3 if mode != 0 else G_EDGES3
                    bn = (1 if act > edges[0] else 0) + (1 if act > edges[1] else 0)
                    c = (((_rel5(4 * vw - pv4) * 5 + _rel5(4 * vn - pv4)) * 5 + _rel5(4 * vne - pv4)) * 3 + bn) * 4 \
                        + (pv4 & 3)
                # the token search a decoder runs (to the known token's depth), on the mixed tables
                j = 0
                if n_tab == 3:
                    while j < tok and ((5 * ta[kind, a, j + 1] + 5 * tb[kind, b, j + 1] + 6 * tc[kind, c, j + 1])
                                       >> 4) + j + 1 <= 65535:
                        j += 1
                else:
                    while j < tok and ((ta[kind, a, j + 1] + tb[kind, b, j + 1] + 2 * j + 2) >> 1) <= 65535:
                        j += 1
                checksum += j
                ring[p, d & (RING - 1), yy + 2] = r
                xv = (r + pred) & 255
                out[p, y, x] = np.uint8(xv)
                vv = xv - ref
                vp[r0, x] = vv
                if mode != 0:
                    v4 = 4 * vv
                    for i in range(6):
                        err[p, i, r0, x] = min(abs(v4 - s[i]), 4080)
                if sa[kind, a] == 0:
                    lista[na, 0] = kind
                    lista[na, 1] = a
                    na += 1
                sa[kind, a] += 1
                ha[kind, a, tok] += 1
                if sb[kind, b] == 0:
                    listb[nb, 0] = kind
                    listb[nb, 1] = b
                    nb += 1
                sb[kind, b] += 1
                hb[kind, b, tok] += 1
                if n_tab == 3:
                    if sc[kind, c] == 0:
                        listc[nc, 0] = kind
                        listc[nc, 1] = c
                        nc += 1
                    sc[kind, c] += 1
                    hc[kind, c, tok] += 1
        if (t + 1) % update_steps == 0 or t == steps - 1:
            _update(ta, ha, sa, ua, lista, na, wlut)
            _update(tb, hb, sb, ub, listb, nb, wlut)
            if n_tab == 3 and c_every > 0 and ((t + 1) // update_steps % c_every == 0 or t == steps - 1):
                _update(tc, hc, sc, uc, listc, nc, wlut)
                nc = 0
            na = nb = 0
    return checksum


@njit(cache=True, nogil=True, parallel=True)
def _fused(res, params, kinds, init_a, init_b, init_c, bin_a, bin_b, lut, wlut, update_steps, lane_rows, n_tab, c_every,
           out):
    h = res.shape[1]
    n = (h + lane_rows - 1) // lane_rows
    sums = np.zeros(n, np.int64)
    for lane in prange(n):
        y0 = lane * lane_rows
        sums[lane] = _fused_strip(res, params, kinds, init_a, init_b, init_c, bin_a, bin_b, lut, wlut, update_steps,
                                  y0, min(h, y0 + lane_rows), n_tab, c_every, out)
    return sums.sum()


def _best(fn, repeat: int) -> float:
    fn()
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def time_image(arr: np.ndarray, repeat: int) -> dict:
    order, _ = MODEL.plane_layout(arr.shape[2])
    planes = np.ascontiguousarray(arr.transpose(2, 0, 1)[list(order)])
    params = bs.choose_params(planes)
    n, h, w = planes.shape
    kinds = plane_kinds(n)
    rows = MODEL.lane_rows(w, h)
    init_a, init_b, bin_a, bin_b, wlut = MODEL.arrays
    init_c = np.tile(np.round(np.arange(N_TOKENS + 1) * 65512 / N_TOKENS).astype(np.int32), (3, 1500, 1))
    # (table C's starting tables do not change the work; a flat one stands in for trained ones)
    res = br.compute_blend_residuals(planes, params)
    counts, words = wr.encode_wavefront_lanes(res, kinds, *MODEL.arrays, MODEL.update_steps, rows)

    def today():
        r = wr.decode_wavefront_lanes(counts, words, res.shape, kinds, *MODEL.arrays, MODEL.update_steps, rows)
        return br.reconstruct_blend(r, params)
    assert np.array_equal(today(), planes)
    out = {"today": _best(today, repeat)}
    for label, n_tab, c_every in VARIANTS:
        # the restarted predictor's residuals (each strip an image of its own), as a fused decoder reads them
        r2 = np.concatenate([br.compute_blend_residuals(np.ascontiguousarray(planes[:, y:y + rows]), params)
                             for y in range(0, h, rows)], axis=1)
        dst = np.empty_like(planes)

        def fused(dst=dst, r2=r2, n_tab=n_tab, c_every=c_every):
            _fused(r2, params, kinds, init_a, init_b, init_c, bin_a, bin_b, br.WEIGHT_LUT, wlut, MODEL.update_steps,
                   rows, n_tab, c_every, dst)
        fused()
        assert np.array_equal(dst, planes), "the fused loop must rebuild the image"
        out[label] = _best(fused, repeat)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("folder", type=Path, help="a folder of images (e.g. ../shared/data/dev)")
    ap.add_argument("--limit", type=int, default=None, help="first N images")
    ap.add_argument("--repeat", type=int, default=3, help="timed runs per variant (best is kept)")
    a = ap.parse_args()
    files = sorted(p for p in a.folder.iterdir() if p.suffix.lower() in (".png", ".ppm", ".tif", ".tiff"))[:a.limit]
    from PIL import Image
    tot: dict = {}
    raw = 0
    for f in files:
        im = Image.open(f)
        arr = np.asarray(im.convert("L" if im.mode in ("L", "1") else "RGB"))
        arr = arr[:, :, None] if arr.ndim == 2 else arr
        raw += arr.size
        for k, s in time_image(arr, a.repeat).items():
            tot[k] = tot.get(k, 0.0) + s
    print(f"{a.folder} ({len(files)} images, {raw / 1e6:.1f} MB): model decode time, best of {a.repeat}")
    for k, s in tot.items():
        print(f"  {k:18s} {1e3 * s:8.1f} ms  {raw / s / 1e6:6.1f} MB/s  {s / tot['today']:.2f}x today's time")


if __name__ == "__main__":
    main()
