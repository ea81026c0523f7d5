"""rANS lane decoder: Triton twin of :func:`tricodec.rans_ref.decode_lanes`, bit for bit.

One GPU thread per lane, ``BLOCK`` lanes per program, each lane decoded forward from its own words
(``offsets`` = exclusive prefix sum of ``counts``, by ``torch.cumsum``).  Pseudo-Python of the kernel::

    for lane in range(n_lanes):                          # vectorised: BLOCK lanes per program
        lo, hi = lane * lane_size, min(lane * lane_size + lane_size, n_symbols)
        pos, end = offsets[lane], offsets[lane] + counts[lane]
        x = words[pos] << 16 | words[pos + 1]; pos += 2  # int64 state, always < 2**32
        bad = 0
        for j in range(lo, hi):
            t = table_ids[j]
            slot = x & 0xFFFF
            a = 0                                        # binary search, N_SEARCH = ceil(log2(A)) probes:
            for q in range(N_SEARCH):                    # a = the largest s with cdf[t, s] <= slot
                cand = a + (1 << (N_SEARCH - 1 - q))
                if cand < A and cdf[t, cand] <= slot: a = cand
            start = cdf[t, a]; f = cdf[t, a + 1] - start
            symbols[j] = a
            x = f * (x >> 16) + slot - start
            if x < RANS_L:
                if pos < end: x = x << 16 | words[pos]; pos += 1
                else: bad = 1; break                     # ran out of words
        if not bad and (pos != end or x != RANS_L):      # words left over / wrong final state
            bad = 1
        status[lane] = bad

The symbol is the unique ``a`` with ``cdf[t, a] <= slot < cdf[t, a + 1]`` (as ``cdf[t, 0] == 0`` and
``cdf[t, A] == 65536 > slot``), so this fixed-step search (no data-dependent trip count, unrolled) finds
the twin's symbol whenever the rows never decrease, which the wrapper checks.  The wrapper also checks,
with one read-back before the launch, the lane table (exactly the twin's ``check_lane_table`` rules, so
every load stays inside ``words``) and the table ids' range; after it, it raises
:class:`tricodec.errors.DecodeError` naming the first corrupted lane, like the twin.
"""
from __future__ import annotations

import torch
import triton
import triton.language as tl

from tricodec.errors import DecodeError
from tricodec.rans_ref import check_counts

from ._host import PREC_TOTAL, RANS_L, as_int, cdf_is_valid, check_cdf, check_lane_size, lane_count, need_tensor

BLOCK = 64          # lanes per program (one thread each; pinned)
NUM_WARPS = 2


@triton.jit
def _rans_decode_kernel(
    # pointers
    count_ptr, offset_ptr, word_ptr, tid_ptr, cdf_ptr, out_ptr, status_ptr,
    # sizes
    n_symbols, n_lanes, lane_size, n_steps, n_alpha, stride_cdf_t,
    # meta-parameters
    N_SEARCH: tl.constexpr, RANS_L: tl.constexpr, PREC_TOTAL: tl.constexpr, BLOCK: tl.constexpr,
):
    pid = tl.program_id(0)
    lane = pid.to(tl.int64) * BLOCK + tl.arange(0, BLOCK)
    lane_ok = lane < n_lanes
    lo = lane * lane_size
    hi = tl.minimum(lo + lane_size, n_symbols)
    pos = tl.load(offset_ptr + lane, mask=lane_ok, other=0)
    end = pos + tl.load(count_ptr + lane, mask=lane_ok, other=0)
    w0 = tl.load(word_ptr + pos, mask=lane_ok, other=0).to(tl.int64) & 0xFFFF
    w1 = tl.load(word_ptr + pos + 1, mask=lane_ok, other=0).to(tl.int64) & 0xFFFF
    x = (w0 << 16) | w1
    pos = pos + 2
    bad = tl.zeros([BLOCK], tl.int32)
    for i in range(n_steps):
        j = lo + i
        act = lane_ok & (j < hi) & (bad == 0)
        t = tl.load(tid_ptr + j, mask=act, other=0)
        row = cdf_ptr + t.to(tl.int64) * stride_cdf_t
        slot = x & 0xFFFF
        # Binary search, power-of-two steps: a ends as the largest s < A with cdf[t, s] <= slot.
        a = tl.zeros([BLOCK], tl.int32)
        for q in tl.static_range(N_SEARCH):
            cand = a + (1 << (N_SEARCH - 1 - q))
            probe = tl.load(row + cand, mask=act & (cand < n_alpha), other=PREC_TOTAL)
            a = tl.where(probe <= slot, cand, a)
        start = tl.load(row + a, mask=act, other=0).to(tl.int64)
        f = tl.load(row + a + 1, mask=act, other=0).to(tl.int64) - start
        tl.store(out_ptr + j, a.to(tl.uint8), mask=act)
        x = tl.where(act, f * (x >> 16) + slot - start, x)
        need = act & (x < RANS_L)
        take = need & (pos < end)
        w = tl.load(word_ptr + pos, mask=take, other=0).to(tl.int64) & 0xFFFF
        x = tl.where(take, (x << 16) | w, x)
        pos = pos + take.to(tl.int64)
        bad = tl.where(need & (take == 0), 1, bad)
    bad = tl.where((bad == 0) & ((pos != end) | (x != RANS_L)), 1, bad)
    tl.store(status_ptr + lane, bad, mask=lane_ok)


