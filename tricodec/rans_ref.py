"""rANS over many independent lanes: the CPU reference twin of ``kernels/rans_encode.py`` / ``kernels/rans_decode.py``.

Coder parameters (part of the bitstream, never change without a format version bump):

* state ``x`` is 32 bits and lives in ``[RANS_L, 2**32)`` with ``RANS_L = 2**16``;
* renormalisation moves one 16-bit word at a time;
* frequencies have ``PREC_BITS = 16`` bits: every table's cdf runs from 0 to 65536;
* the symbol sequence is cut into lanes of ``lane_size`` consecutive symbols (the last one shorter);
  each lane is coded alone, starting from ``x = RANS_L``.

A lane's words are stored in *decode order*: ``[x >> 16, x & 0xffff, w_m, ..., w_1]`` where ``x`` is the
final encoder state and ``w_1..w_m`` the words the encoder emitted (rANS is LIFO, so the encoder runs
from the lane's last symbol to its first).  The decoder must end a lane with every word consumed and
the state back at ``RANS_L``: a free integrity check that catches most corruption.

Everything here is integer arithmetic, so every machine and backend writes and reads the same bytes.
"""
from __future__ import annotations

import hashlib

import numpy as np
from numba import njit, prange

from .errors import DecodeError

PREC_BITS = 16
PREC_TOTAL = 1 << PREC_BITS
RANS_L = 1 << 16


def _ids(table_ids: np.ndarray) -> np.ndarray:
    """Table ids as they are when uint8 (T <= 256: saves memory on big images), else int32."""
    table_ids = np.ascontiguousarray(table_ids)
    return table_ids if table_ids.dtype == np.uint8 else table_ids.astype(np.int32, copy=False)


def lane_count(n_symbols: int, lane_size: int) -> int:
    return (n_symbols + lane_size - 1) // lane_size


