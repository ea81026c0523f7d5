"""rANS lane encoder: Triton twin of :func:`tricodec.rans_ref.encode_lanes`, bit for bit.

The symbols are cut into lanes of ``lane_size`` consecutive symbols (the last one shorter); each lane is
coded alone from ``x = RANS_L = 2**16`` with a 32-bit state, 16-bit renormalisation words and 16-bit
frequencies.  One GPU thread per lane, ``BLOCK`` lanes per program, the symbols of a lane visited in
reverse (rANS is LIFO).  Pseudo-Python of the kernel (``stride = lane_size + 2``)::

    for lane in range(n_lanes):                          # vectorised: BLOCK lanes per program
        lo, hi = lane * lane_size, min(lane * lane_size + lane_size, n_symbols)
        top = lane * stride + stride - 1                 # last word of the lane's scratch slot
        x, m = RANS_L, 0                                 # int64 state (always < 2**32), words emitted
        for j in range(hi - 1, lo - 1, -1):
            t, s = table_ids[j], symbols[j]
            start = cdf[t, s]; f = cdf[t, s + 1] - start # f == 0 or t, s out of range: status[lane] = 1
            if x >= f << 16:                             # renormalise: emit the low word
                scratch[top - m] = x & 0xFFFF; m += 1; x >>= 16
            x = ((x // f) << 16) + x % f + start
        scratch[top - m] = x & 0xFFFF                    # final state, high word first in decode order
        scratch[top - m - 1] = x >> 16
        counts[lane] = m + 2

then ``offsets = exclusive_cumsum(counts)`` (torch) and ``lane_compact.py`` copies each lane's
right-aligned words to ``words[offsets[lane]:][:counts[lane]]``: the lanes one after another, each in
decode order ``[x >> 16, x & 0xFFFF, w_m, ..., w_1]`` exactly like the twin.

All integer; no atomics; each lane's arithmetic is sequential inside its own thread, so the bytes do not
depend on the block size, the grid or the device.
"""
from __future__ import annotations

import torch
import triton
import triton.language as tl

from ._host import RANS_L, as_int, cdf_is_valid, check_cdf, check_lane_size, lane_count, need_tensor
from .lane_compact import compact_lanes

BLOCK = 64          # lanes per program (one thread each; pinned)
NUM_WARPS = 2


@triton.jit
def _rans_encode_kernel(
    # pointers
    sym_ptr, tid_ptr, cdf_ptr, scratch_ptr, count_ptr, status_ptr,
    # sizes
    n_symbols, n_lanes, lane_size, n_steps, n_tables, n_alpha, stride_cdf_t,
    # meta-parameters
    RANS_L: tl.constexpr, BLOCK: tl.constexpr,
):
    pid = tl.program_id(0)
    lane = pid.to(tl.int64) * BLOCK + tl.arange(0, BLOCK)
    lane_ok = lane < n_lanes
    lo = lane * lane_size
    hi = tl.minimum(lo + lane_size, n_symbols)
    top = lane * (lane_size + 2) + lane_size + 1
    x = tl.full([BLOCK], RANS_L, tl.int64)
    m = tl.zeros([BLOCK], tl.int64)
    bad = tl.zeros([BLOCK], tl.int32)
    for i in range(n_steps):
        j = hi - 1 - i
        act = lane_ok & (j >= lo)
        t = tl.load(tid_ptr + j, mask=act, other=0)
        s = tl.load(sym_ptr + j, mask=act, other=0).to(tl.int32)
        ok = act & (t >= 0) & (t < n_tables) & (s < n_alpha)
        row = cdf_ptr + t.to(tl.int64) * stride_cdf_t + s
        start = tl.load(row, mask=ok, other=0).to(tl.int64)
        f = tl.load(row + 1, mask=ok, other=1).to(tl.int64) - start
        ok = ok & (f > 0)
        bad = tl.where(act & (ok == 0), 1, bad)
        f = tl.where(ok, f, 1)
        emit = ok & (x >= (f << 16))
        tl.store(scratch_ptr + top - m, (x & 0xFFFF).to(tl.uint16), mask=emit)
        m = m + emit.to(tl.int64)
        x = tl.where(emit, x >> 16, x)
        x = tl.where(ok, ((x // f) << 16) + x % f + start, x)
    tl.store(scratch_ptr + top - m, (x & 0xFFFF).to(tl.uint16), mask=lane_ok)
    tl.store(scratch_ptr + top - m - 1, (x >> 16).to(tl.uint16), mask=lane_ok)
    tl.store(count_ptr + lane, (m + 2).to(tl.int32), mask=lane_ok)
    tl.store(status_ptr + lane, bad, mask=lane_ok)


def encode_lanes(symbols: torch.Tensor, table_ids: torch.Tensor, cdf: torch.Tensor, lane_size: int):
    """Encode ``symbols`` in independent lanes; same contract and output values as the twin.

    Args:
        symbols: uint8 (N,), N >= 1; ``symbols[i]`` is coded with table ``table_ids[i]``.
        table_ids: int32 (N,) (other integer dtypes are converted), values in [0, T).
        cdf: int32 or int64 (T, A + 1) (other integer dtypes are converted): rows start at 0, end at
            65536, never decrease, and every symbol that occurs has a non-zero frequency.
        lane_size: symbols per lane (the last lane holds the rest).

    Returns:
        (counts, words) on the inputs' device: counts int32 (n_lanes,), words uint16 (sum(counts),).

    Raises:
        ValueError: shapes, devices, a malformed cdf, a table id out of [0, T), a symbol >= A or a
            symbol of zero frequency (the twin silently writes an undecodable stream for the last two).
    """
    symbols = need_tensor("symbols", symbols, 1)
    table_ids = need_tensor("table_ids", table_ids, 1)
    cdf = check_cdf(cdf)
    lane_size = check_lane_size(lane_size)
    n = symbols.shape[0]
    if table_ids.shape != (n,) or n == 0:
        raise ValueError("symbols and table_ids must be non-empty and of the same length")
    if not (symbols.device == table_ids.device == cdf.device):
        raise ValueError("symbols, table_ids and cdf must be on one device")
    symbols = as_int("symbols", symbols, torch.uint8)
    table_ids = as_int("table_ids", table_ids, torch.int32)
    dev = symbols.device
    n_lanes = lane_count(n, lane_size)
    stride = lane_size + 2
    scratch = torch.empty(n_lanes * stride, dtype=torch.uint16, device=dev)
    counts = torch.empty(n_lanes, dtype=torch.int32, device=dev)
    status = torch.empty(n_lanes, dtype=torch.int32, device=dev)
    grid = (triton.cdiv(n_lanes, BLOCK),)
    _rans_encode_kernel[grid](symbols, table_ids, cdf, scratch, counts, status,
                              n, n_lanes, lane_size, min(lane_size, n), cdf.shape[0], cdf.shape[1] - 1,
                              cdf.stride(0), RANS_L=RANS_L, BLOCK=BLOCK, num_warps=NUM_WARPS)
    ends = torch.cumsum(counts, 0, dtype=torch.int64)
    # The one read-back: the total size (to allocate the stream) and the input checks.
    total, n_bad, cdf_ok = torch.stack([ends[-1], (status != 0).sum(), cdf_is_valid(cdf).to(torch.int64)]).tolist()
    if not cdf_ok:
        raise ValueError("cdf rows must start at 0, end at 65536 and never decrease")
    if n_bad:
        raise ValueError("a symbol has zero frequency, or a table id / symbol is out of the cdf's range")
    offsets = ends - counts
    words = compact_lanes(scratch, counts, offsets, total, stride)
    return counts, words
