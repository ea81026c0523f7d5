"""The wavefront model (weights kind ``"wavefront"``, the shipped default ``tric-wf1``): the contexts of
the context model, coded in a schedule a GPU can run (``wavefront_ref.py``: every pixel whose causal
neighbours are decoded is decoded in the same step; tables fixed within a step and updated between
steps; interleaved rANS states per strip).

Its predictor is the model's ``predictor`` setting: ``"med"`` (``tric-wf1``: MED on G, R-G, B-G as in
``predictor_ref``) or ``"blend"`` (``tric-wf2``: ``blend_ref``'s self-correcting predictor whose mode and
colour reference per plane the encoder chooses per image, ``blend_select``).

Its bitstream inside a v1 container (the model named in the header decides how SIDE and LANES read)::

    SIDE  = lane_rows (u32)                                   # image rows per strip, chosen by the encoder
            [+ for "blend": P x 5 int8, each plane's (mode, q1, c1, q2, c2)]
    LANES = counts (u32 x 3 x n_strips: rANS words, raw words, log2 K of strip 0, then strip 1, ...)
            | words (u16): per strip, its rANS words (the K final states first) then its raw extra-bit
              words (16-bit words, bits LSB first, in coding order)

There is no per-image side information: the tables adapt to the image while it is coded, identically on
both sides.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from . import blend_ref as br
from . import container as fmt
from . import wavefront_ref as wr
from .context_model import pack_side, plane_kinds, unpack_side  # SIDE is the context model's: lane_rows
from .blend_select import choose_params
from .errors import DecodeError
from .model_base import NamedWeights


@dataclass(frozen=True, eq=False)
class WavefrontModel(NamedWeights):
    name: str
    sha256: str
    init_a: np.ndarray         # int32 (3, NC_A, 25): starting cumulatives of table A per plane kind
    init_b: np.ndarray         # int32 (3, NC_B, 25): same for table B
    bin_a: np.ndarray          # int32 (4096,): activity -> bin of table A
    bin_b: np.ndarray          # int32 (4096,): activity -> bin of table B
    weight_lut: np.ndarray     # int32 (L,): weight of a context's past after u uses
    update_steps: int          # tables are updated after every this many wavefront steps
    lane_pixels: int           # the encoder's strip size: lane_rows = ceil(lane_pixels / width)
    rgb_order: tuple
    rgb_refs: tuple
    predictor: str = "med"     # "med" or "blend" (module docstring)
    kind = "wavefront"
    prefers_gpu = True         # one image is hundreds of independent symbols per step

    def lane_rows(self, width: int, height: int) -> int:
        """Rows per strip: as many strips as ``lane_pixels`` pixels need, at least two from a quarter of that
        size on (two CPU cores, two GPU programs: a 384x303 grey photo encodes 24% and decodes 35% faster
        for +0.2% bytes, 256x256 RGB crops +0.35%), of equal height (strips decode in parallel: the tallest
        one sets the time)."""
        pixels = width * height
        n_strips = max(-(-pixels // self.lane_pixels), 2 if 4 * pixels >= self.lane_pixels else 1)
        return max(1, -(-height // n_strips))

    @property
    def arrays(self) -> tuple:
        return self.init_a, self.init_b, self.bin_a, self.bin_b, self.weight_lut

    def _device_arrays(self, n_planes: int, backend) -> list:
        return [backend.upload(a) for a in (plane_kinds(n_planes),) + self.arrays]

    # ---- the model interface (model_base.NamedWeights) ----

    def encode_residuals(self, res, backend) -> list:
        n_planes, h, w = (int(v) for v in res.shape)
        lane_rows = self.lane_rows(w, h)
        counts, words = backend.encode_wavefront_lanes(res, *self._device_arrays(n_planes, backend),
                                                       self.update_steps, lane_rows)
        return sections(lane_rows, backend.download(counts), backend.download(words))

    def decode_residuals(self, secs: dict, shape: tuple, backend):
        lane_rows = self._lane_rows_of(secs[fmt.SEC_SIDE], shape)
        counts, words = unpack_lanes(secs[fmt.SEC_LANES], shape, lane_rows)
        return backend.decode_wavefront_lanes(backend.upload(counts), backend.upload(words), shape,
                                              *self._device_arrays(shape[0], backend), self.update_steps,
                                              lane_rows)

    def encode_residuals_batch(self, res_list: list, backend) -> list:
        shapes = [tuple(int(v) for v in r.shape) for r in res_list]
        rows = [self.lane_rows(s[2], s[1]) for s in shapes]
        kinds = [backend.upload(plane_kinds(s[0])) for s in shapes]
        lanes = backend.encode_wavefront_batch(res_list, kinds, *(backend.upload(a) for a in self.arrays),
                                               self.update_steps, rows)
        return [sections(r, backend.download(c), backend.download(w)) for r, (c, w) in zip(rows, lanes)]

    def decode_residuals_batch(self, secs_list: list, shapes: list, backend) -> list:
        rows = [self._lane_rows_of(s[fmt.SEC_SIDE], sh) for s, sh in zip(secs_list, shapes)]
        lanes = [unpack_lanes(s[fmt.SEC_LANES], sh, r) for s, sh, r in zip(secs_list, shapes, rows)]
        return backend.decode_wavefront_batch([backend.upload(c) for c, _ in lanes],
                                              [backend.upload(w) for _, w in lanes], shapes,
                                              [backend.upload(plane_kinds(sh[0])) for sh in shapes],
                                              *(backend.upload(a) for a in self.arrays), self.update_steps, rows)


    # ---- the predictor: MED (model_base's default) or the blend, whose parameters SIDE records ----

    def _lane_rows_of(self, side: memoryview, shape: tuple) -> int:
        return unpack_side(side[:4] if self.predictor == "blend" else side, shape[1], shape[2])

    def encode_planes_batch(self, planes_list: list, refs_list: list, backend) -> list:
        if self.predictor != "blend":
            return super().encode_planes_batch(planes_list, refs_list, backend)
        params = [choose_params(p) for p in planes_list]
        res = [backend.compute_blend_residuals(backend.upload(p), pa) for p, pa in zip(planes_list, params)]
        out = []
        for secs, pa in zip(self.encode_residuals_batch(res, backend), params):
            side = dict(secs)[fmt.SEC_SIDE] + pa.astype(np.int8).tobytes()
            out.append([(tag, side if tag == fmt.SEC_SIDE else payload) for tag, payload in secs])
        return out

    def decode_planes_batch(self, sections_list: list, shapes: list, refs_list: list, backend) -> list:
        if self.predictor != "blend":
            return super().decode_planes_batch(sections_list, shapes, refs_list, backend)
        params = [unpack_params(s[fmt.SEC_SIDE], sh[0]) for s, sh in zip(sections_list, shapes)]
        res = self.decode_residuals_batch(sections_list, shapes, backend)
        return [backend.reconstruct_blend(r, pa) for r, pa in zip(res, params)]


def unpack_params(side: memoryview, n_planes: int) -> np.ndarray:
    """The blend's per-plane parameters after SIDE's lane_rows -> int32 (P, 5), validated."""
    if len(side) != 4 + 5 * n_planes:
        raise DecodeError("side information does not match the model")
    params = np.frombuffer(bytes(side[4:]), dtype=np.int8).astype(np.int32).reshape(n_planes, 5)
    try:
        return br.check_params(params, n_planes)
    except ValueError as e:
        raise DecodeError(f"bad predictor parameters: {e}") from None


def sections(lane_rows: int, counts: np.ndarray, words: np.ndarray) -> list[tuple[int, bytes]]:
    return [(fmt.SEC_SIDE, pack_side(lane_rows)),
            (fmt.SEC_LANES, np.asarray(counts, dtype="<u4").tobytes() + np.asarray(words, dtype="<u2").tobytes())]


def unpack_lanes(payload: memoryview, shape: tuple, lane_rows: int) -> tuple[np.ndarray, np.ndarray]:
    n_lanes = wr.lane_geometry(shape[1], lane_rows)
    if 12 * n_lanes > len(payload):
        raise DecodeError("truncated lane table")
    counts = np.frombuffer(payload, dtype="<u4", count=3 * n_lanes).astype(np.uint32).reshape(n_lanes, 3)
    rest = len(payload) - 12 * n_lanes
    if rest % 2:
        raise DecodeError("lane data has an odd number of bytes")
    wr.check_wavefront_lanes(counts, rest // 2, shape, lane_rows)
    return counts, np.frombuffer(payload, dtype="<u2", offset=12 * n_lanes).astype(np.uint16)


def weight_schedule(w0: int = 32, w_max: int = 512) -> np.ndarray:
    """Weight of a context's past after u uses: u + w0 (a running average of everything seen, with the
    starting table worth w0 uses) up to w_max (then a window of about w_max uses)."""
    return np.minimum(np.arange(w_max - w0 + 1) + w0, w_max).astype(np.int32)
