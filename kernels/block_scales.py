"""Side-information choice: Triton twin of :func:`tricodec.model.choose_block_scales`, bit for bit.

For every block of ``2**block_log2`` x ``2**block_log2`` pixels of every plane, the first table with the
smallest integer code length of the block's residuals.  Pseudo-Python::

    for k, by, bx in blocks:                          # programs: (block columns / BLOCK_B, block rows, P)
        best, arg = INF, 0
        for t in range(T):
            c = sum(cost[t, res[k, y, x]] for y, x in block(by, bx) if y < H and x < W)
            if c < best: best, arg = c, t             # strict: the first minimal table wins
        side_info[k, by, bx] = arg

Integer costs and integer sums: the reduction order cannot change a result, so the choice (and the
bytes written) is the same on every backend.
"""
from __future__ import annotations

import torch
import triton
import triton.language as tl

from ._host import as_int, need_tensor

BLOCK_B = 16        # blocks per program (pinned)
NUM_WARPS = 4


@triton.jit
def _block_scales_kernel(
    # pointers
    res_ptr, cost_ptr, out_ptr,
    # sizes
    H, W, n_tables, n_bx,
    stride_rp, stride_rh, stride_rw,
    stride_ct,
    stride_op, stride_oh, stride_ow,
    # meta-parameters
    BS_LOG2: tl.constexpr, BLOCK_B: tl.constexpr,
):
    pid_b = tl.program_id(0)
    by = tl.program_id(1)
    k = tl.program_id(2).to(tl.int64)
    BS: tl.constexpr = 1 << BS_LOG2
    bx = pid_b * BLOCK_B + tl.arange(0, BLOCK_B)                     # (BLOCK_B,)
    i = tl.arange(0, BS * BS)                                         # (BS*BS,)
    ys = by * BS + (i >> BS_LOG2)
    xs = bx[:, None] * BS + (i & (BS - 1))[None, :]                   # (BLOCK_B, BS*BS)
    inside = (ys[None, :] < H) & (xs < W)
    s = tl.load(res_ptr + k * stride_rp + ys[None, :].to(tl.int64) * stride_rh + xs * stride_rw,
                mask=inside, other=0).to(tl.int32)
    best = tl.full((BLOCK_B,), 2147483647, tl.int32)
    arg = tl.zeros((BLOCK_B,), tl.int32)
    for t in range(n_tables):
        c = tl.load(cost_ptr + t * stride_ct + s, mask=inside, other=0)
        total = tl.sum(c, axis=1)
        better = total < best
        best = tl.where(better, total, best)
        arg = tl.where(better, t, arg)
    tl.store(out_ptr + k * stride_op + by * stride_oh + bx * stride_ow, arg.to(tl.uint8), mask=bx < n_bx)


def choose_block_scales(residuals: torch.Tensor, cost: torch.Tensor, block_log2: int) -> torch.Tensor:
    """Per block and plane, the table with the smallest code length.

    Args:
        residuals: uint8 (P, H, W), any device.
        cost: int32 (T, 256) code lengths in 1/256 bit (``model.cost_units``), 1 <= T <= 256; every
            block's sum must fit int32 (it does: at most 64 x 4096 for 8x8 blocks).
        block_log2: block side is ``2 ** block_log2`` pixels (1..4).

    Returns:
        uint8 (P, ceil(H / bs), ceil(W / bs)) on residuals' device.
    """
    residuals = need_tensor("residuals", residuals, 3)
    if residuals.dtype != torch.uint8:
        raise TypeError(f"residuals must be uint8, got {residuals.dtype}")
    cost = as_int("cost", need_tensor("cost", cost, 2), torch.int32).to(residuals.device)
    if not 1 <= cost.shape[0] <= 256 or cost.shape[1] != 256:
        raise ValueError(f"cost must be (T, 256) with 1 <= T <= 256, got {tuple(cost.shape)}")
    block_log2 = int(block_log2)
    if not 1 <= block_log2 <= 4:
        raise ValueError("block_log2 must be in 1..4")
    p, h, w = residuals.shape
    bs = 1 << block_log2
    hb, wb = -(-h // bs), -(-w // bs)
    out = torch.empty((p, hb, wb), dtype=torch.uint8, device=residuals.device)
    if out.numel() == 0:
        return out
    grid = (triton.cdiv(wb, BLOCK_B), hb, p)
    _block_scales_kernel[grid](residuals, cost, out, h, w, cost.shape[0], wb, *residuals.stride(),
                               cost.stride(0), *out.stride(), BS_LOG2=block_log2, BLOCK_B=BLOCK_B,
                               num_warps=NUM_WARPS)
    return out