def decode_lanes(counts: torch.Tensor, words: torch.Tensor, table_ids: torch.Tensor, cdf: torch.Tensor,
                 lane_size: int) -> torch.Tensor:
    """Decode what :func:`encode_lanes` (either twin) wrote.

    Args:
        counts: integer (n_lanes,), each >= 2, summing to len(words).
        words: uint16 (W,) (int32 is accepted; values are taken mod 2**16 like the twin's cast).
        table_ids: int32 (N,) with ``lane_count(N, lane_size) == n_lanes``, values in [0, T).
        cdf: int32 or int64 (T, A + 1), the tables the encoder used (A <= 256).
        lane_size: symbols per lane.

    Returns:
        uint8 (N,) on the inputs' device: the symbols.

    Raises:
        DecodeError: the lane table does not fit the stream, or a lane ran out of words, left words
            unread or did not end in the initial state.
        ValueError: shapes, devices, a malformed cdf or a table id out of [0, T).
    """
    counts = need_tensor("counts", counts, 1)
    words = need_tensor("words", words, 1)
    table_ids = need_tensor("table_ids", table_ids, 1)
    cdf = check_cdf(cdf)
    lane_size = check_lane_size(lane_size)
    if cdf.shape[1] - 1 > 256:
        raise ValueError("at most 256 symbols per table (the symbols are uint8)")
    if not (counts.device == words.device == table_ids.device == cdf.device):
        raise ValueError("counts, words, table_ids and cdf must be on one device")
    counts = as_int("counts", counts, torch.int64)
    table_ids = as_int("table_ids", table_ids, torch.int32)
    if words.dtype not in (torch.uint16, torch.int32):
        words = as_int("words", words, torch.int32)
    words = words.contiguous()
    n = table_ids.shape[0]
    n_lanes = counts.shape[0]
    # The twin's check_lane_table, in its order, with one read-back.
    if n <= 0 or n_lanes != lane_count(n, lane_size):
        raise DecodeError("lane table does not match the image size")
    c_min, c_max, c_sum, cdf_ok, t_min, t_max = torch.stack([
        counts.min(), counts.max(), counts.sum(), cdf_is_valid(cdf).to(torch.int64),
        table_ids.min().to(torch.int64), table_ids.max().to(torch.int64)]).tolist()
    check_counts(c_min, c_max, c_sum, words.shape[0], lane_size + 2)
    if not cdf_ok:
        raise ValueError("cdf rows must start at 0, end at 65536 and never decrease")
    if t_min < 0 or t_max >= cdf.shape[0]:
        raise ValueError("a table id is out of the cdf's range")
    offsets = torch.cumsum(counts, 0) - counts
    out = torch.empty(n, dtype=torch.uint8, device=counts.device)
    status = torch.empty(n_lanes, dtype=torch.int32, device=counts.device)
    n_alpha = cdf.shape[1] - 1
    n_search = (n_alpha - 1).bit_length()           # ceil(log2(A)) probes
    grid = (triton.cdiv(n_lanes, BLOCK),)
    _rans_decode_kernel[grid](counts, offsets, words, table_ids, cdf, out, status,
                              n, n_lanes, lane_size, min(lane_size, n), n_alpha, cdf.stride(0),
                              N_SEARCH=n_search, RANS_L=RANS_L, PREC_TOTAL=PREC_TOTAL,
                              BLOCK=BLOCK, num_warps=NUM_WARPS)
    first, n_bad = torch.stack([status.to(torch.int64).argmax(), status.sum(dtype=torch.int64)]).tolist()
    if n_bad:
        raise DecodeError(f"corrupted entropy-coded data in lane {first}")
    return out
