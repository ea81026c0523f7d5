"""Big images on the CPU in bounded memory: the model path run band by band, writing and reading exactly
the bytes of the whole-image path (``codec.encode_planes`` / ``codec.decode_planes``).

Why it is the same bitstream: residuals depend on the row above (a one-row halo), side-info blocks
never straddle a band (bands are whole blocks tall), and rANS lanes are fixed windows of ``lane_size``
symbols over the planar sequence, coded independently: a lane is coded as soon as all its symbols
are known, whichever bands they came from.

Working memory beyond the image and its output: a few bytes per symbol of one band (``band_rows`` x
width x planes symbols, about 2^22 per plane by default) plus the side information (1/64 of the
symbols).
"""
from __future__ import annotations

import numpy as np

from .model import block_table_ids, choose_block_scales
from .predictor_ref import compute_residuals, reconstruct, reconstruct_rows
from .rans_ref import decode_lanes, encode_lanes

BAND_SYMBOLS = 1 << 22  # symbols of one plane in one band


def band_rows(width: int, block_log2: int, band_symbols: int | None = None) -> int:
    """Rows per band: whole side-info blocks, about ``band_symbols`` (default BAND_SYMBOLS) / width rows."""
    band_symbols = band_symbols or BAND_SYMBOLS
    bs = 1 << block_log2
    return max(bs, (band_symbols // max(width, 1)) // bs * bs)


class _LaneAssembler:
    """Collects symbols of the planar sequence in any order and codes each lane once it is complete."""

    def __init__(self, n_symbols: int, lane_size: int, cdf: np.ndarray):
        self.n, self.lane, self.cdf = n_symbols, lane_size, cdf
        self.parts: dict[int, list] = {}    # lane -> [(offset in lane, symbols, ids)]
        self.coded: dict[int, tuple] = {}   # first lane -> (counts, words) of consecutive lanes

    def _lane_len(self, lane: int) -> int:
        return min(self.lane, self.n - lane * self.lane)

    def add(self, start: int, symbols: np.ndarray, ids: np.ndarray) -> None:
        end = start + symbols.shape[0]
        first_full = -(-start // self.lane) * self.lane
        last_full = max(first_full, end // self.lane * self.lane if end < self.n else end)
        if first_full < last_full:  # whole lanes: code them at once
            a, b = first_full - start, last_full - start
            self.coded[first_full // self.lane] = encode_lanes(symbols[a:b], ids[a:b], self.cdf, self.lane)
        for lo, hi in ((start, min(first_full, end)), (max(last_full, start), end)):
            if lo < hi:
                lane = lo // self.lane
                self.parts.setdefault(lane, []).append((lo - lane * self.lane, symbols[lo - start:hi - start].copy(),
                                                        ids[lo - start:hi - start].copy()))
                self._try(lane)

    def _try(self, lane: int) -> None:
        pieces = sorted(self.parts[lane], key=lambda p: p[0])
        if sum(p[1].shape[0] for p in pieces) < self._lane_len(lane):
            return
        del self.parts[lane]
        sym = np.concatenate([p[1] for p in pieces])
        ids = np.concatenate([p[2] for p in pieces])
        self.coded[lane] = encode_lanes(sym, ids, self.cdf, self.lane)

    def finish(self) -> tuple[np.ndarray, np.ndarray]:
        assert not self.parts, "every symbol must have been added"
        keys = sorted(self.coded)
        counts = np.concatenate([self.coded[k][0] for k in keys])
        words = np.concatenate([self.coded[k][1] for k in keys])
        return counts, words


def encode_planes_banded(arr: np.ndarray, order: tuple, refs: tuple, model, band_symbols: int | None = None):
    """uint8 (H, W, C) image -> (side info uint8 (P, Hb, Wb), lane counts, lane words), band by band."""
    h, w, _ = arr.shape
    p = len(order)
    bl = model.block_log2
    rows = band_rows(w, bl, band_symbols)
    q_all = np.empty((p, -(-h // (1 << bl)), -(-w // (1 << bl))), dtype=np.uint8)
    lanes = _LaneAssembler(p * h * w, 1 << model.lane_log2, model.cdf)
    for y0 in range(0, h, rows):
        y1 = min(h, y0 + rows)
        top = max(0, y0 - 1)  # one halo row: the predictor's up neighbours
        planes = np.ascontiguousarray(arr[top:y1].transpose(2, 0, 1)[list(order)])
        res = np.ascontiguousarray(compute_residuals(planes, refs)[:, y0 - top:])
        q = choose_block_scales(res, model.cost, bl)
        q_all[:, y0 >> bl:(y0 >> bl) + q.shape[1]] = q
        ids = block_table_ids(q, y1 - y0, w, bl)
        for k in range(p):
            lanes.add(k * h * w + y0 * w, res[k].reshape(-1), ids[k].reshape(-1))
    counts, words = lanes.finish()
    return q_all, counts, words


def _ids_for_range(q: np.ndarray, start: int, end: int, h: int, w: int, block_log2: int) -> np.ndarray:
    idx = np.arange(start, end, dtype=np.int64)
    k, rem = np.divmod(idx, h * w)
    y, x = np.divmod(rem, w)
    return q[k, y >> block_log2, x >> block_log2]


def decode_planes_banded(q: np.ndarray, counts: np.ndarray, words: np.ndarray, lane_size: int, h: int, w: int,
                         refs: tuple, model, out: np.ndarray, order: tuple,
                         band_symbols: int | None = None) -> None:
    """Inverse of :func:`encode_planes_banded`, writing the pixels into ``out`` (uint8 (H, W, C)) band by
    band. Raises DecodeError like the whole-image path."""
    p = len(order)
    bl = model.block_log2
    n = p * h * w
    offsets = np.zeros(counts.shape[0] + 1, dtype=np.int64)
    np.cumsum(counts, out=offsets[1:])
    rows = band_rows(w, bl, band_symbols)
    above = None
    for y0 in range(0, h, rows):
        y1 = min(h, y0 + rows)
        res = np.empty((p, y1 - y0, w), dtype=np.uint8)
        for k in range(p):
            g0, g1 = k * h * w + y0 * w, k * h * w + y1 * w
            l0, l1 = g0 // lane_size, -(-g1 // lane_size)
            s0, s1 = l0 * lane_size, min(l1 * lane_size, n)
            sym = decode_lanes(counts[l0:l1], words[offsets[l0]:offsets[l1]],
                               _ids_for_range(q, s0, s1, h, w, bl), model.cdf, lane_size)
            res[k] = sym[g0 - s0:g1 - s0].reshape(y1 - y0, w)
        planes = reconstruct(res, refs) if above is None else reconstruct_rows(res, refs, above)
        above = planes[:, -1].copy()
        out[y0:y1][:, :, list(order)] = planes.transpose(1, 2, 0)


__all__ = ["encode_planes_banded", "decode_planes_banded", "band_rows", "BAND_SYMBOLS"]
