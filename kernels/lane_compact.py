"""Lane compaction: gather every lane's words from its fixed-size scratch slot into one contiguous stream.

The rANS encoder (``rans_encode.py``) writes lane ``l`` into ``scratch[l * stride : (l + 1) * stride]``
with its ``counts[l]`` words right-aligned (they are produced back to front).  This kernel copies them,
in order, to ``out[offsets[l] : offsets[l] + counts[l]]`` where ``offsets`` is the exclusive prefix sum
of ``counts`` (computed by ``torch.cumsum``: integer sums are exact in any order).  Pseudo-Python::

    for lane in range(n_lanes):                      # program axis 0
        for chunk in range(cdiv(stride, BLOCK)):     # program axis 1
            k = chunk * BLOCK + arange(BLOCK)        # vectorised
            keep = k < counts[lane]
            src = lane * stride + stride - counts[lane] + k
            out[offsets[lane] + k] = scratch[src]    where keep

Pure data movement: no arithmetic decides a value.
"""
from __future__ import annotations

import torch
import triton
import triton.language as tl

BLOCK = 1024        # words per program (pinned)
NUM_WARPS = 4


@triton.jit
def _lane_compact_kernel(
    # pointers
    scratch_ptr, count_ptr, offset_ptr, out_ptr,
    # sizes
    stride_lane,
    # meta-parameters
    BLOCK: tl.constexpr,
):
    lane = tl.program_id(0).to(tl.int64)
    chunk = tl.program_id(1)
    c = tl.load(count_ptr + lane).to(tl.int64)
    dst = tl.load(offset_ptr + lane).to(tl.int64)
    k = chunk * BLOCK + tl.arange(0, BLOCK)
    keep = k < c
    src = lane * stride_lane + stride_lane - c + k
    v = tl.load(scratch_ptr + src, mask=keep, other=0)
    tl.store(out_ptr + dst + k, v, mask=keep)


def compact_lanes(scratch: torch.Tensor, counts: torch.Tensor, offsets: torch.Tensor, total: int,
                  stride_lane: int) -> torch.Tensor:
    """scratch (n_lanes * stride_lane,), counts/offsets (n_lanes,) on one device -> (total,) of scratch's dtype.

    ``offsets`` must be the exclusive prefix sum of ``counts`` and ``total`` their sum; every count
    must lie in [0, stride_lane] (the encoder guarantees it)."""
    n_lanes = counts.shape[0]
    if scratch.ndim != 1 or scratch.shape[0] != n_lanes * stride_lane or offsets.shape != counts.shape:
        raise ValueError("scratch must hold n_lanes slots of stride_lane words")
    if not (scratch.device == counts.device == offsets.device):
        raise ValueError("scratch, counts and offsets must be on one device")
    out = torch.empty(total, dtype=scratch.dtype, device=scratch.device)
    if n_lanes == 0 or total == 0:
        return out
    grid = (n_lanes, triton.cdiv(stride_lane, BLOCK))
    _lane_compact_kernel[grid](scratch, counts.contiguous(), offsets.contiguous(), out, stride_lane,
                               BLOCK=BLOCK, num_warps=NUM_WARPS)
    return out
