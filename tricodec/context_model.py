"""The context model (weights kind ``"context"``): trained starting tables for the adaptive causal context
coder of ``context_ref.py``, the activity bins and the adaptation schedule.

Its bitstream inside a v1 container (the model named in the header decides how SIDE and LANES read)::

    SIDE  = lane_rows (u32)                       # image rows per lane, chosen by the encoder
    LANES = counts (u32 x n_lanes) | words (u16 x sum(counts))      # n_lanes = ceil(H / lane_rows)

There is no per-image side information: the tables adapt to the image while it is coded, identically
on both sides.
"""
from __future__ import annotations

import struct
from dataclasses import dataclass

import numpy as np

from . import container as fmt
from . import context_ref as cr
from .errors import DecodeError
from .model_base import NamedWeights


@dataclass(frozen=True, eq=False)
class ContextModel(NamedWeights):
    name: str
    sha256: str
    init_a: np.ndarray         # int32 (3, NC_A, 25): starting cumulatives of table A per plane kind
    init_b: np.ndarray         # int32 (3, NC_B, 25): same for table B
    bin_a: np.ndarray          # int32 (4096,): activity -> bin of table A
    bin_b: np.ndarray          # int32 (4096,): activity -> bin of table B
    rate_lut: np.ndarray       # int32 (L,): adaptation shift after n uses of a context
    lane_pixels: int           # the encoder's lane size: lane_rows = ceil(lane_pixels / width)
    rgb_order: tuple
    rgb_refs: tuple
    kind = "context"

    def lane_rows(self, width: int, height: int) -> int:
        """Rows per lane: about ``lane_pixels`` pixels, never more rows than the image has."""
        return min(height, max(1, -(-self.lane_pixels // width)))

    # One image has one or two sequential lanes of ~2^18 pixels: far too little work for a GPU, while the
    # CPU twin codes them at 20-40 MB/s. device="cuda"/"triton" still runs the kernels.
    prefers_gpu = False

    @property
    def arrays(self) -> tuple:
        return self.init_a, self.init_b, self.bin_a, self.bin_b, self.rate_lut

    def _device_arrays(self, n_planes: int, backend) -> list:
        return [backend.upload(a) for a in (plane_kinds(n_planes),) + self.arrays]

    # ---- the model interface (model_base.NamedWeights) ----

    def encode_residuals(self, res, backend) -> list:
        n_planes, h, w = (int(v) for v in res.shape)
        lane_rows = self.lane_rows(w, h)
        counts, words = backend.encode_context_lanes(res, *self._device_arrays(n_planes, backend), lane_rows)
        return sections(lane_rows, backend.download(counts), backend.download(words))

    def decode_residuals(self, secs: dict, shape: tuple, backend):
        lane_rows = unpack_side(secs[fmt.SEC_SIDE], shape[1], shape[2])
        counts, words = unpack_lanes(secs[fmt.SEC_LANES], shape, lane_rows)
        return backend.decode_context_lanes(backend.upload(counts), backend.upload(words), shape,
                                            *self._device_arrays(shape[0], backend), lane_rows)

    def encode_residuals_batch(self, res_list: list, backend) -> list:
        shapes = [tuple(int(v) for v in r.shape) for r in res_list]
        rows = [self.lane_rows(s[2], s[1]) for s in shapes]
        kinds = [backend.upload(plane_kinds(s[0])) for s in shapes]
        lanes = backend.encode_context_batch(res_list, kinds, *(backend.upload(a) for a in self.arrays), rows)
        return [sections(r, backend.download(c), backend.download(w)) for r, (c, w) in zip(rows, lanes)]

    def decode_residuals_batch(self, secs_list: list, shapes: list, backend) -> list:
        rows = [unpack_side(s[fmt.SEC_SIDE], sh[1], sh[2]) for s, sh in zip(secs_list, shapes)]
        lanes = [unpack_lanes(s[fmt.SEC_LANES], sh, r) for s, sh, r in zip(secs_list, shapes, rows)]
        return backend.decode_context_batch([backend.upload(c) for c, _ in lanes],
                                            [backend.upload(w) for _, w in lanes], shapes,
                                            [backend.upload(plane_kinds(sh[0])) for sh in shapes],
                                            *(backend.upload(a) for a in self.arrays), rows)


def plane_kinds(n_planes: int) -> np.ndarray:
    """Kinds of the coded planes: colour planes after the first look at the earlier ones (up to two);
    alpha (the 2nd plane of LA, the 4th of RGBA) is alone."""
    kinds = {1: (0,), 2: (0, 0), 3: (0, 1, 2), 4: (0, 1, 2, 0)}[n_planes]
    return np.array(kinds, dtype=np.int32)


def pack_side(lane_rows: int) -> bytes:
    return struct.pack("<I", lane_rows)


def sections(lane_rows: int, counts: np.ndarray, words: np.ndarray) -> list[tuple[int, bytes]]:
    return [(fmt.SEC_SIDE, pack_side(lane_rows)), (fmt.SEC_LANES, pack_lanes(counts, words))]


# Lanes hold at least this many pixels (or the whole image): every lane starts from a fresh copy of the
# tables (~0.55 MB), so a file of countless one-row lanes would cost minutes of copying, not bytes.
MIN_LANE_PIXELS = 1 << 14


def unpack_side(payload: memoryview, height: int, width: int) -> int:
    if len(payload) != 4:
        raise DecodeError("side information does not match the model")
    (lane_rows,) = struct.unpack("<I", bytes(payload))
    if not 1 <= lane_rows <= max(1, height):
        raise DecodeError(f"lane of {lane_rows} rows does not fit an image of {height} rows")
    if lane_rows * width < min(height * width, MIN_LANE_PIXELS):
        raise DecodeError(f"lanes of {lane_rows} rows are smaller than any encoder writes")
    return lane_rows


def pack_lanes(counts: np.ndarray, words: np.ndarray) -> bytes:
    return np.asarray(counts, dtype="<u4").tobytes() + np.asarray(words, dtype="<u2").tobytes()


def unpack_lanes(payload: memoryview, shape: tuple, lane_rows: int) -> tuple[np.ndarray, np.ndarray]:
    n_lanes = cr.lane_geometry(shape[1], lane_rows)
    if 4 * n_lanes > len(payload):
        raise DecodeError("truncated lane table")
    counts = np.frombuffer(payload, dtype="<u4", count=n_lanes).astype(np.uint32)
    rest = len(payload) - 4 * n_lanes
    if rest % 2:
        raise DecodeError("lane data has an odd number of bytes")
    cr.check_context_lanes(counts, rest // 2, shape, lane_rows)
    return counts, np.frombuffer(payload, dtype="<u2", offset=4 * n_lanes).astype(np.uint16)


# ---- building a model from statistics (training) ----

def default_bins() -> tuple[np.ndarray, np.ndarray]:
    """Log-spaced activity bins (computed once at training time and shipped as integers)."""
    act = np.arange(cr.ACT_MAX + 1)
    bin_a = np.minimum(cr.NB_A - 1, np.floor(np.log2(1 + act) * 2.5)).astype(np.int32)
    bin_b = np.minimum(cr.NB_B - 1, np.floor(np.log2(1 + act) * 1.6)).astype(np.int32)
    return bin_a, bin_b


def rate_schedule(n0: int = 32, max_rate: int = 9) -> np.ndarray:
    """Shift after n uses: floor(log2(n + n0)) capped at max_rate, i.e. a running average over ~n uses
    that turns into an exponential window of 2**max_rate."""
    n = np.arange((1 << max_rate) + 1)
    return np.minimum(max_rate, np.floor(np.log2(n + n0))).astype(np.int32)


def tables_from_counts(hist: np.ndarray, prior: float = 0.5) -> np.ndarray:
    """int64 (3, NC, 24) token counts -> int32 (3, NC, 25) cumulatives from 0 to Q_ADAPT."""
    p = (hist + prior) / (hist + prior).sum(-1, keepdims=True)
    cum = np.floor(np.cumsum(p, -1) * cr.Q_ADAPT + 0.5).astype(np.int64)
    cum = np.concatenate([np.zeros(cum.shape[:-1] + (1,), np.int64), cum], -1)
    cum[..., -1] = cr.Q_ADAPT
    return np.maximum.accumulate(cum, -1).astype(np.int32)
