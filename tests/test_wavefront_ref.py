"""The wavefront twin (tricodec.wavefront_ref) against an independent pure-Python statement of the model,
its bitstream rules, and the parallelism its schedule gives."""
import numpy as np
import pytest

import tricodec
from tricodec import context_model as cm
from tricodec import context_ref as cr
from tricodec import wavefront_ref as wr
from tricodec.errors import DecodeError

from helpers import photo_residuals

MODEL = tricodec.load_model("tric-wf1")
ARRAYS = MODEL.arrays + (MODEL.update_steps,)


def reference_symbols(res, kinds, y0, y1, update_steps):
    """The model as its docstring states it, in plain Python: contexts straight from the residual array
    (``context_ref._contexts``, no ring), symbols in schedule order, and each step's update computed from
    that step's counts -> [(start, freq, n_extra, extra)] in coding order."""
    ta, tb = MODEL.init_a.astype(np.int64), MODEL.init_b.astype(np.int64)
    used = [{}, {}]
    lut = MODEL.weight_lut
    n_planes, _, w = res.shape
    rows = y1 - y0
    out, counts = [], [{}, {}]
    steps = (w - 1) + 2 * (rows - 1) + 2 * (n_planes - 1) + 1
    for t in range(steps):
        for p in range(n_planes):
            for yy in range(rows):
                x = t - 2 * p - 2 * yy
                if not 0 <= x < w:
                    continue
                kind = int(kinds[p])
                ca, cb = cr._contexts.py_func(res, p, kind, y0 + yy, x, y0, w, MODEL.bin_a, MODEL.bin_b)
                r = int(res[p, y0 + yy, x]) - 128
                tok, n_extra, extra = cr._token.py_func(2 * r if r >= 0 else -2 * r - 1)
                lo = (ta[kind, ca, tok] + tb[kind, cb, tok] + 2 * tok) >> 1
                hi = (ta[kind, ca, tok + 1] + tb[kind, cb, tok + 1] + 2 * tok + 2) >> 1
                out.append((int(lo), int(hi - lo), n_extra, extra))
                for table, ctx in ((0, ca), (1, cb)):
                    counts[table].setdefault((kind, int(ctx)), []).append(tok)
        if (t + 1) % update_steps == 0 or t == steps - 1:
            for table, c in ((0, ta), (1, tb)):
                for (kind, ctx), toks in counts[table].items():
                    n = len(toks)
                    u = used[table].get((kind, ctx), 0)
                    s = (1 << wr.MIX_BITS) // (int(lut[min(u, len(lut) - 1)]) + n)
                    for i in range(1, cr.N_TOKENS):
                        below = sum(1 for k in toks if k < i)
                        c[kind, ctx, i] = (((1 << wr.MIX_BITS) - n * s) * c[kind, ctx, i]
                                           + cr.Q_ADAPT * s * below) >> wr.MIX_BITS
                    used[table][(kind, ctx)] = min(u + n, len(lut) - 1)
            counts = [{}, {}]
    return out


