"""Table ids from block side information: Triton twin of :func:`tricodec.model.block_table_ids`.

Each symbol's table id is its block's side-info value, a 2-D tiled gather.  Pseudo-Python::

    for k in range(P):                                   # program axis 2
        for y, x in tile:                                # vectorised, BLOCK_H x BLOCK_W
            ids[k, y, x] = side_info[k, y >> block_log2, x >> block_log2]

Pure integer indexing: exact on every device.
"""
from __future__ import annotations

import torch
import triton
import triton.language as tl

from ._host import need_tensor

BLOCK_H = 16        # pinned tile: 16 x 64 ids per program
BLOCK_W = 64
NUM_WARPS = 4


@triton.jit
def _table_ids_kernel(
    # pointers
    side_ptr, out_ptr,
    # sizes
    H, W, block_log2,
    stride_sp, stride_sh, stride_sw,
    stride_op, stride_oh, stride_ow,
    # meta-parameters
    BLOCK_H: tl.constexpr, BLOCK_W: tl.constexpr,
):
    pid_w = tl.program_id(0)
    pid_h = tl.program_id(1)
    k = tl.program_id(2).to(tl.int64)
    ys = (pid_h * BLOCK_H + tl.arange(0, BLOCK_H))[:, None]
    xs = (pid_w * BLOCK_W + tl.arange(0, BLOCK_W))[None, :]
    inside = (ys < H) & (xs < W)
    q = tl.load(side_ptr + k * stride_sp + (ys >> block_log2) * stride_sh + (xs >> block_log2) * stride_sw,
                mask=inside, other=0)
    tl.store(out_ptr + k * stride_op + ys * stride_oh + xs * stride_ow, q.to(tl.int32), mask=inside)


def block_table_ids(side_info: torch.Tensor, height: int, width: int, block_log2: int) -> torch.Tensor:
    """``ids[k, y, x] = side_info[k, y >> block_log2, x >> block_log2]``.

    Args:
        side_info: integer (P, Hb, Wb) (uint8 from the model), any strides, any device; the grid must
            cover the image: ``Hb > (height - 1) >> block_log2`` and ``Wb > (width - 1) >> block_log2``.
        height, width: the image size.
        block_log2: side-info cell side is ``2 ** block_log2`` pixels.

    Returns:
        int32 (P, height, width), contiguous, on side_info's device.
    """
    side_info = need_tensor("side_info", side_info, 3)
    if side_info.dtype.is_floating_point or side_info.dtype.is_complex or side_info.dtype == torch.bool:
        raise TypeError(f"side_info must be an integer tensor, got {side_info.dtype}")
    height, width, block_log2 = int(height), int(width), int(block_log2)
    if height < 0 or width < 0 or block_log2 < 0:
        raise ValueError("height, width and block_log2 must be >= 0")
    p, hb, wb = side_info.shape
    out = torch.empty((p, height, width), dtype=torch.int32, device=side_info.device)
    if out.numel() == 0:
        return out
    if hb <= (height - 1) >> block_log2 or wb <= (width - 1) >> block_log2:
        raise ValueError(f"side info grid {hb}x{wb} does not cover {height}x{width} with blocks of 2^{block_log2}")
    grid = (triton.cdiv(width, BLOCK_W), triton.cdiv(height, BLOCK_H), p)
    _table_ids_kernel[grid](side_info, out, height, width, block_log2, *side_info.stride(), *out.stride(),
                            BLOCK_H=BLOCK_H, BLOCK_W=BLOCK_W, num_warps=NUM_WARPS)
    return out