@njit(cache=True, parallel=True, nogil=True)
def _encode_lanes_nb(symbols, table_ids, cdf, lane_size, scratch, counts):
    n = symbols.shape[0]
    n_lanes = counts.shape[0]
    stride = lane_size + 2
    for lane in prange(n_lanes):
        lo = lane * lane_size
        hi = min(lo + lane_size, n)
        base = lane * stride
        x = np.uint64(RANS_L)
        m = 0
        # Emitted words are stacked from the end of the lane's slot backwards, so the slot ends up
        # holding them in decode order with room for the two state words in front.
        for j in range(hi - 1, lo - 1, -1):
            t = table_ids[j]
            s = symbols[j]
            start = np.uint64(cdf[t, s])
            f = np.uint64(cdf[t, s + 1]) - start
            if f == 0:  # a symbol its table cannot code: flagged, the wrapper raises
                m = -1
                break
            if x >= (f << np.uint64(16)):
                scratch[base + stride - 1 - m] = np.uint16(x & np.uint64(0xFFFF))
                m += 1
                x >>= np.uint64(16)
            x = ((x // f) << np.uint64(16)) + (x % f) + start
        if m < 0:
            counts[lane] = 0
            continue
        scratch[base + stride - 1 - m] = np.uint16(x & np.uint64(0xFFFF))
        scratch[base + stride - 2 - m] = np.uint16(x >> np.uint64(16))
        counts[lane] = m + 2


@njit(cache=True, nogil=True)
def _compact_nb(scratch, counts, lane_size, out):
    stride = lane_size + 2
    pos = 0
    for lane in range(counts.shape[0]):
        c = counts[lane]
        src = lane * stride + stride - c
        out[pos:pos + c] = scratch[src:src + c]
        pos += c


def encode_lanes(symbols: np.ndarray, table_ids: np.ndarray, cdf: np.ndarray, lane_size: int):
    """Encode ``symbols`` in independent lanes.

    Args:
        symbols: uint8, shape (N,), N >= 1; symbol ``symbols[i]`` is coded with table ``table_ids[i]``.
        table_ids: uint8 or int32, shape (N,), values in [0, T).
        cdf: uint32, shape (T, A + 1); ``cdf[t, 0] == 0``, ``cdf[t, A] == 65536``, non-decreasing, and
            every symbol that occurs has a non-zero frequency ``cdf[t, s + 1] - cdf[t, s]``.
        lane_size: symbols per lane (the last lane holds the rest).

    Returns:
        (counts, words): counts is uint32 (n_lanes,), the number of 16-bit words of each lane;
        words is uint16 (sum(counts),), the lanes one after another, each in decode order.
    """
    symbols = np.ascontiguousarray(symbols, dtype=np.uint8)
    table_ids = _ids(table_ids)
    cdf = np.ascontiguousarray(cdf, dtype=np.uint32)
    n = symbols.shape[0]
    if table_ids.shape != (n,) or n == 0:
        raise ValueError("symbols and table_ids must be non-empty and of the same length")
    n_lanes = lane_count(n, lane_size)
    scratch = np.empty(n_lanes * (lane_size + 2), dtype=np.uint16)
    counts = np.empty(n_lanes, dtype=np.uint32)
    if int(table_ids.min()) < 0 or int(table_ids.max()) >= cdf.shape[0] or int(symbols.max()) >= cdf.shape[1] - 1:
        raise ValueError("table id or symbol out of range")
    _encode_lanes_nb(symbols, table_ids, cdf, lane_size, scratch, counts)
    if int(counts.min()) == 0:
        raise ValueError("a symbol has zero frequency in its table")
    words = np.empty(int(counts.sum(dtype=np.int64)), dtype=np.uint16)
    _compact_nb(scratch, counts, lane_size, words)
    return counts, words


@njit(cache=True, parallel=True, nogil=True)
def _decode_lanes_nb(counts, offsets, words, table_ids, cdf, lut, lane_size, out, status):
    n = out.shape[0]
    for lane in prange(counts.shape[0]):
        lo = lane * lane_size
        hi = min(lo + lane_size, n)
        pos = offsets[lane]
        end = pos + counts[lane]
        x = (np.uint64(words[pos]) << np.uint64(16)) | np.uint64(words[pos + 1])
        pos += 2
        bad = 0
        for j in range(lo, hi):
            t = table_ids[j]
            slot = x & np.uint64(0xFFFF)
            a = np.int64(lut[t, slot])  # the s with cdf[t, s] <= slot < cdf[t, s + 1]
            start = np.uint64(cdf[t, a])
            f = np.uint64(cdf[t, a + 1]) - start
            out[j] = a
            x = f * (x >> np.uint64(16)) + slot - start
            if x < np.uint64(RANS_L):
                if pos < end:
                    x = (x << np.uint64(16)) | np.uint64(words[pos])
                    pos += 1
                else:
                    bad = 1
                    break
        if bad == 0 and (pos != end or x != np.uint64(RANS_L)):
            bad = 1
        status[lane] = bad


def decode_lanes(counts: np.ndarray, words: np.ndarray, table_ids: np.ndarray, cdf: np.ndarray,
                 lane_size: int) -> np.ndarray:
    """Decode what :func:`encode_lanes` wrote.

    Args:
        counts: uint32, shape (n_lanes,), each >= 2, summing to len(words).
        words: uint16, shape (W,).
        table_ids: uint8 or int32, shape (N,) with ``lane_count(N, lane_size) == n_lanes``.
        cdf: uint32, shape (T, A + 1), the same tables the encoder used.
        lane_size: symbols per lane.

    Returns:
        uint8, shape (N,): the symbols.

    Raises:
        DecodeError: a lane ran out of words, left words unread or did not end in the initial state.
    """
    counts = np.ascontiguousarray(counts, dtype=np.uint32)
    words = np.ascontiguousarray(words, dtype=np.uint16)
    table_ids = _ids(table_ids)
    cdf = np.ascontiguousarray(cdf, dtype=np.uint32)
    n = table_ids.shape[0]
    check_lane_table(counts, words.shape[0], n, lane_size)
    offsets = np.zeros(counts.shape[0], dtype=np.int64)
    np.cumsum(counts[:-1], out=offsets[1:])
    out = np.empty(n, dtype=np.uint8)
    status = np.zeros(counts.shape[0], dtype=np.uint8)
    _decode_lanes_nb(counts, offsets, words, table_ids, cdf, slot_lookup(cdf), lane_size, out, status)
    if status.any():
        raise DecodeError(f"corrupted entropy-coded data in lane {int(np.argmax(status))}")
    return out


_LUT_CACHE: dict = {}


def slot_lookup(cdf: np.ndarray) -> np.ndarray:
    """uint8 (T, 65536): the symbol of every slot of every table (a look-up instead of a search; the
    symbol is the same, as each slot falls in exactly one symbol's range). Cached per table set."""
    key = (hashlib.sha1(cdf.tobytes()).digest(), cdf.shape)
    lut = _LUT_CACHE.get(key)
    if lut is None:
        freq = np.diff(cdf.astype(np.int64), axis=1)
        if cdf.shape[1] - 1 > 256 or (freq < 0).any() or (cdf[:, -1] != PREC_TOTAL).any() or (cdf[:, 0] != 0).any():
            raise ValueError("cdf rows must run from 0 to 65536 without decreasing, over at most 256 symbols")
        lut = np.stack([np.repeat(np.arange(freq.shape[1], dtype=np.uint8), f) for f in freq])
        if len(_LUT_CACHE) > 16:
            _LUT_CACHE.clear()
        _LUT_CACHE[key] = lut
    return lut


def check_lane_table(counts: np.ndarray, n_words: int, n_symbols: int, lane_size: int) -> None:
    """Validate a lane length table against the stream it describes, before any decoding."""
    if n_symbols <= 0 or counts.shape[0] != lane_count(n_symbols, lane_size):
        raise DecodeError("lane table does not match the image size")
    if counts.shape[0]:
        check_counts(int(counts.min()), int(counts.max()), int(counts.sum(dtype=np.int64)), n_words, lane_size + 2)


def check_counts(c_min: int, c_max: int, c_sum: int, n_words: int, max_words: int) -> None:
    """The lane-length rules every decoder applies (twins and kernel wrappers, in this order): each lane
    holds its 2-word final state and at most ``max_words`` words, and the lanes add up to the data."""
    if c_min < 2:
        raise DecodeError("lane shorter than its final state")
    if c_max > max_words:
        raise DecodeError("lane longer than any encoder writes")
    if c_sum != n_words:
        raise DecodeError("lane lengths do not add up to the lane data size")
