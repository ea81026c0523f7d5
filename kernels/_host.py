"""Host-side helpers shared by the kernel wrappers (no kernel here): argument checks and conversions.

Everything a wrapper checks is cheap (shapes, dtypes, tiny tables); data-dependent checks are folded
into the kernels' status outputs so a wrapper needs at most one device->host read-back.
"""
from __future__ import annotations

import numpy as np
import torch

from tricodec.predictor_ref import check_bits

PREC_BITS = 16
PREC_TOTAL = 1 << PREC_BITS
RANS_L = 1 << 16

_INT_DTYPES = (torch.uint8, torch.int8, torch.int16, torch.int32, torch.int64, torch.uint16, torch.uint32)


def need_tensor(name: str, t, ndim: int | None = None) -> torch.Tensor:
    if not isinstance(t, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(t).__name__}")
    if ndim is not None and t.ndim != ndim:
        raise ValueError(f"{name} must have {ndim} dimension(s), got shape {tuple(t.shape)}")
    return t


def as_int(name: str, t: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """Contiguous ``dtype`` copy of an integer tensor (no copy when it already is one)."""
    if t.dtype not in _INT_DTYPES:
        raise TypeError(f"{name} must be an integer tensor, got {t.dtype}")
    if t.dtype != dtype:
        # torch has few kernels for uint16/uint32: widen through int64, which it always supports.
        t = t.to(torch.int64) if t.dtype in (torch.uint16, torch.uint32) else t
        t = t.to(dtype)
    return t.contiguous()


def check_cdf(cdf) -> torch.Tensor:
    """(T, A + 1) integer table -> contiguous int32 or int64 tensor (int64 kept as it is)."""
    cdf = need_tensor("cdf", cdf, 2)
    if cdf.shape[0] < 1 or cdf.shape[1] < 2:
        raise ValueError(f"cdf must be (T, A + 1) with T >= 1 and A >= 1, got {tuple(cdf.shape)}")
    return as_int("cdf", cdf, torch.int64 if cdf.dtype == torch.int64 else torch.int32)


def cdf_is_valid(cdf: torch.Tensor) -> torch.Tensor:
    """0-d bool tensor on cdf's device: rows start at 0, end at PREC_TOTAL and never decrease.

    Outside that contract the twin's unsigned arithmetic and the kernels' signed one could disagree,
    so the wrappers refuse such tables instead of writing an undecodable stream."""
    return (cdf[:, 0] == 0).all() & (cdf[:, -1] == PREC_TOTAL).all() & (cdf[:, 1:] >= cdf[:, :-1]).all()


def check_refs(refs, n_planes: int, device) -> torch.Tensor:
    """The twin's plane-reference rule (``refs[k]`` in [-1, k)) -> int32 tensor on ``device``."""
    if isinstance(refs, torch.Tensor):
        refs = refs.tolist()
    refs = [int(r) for r in refs]
    if len(refs) != n_planes:
        raise ValueError("planes must be uint8 (P, H, W) with one ref per plane")
    for k, r in enumerate(refs):
        if not (r == -1 or 0 <= r < k):
            raise ValueError("a plane can only reference an earlier plane")
    return torch.tensor(refs, dtype=torch.int32, device=device)


def check_planes(name: str, t, refs, bits: int = 8, check_samples: bool = False):
    """A uint8 or uint16 (P, H, W) plane stack, its refs and sample depth -> (refs as int32 on its
    device, an empty (P, H, W) output of t's dtype beside it, bits as an int): the checks both
    predictor kernels share.  The dtype/bits rule is the twin's (``predictor_ref.check_bits``: uint8
    only at 8 bits, uint16 at any depth in 1..16), so both refuse the same calls.

    ``check_samples`` (the encoder's side) also refuses a sample >= ``2**bits``, whose residual would
    not round-trip; it costs one reduction and a device->host read-back, paid only when the dtype can
    hold such a sample (never for uint8 at 8 bits or uint16 at 16)."""
    t = need_tensor(name, t)
    np_dtype = {torch.uint8: np.uint8, torch.uint16: np.uint16}.get(t.dtype)
    if t.ndim != 3 or np_dtype is None:
        raise ValueError("planes must be uint8 or uint16 (P, H, W) with one ref per plane")
    bits = check_bits(bits, np_dtype)
    refs_t = check_refs(refs, t.shape[0], t.device)
    if check_samples and t.dtype == torch.uint16 and bits < 16 and t.numel():
        # torch has few uint16 kernels; the same-size int16 view (no copy) has them all: a sample
        # >= 2**15 shows there as a negative value.  maxv (<= 2**15 - 1) is an int16 too: 2**15 as a
        # scalar would wrap.
        v = t.view(torch.int16)
        if bool(((v < 0) | (v > (1 << bits) - 1)).any()):
            raise ValueError(f"{name} hold a sample >= 2**{bits}")
    return refs_t, torch.empty(tuple(t.shape), dtype=t.dtype, device=t.device), bits


def lane_count(n_symbols: int, lane_size: int) -> int:
    return (n_symbols + lane_size - 1) // lane_size


def check_lane_size(lane_size) -> int:
    lane_size = int(lane_size)
    if lane_size < 1:
        raise ValueError("lane_size must be >= 1")
    return lane_size
