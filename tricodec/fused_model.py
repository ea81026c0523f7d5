"""The fused model (weights kind ``"fused"``, ``tric-wf3``): ``tric-wf2``'s wavefront coder and blend
predictor run as one pass, strip by strip, with a third table on the predictor's state (``fused_ref``).

Its bitstream inside a v1 container::

    SIDE  = lane_rows (u32) | P x 5 int8: each plane's blend (mode, q1, c1, q2, c2)
            | 3 x 3 uint8: the weights of tables A, B, C per plane kind (each row sums to 16)
            | u8 (fy - 1) << 4 | (fx - 1): the planes are the image's samples repeated fy times down and fx
              across (``replicate.py``; 0: none); everything else describes the small planes
              (P, ceil(H / fy), ceil(W / fx)), lane_rows included
            | u8 flags: bit p set if plane p (a blend plane) has a bias table
            | 64 int8 per flagged plane, in plane order: its bias table
    LANES = wavefront_model's layout: counts (u32 x 3 per strip) | words (u16)

Both directions run on the backend: the CPU twin, or the kernels ``kernels/fused_encode.py`` (two tiled
maps and one program per strip; the encoder's choices, the blend's params, the bias medians and the mix,
are made on the host from what the maps computed) and ``kernels/fused_decode.py`` (one program per
strip).  ``prefers_gpu`` is false: ``device="auto"`` codes on the CPU until the kernels' speed on a GPU
has been measured.
16-bit images reach it through the depth split (``deep.py``) as residual symbols: those it codes with
tables A and B alone, as ``tric-wf2`` does (there is no pixel state to give table C a context).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from . import container as fmt
from . import fused_ref as fr
from .blend_select import choose_params
from .context_model import plane_kinds
from .context_model import unpack_side as unpack_lane_rows
from .errors import DecodeError
from .replicate import MAX_FACTOR, expand, replication
from .wavefront_model import WavefrontModel, sections, unpack_lanes, unpack_params


@dataclass(frozen=True, eq=False)
class FusedModel(WavefrontModel):
    init_c: np.ndarray = None   # int32 (3, NC_C, 25): table C's starting cumulatives per plane kind
    bin_s: np.ndarray = None    # int32: the blend's smallest error sum -> table C's error bin
    bin_g: np.ndarray = None    # int32: MED's gradient -> table C's error bin
    kind = "fused"
    prefers_gpu = False         # (module docstring)

    def _fused_args(self, n_planes: int, lane_rows: int, backend=None) -> tuple:
        arrays = (plane_kinds(n_planes), self.init_a, self.init_b, self.init_c, self.bin_a, self.bin_b, self.bin_s,
                  self.bin_g, self.weight_lut)
        if backend is not None:
            arrays = tuple(backend.upload(a) for a in arrays)
        return arrays + (self.update_steps, lane_rows)

    def encode_planes_batch(self, planes_list: list, refs_list: list, backend) -> list:
        out = []
        for planes in planes_list:
            host = np.ascontiguousarray(planes if isinstance(planes, np.ndarray) else backend.download(planes))
            fy, fx = replication(host)
            host = np.ascontiguousarray(host[:, ::fy, ::fx])
            n_planes, h, w = host.shape
            lane_rows = self.lane_rows(w, h)
            params = choose_params(host)
            mix, bias, counts, words = backend.encode_fused(backend.upload(host), params,
                                                            *self._fused_args(n_planes, lane_rows, backend))
            secs = sections(lane_rows, backend.download(counts), backend.download(words))
            flagged = bias.any(axis=1)
            side = (dict(secs)[fmt.SEC_SIDE] + params.astype(np.int8).tobytes() + mix.astype(np.uint8).tobytes()
                    + bytes([(fy - 1) << 4 | (fx - 1), sum(1 << p for p in np.flatnonzero(flagged))])
                    + bias[flagged].astype(np.int8).tobytes())
            out.append([(tag, side if tag == fmt.SEC_SIDE else payload) for tag, payload in secs])
        return out

    def decode_planes_batch(self, sections_list: list, shapes: list, refs_list: list, backend) -> list:
        out = []
        for secs, shape in zip(sections_list, shapes):
            n_planes = shape[0]
            lane_rows, params, mix, (fy, fx), bias = unpack_side(secs[fmt.SEC_SIDE], shape)
            small = (n_planes, -(-shape[1] // fy), -(-shape[2] // fx))
            counts, words = unpack_lanes(secs[fmt.SEC_LANES], small, lane_rows)
            planes = backend.decode_fused(backend.upload(counts), backend.upload(words), small, params, mix, bias,
                                          *self._fused_args(n_planes, lane_rows, backend))
            out.append(expand(planes, fy, fx, shape[1], shape[2]))
        return out


def unpack_side(side, shape: tuple) -> tuple:
    """SIDE of an image of ``shape`` (P, H, W) -> (lane_rows, params int32 (P, 5), mix int64 (3, 3), (fy, fx),
    bias int32 (P, 64)), validated."""
    n_planes = shape[0]
    head = 4 + 5 * n_planes
    if len(side) < head + 11:
        raise DecodeError("side information does not match the model")
    rep = side[head + 9]
    fy, fx = (rep >> 4) + 1, (rep & 15) + 1
    if fy > MAX_FACTOR or fx > MAX_FACTOR:
        raise DecodeError(f"pixel replication by {fy} x {fx}: at most {MAX_FACTOR}")
    lane_rows = unpack_lane_rows(side[:4], -(-shape[1] // fy), -(-shape[2] // fx))
    params = unpack_params(side[:head], n_planes)
    mix = unpack_mix(side[head:head + 9])
    flags = side[head + 10]
    flagged = np.array([(flags >> p) & 1 for p in range(n_planes)], bool)
    if flags >> n_planes or (flagged & (params[:, 0] == 0)).any():
        raise DecodeError("bias tables for planes that cannot have one")
    if len(side) != head + 11 + fr.N_BIAS * int(flagged.sum()):
        raise DecodeError("side information does not match the model")
    bias = np.zeros((n_planes, fr.N_BIAS), np.int32)
    bias[flagged] = np.frombuffer(bytes(side[head + 11:]), dtype=np.int8).reshape(-1, fr.N_BIAS)
    return lane_rows, params, mix, (fy, fx), bias


def unpack_mix(raw) -> np.ndarray:
    """SIDE's 9 mix bytes -> int64 (3, 3), validated."""
    mix = np.frombuffer(bytes(raw), dtype=np.uint8).astype(np.int64).reshape(3, 3)
    try:
        return fr.check_mix(mix)
    except ValueError as e:
        raise DecodeError(f"bad table mix: {e}") from None