def twin_symbols(res, kinds, y0, y1, update_steps):
    n_planes, _, w = res.shape
    n = (y1 - y0) * n_planes * w
    start, freq = np.empty(n, np.uint32), np.empty(n, np.uint32)
    nx, raw = np.empty(n, np.uint8), np.empty(n // 2 + 1, np.uint16)
    steps = np.empty(wr.n_steps(n_planes, y1 - y0, w), np.int64)
    n_raw = wr._model_pass(res, kinds, *(np.asarray(a, np.int32) for a in MODEL.arrays), update_steps, y0, y1,
                           start, freq, nx, raw, steps)
    return start, freq, nx, raw[:n_raw], steps


@pytest.mark.parametrize("p,h,w,y0,y1,update_steps", [(3, 9, 14, 0, 9, 1), (3, 12, 10, 4, 11, 1),
                                                      (4, 6, 9, 0, 6, 2), (1, 11, 5, 3, 11, 1)])
def test_twin_codes_what_the_model_states(p, h, w, y0, y1, update_steps):
    res = photo_residuals(h, w, p, seed=h * w + p)
    kinds = cm.plane_kinds(p)
    ref = reference_symbols(res, kinds, y0, y1, update_steps)
    start, freq, nx, raw, steps = twin_symbols(res, kinds, y0, y1, update_steps)
    assert [(int(a), int(b), int(c)) for a, b, c in zip(start, freq, nx)] == [r[:3] for r in ref]
    assert int(steps.sum()) == len(ref)
    bits = "".join(format(e, f"0{n}b")[::-1] for _, _, n, e in ref if n)      # LSB first, coding order
    bits += "0" * (-len(bits) % 16)
    assert [int(bits[i:i + 16][::-1], 2) for i in range(0, len(bits), 16)] == raw.tolist()


def test_round_trips_and_code_length_near_the_model():
    """Real streams decode to the residuals, and cost the model's ideal length plus the framing."""
    res = photo_residuals(40, 56, 3, seed=2)
    kinds = cm.plane_kinds(3)
    counts, words = wr.encode_wavefront_lanes(res, kinds, *ARRAYS, 40)
    assert np.array_equal(wr.decode_wavefront_lanes(counts, words, res.shape, kinds, *ARRAYS, 40), res)
    ideal = sum(16 - np.log2(f) + n for _, f, n, _ in reference_symbols(res, kinds, 0, 40, MODEL.update_steps))
    framing = 32 * (1 << int(counts[0, 2])) + 16
    assert ideal <= 16 * len(words) <= ideal * 1.01 + framing


@pytest.mark.parametrize("shape,lane_rows", [((1, 1, 1), 1), ((3, 1, 9), 1), ((2, 7, 1), 3), ((4, 5, 6), 2),
                                             ((3, 33, 17), 33)])
def test_round_trip_odd_shapes(shape, lane_rows):
    res = photo_residuals(shape[1], shape[2], shape[0], seed=sum(shape))
    kinds = cm.plane_kinds(shape[0])
    for states in (0, 1, 128):
        counts, words = wr.encode_wavefront_lanes(res, kinds, *ARRAYS, lane_rows, states)
        assert np.array_equal(wr.decode_wavefront_lanes(counts, words, res.shape, kinds, *ARRAYS, lane_rows), res)


def test_corruption_is_reported():
    res = photo_residuals(20, 24, 3, seed=5)
    kinds = cm.plane_kinds(3)
    counts, words = wr.encode_wavefront_lanes(res, kinds, *ARRAYS, 10)
    short = counts.copy()
    short[1, 1] -= 1                     # strip 1 loses its last raw word
    with pytest.raises(DecodeError, match="lane 1"):
        wr.decode_wavefront_lanes(short, words[:-1], res.shape, kinds, *ARRAYS, 10)
    bad_states = counts.copy()
    bad_states[0, 2] = 9
    with pytest.raises(DecodeError, match="states"):
        wr.decode_wavefront_lanes(bad_states, words, res.shape, kinds, *ARRAYS, 10)
    with pytest.raises(DecodeError, match="lane table"):
        wr.decode_wavefront_lanes(counts[:1], words, res.shape, kinds, *ARRAYS, 10)
    tail = words.copy()
    tail[int(counts[0, 0]) + int(counts[0, 1]) - 1] ^= np.uint16(0x8000)   # padding bit of strip 0's raw words
    with pytest.raises(DecodeError):
        wr.decode_wavefront_lanes(counts, tail, res.shape, kinds, *ARRAYS, 10)


def test_smooth_image_gets_fewer_states():
    """The encoder keeps framing under 0.25% of a strip's estimated length: a near-flat strip gets fewer
    states than a busy one of the same size."""
    kinds = cm.plane_kinds(3)
    busy = photo_residuals(128, 256, 3, seed=1)
    flat = np.full_like(busy, 128)
    flat[:, ::16, ::16] = busy[:, ::16, ::16]
    k_busy = wr.encode_wavefront_lanes(busy, kinds, *ARRAYS, 128)[0][0, 2]
    k_flat = wr.encode_wavefront_lanes(flat, kinds, *ARRAYS, 128)[0][0, 2]
    assert k_flat < k_busy == 4   # 98304 symbols: 24 per 4096 -> 16 states at most


def test_critical_path_of_a_kodak_sized_image():
    """768x512 RGB in the shipped model's strips: at most 8,000 dependent steps (rANS rounds of the longest
    strip, as the decoder runs them) and at least 128 symbols per dependent step on average."""
    res = photo_residuals(512, 768, 3, seed=4)
    kinds = cm.plane_kinds(3)
    lane_rows = MODEL.lane_rows(768, 512)
    counts, words = wr.encode_wavefront_lanes(res, kinds, *ARRAYS, lane_rows)
    stats = np.zeros((counts.shape[0], 2), np.int64)
    wr.decode_wavefront_lanes(counts, words, res.shape, kinds, *ARRAYS, lane_rows, stats)
    critical = int(stats[:, 1].max())
    assert critical <= 8000 and res.size / critical >= 128
    assert int(stats[:, 0].max()) == 767 + 2 * (lane_rows - 1) + 4 + 1
