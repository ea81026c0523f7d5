"""Side information of the block-scale models: one table index per 8x8 block and plane, delta-coded along
rows (modulo the number of tables) and entropy coded with one per-image frequency table (one u16 per
table) sent in the section, then rANS lanes of the model's lane size."""
from __future__ import annotations

import numpy as np

from . import container as fmt
from .errors import DecodeError
from .rans_ref import PREC_TOTAL, decode_lanes, encode_lanes
from .tables import freqs_to_cdf, quantize_counts


def _side_deltas(q: np.ndarray, k: int) -> np.ndarray:
    pred = np.zeros_like(q, dtype=np.int32)
    pred[:, :, 1:] = q[:, :, :-1]
    pred[:, 1:, 0] = q[:, :-1, 0]
    return ((q.astype(np.int32) - pred) % k).astype(np.uint8)


def _side_undeltas(d: np.ndarray, k: int) -> np.ndarray:
    d = d.astype(np.int64)
    first = np.cumsum(d[:, :, 0], axis=1)
    d[:, :, 0] = first
    return (np.cumsum(d, axis=2) % k).astype(np.uint8)


def encode_side(q: np.ndarray, n_tables: int, lane_log2: int) -> bytes:
    """Side information is small (1/64 of the symbols): always coded on the host by the CPU twin, which
    writes the same bytes as every other backend."""
    k = n_tables
    d = _side_deltas(q, k).ravel()
    freq = quantize_counts(np.bincount(d, minlength=k))
    counts, words = encode_lanes(d, np.zeros(d.shape[0], np.int32), freqs_to_cdf(freq)[None], 1 << lane_log2)
    return bytes([k]) + freq.astype("<u2").tobytes() + fmt.pack_lanes(lane_log2, counts, words)


def decode_side(payload: memoryview, n_tables: int, shape: tuple) -> np.ndarray:
    k = n_tables
    if len(payload) < 1 + 2 * k or payload[0] != k:
        raise DecodeError("side information does not match the model")
    freq = np.frombuffer(payload, dtype="<u2", count=k, offset=1).astype(np.uint32)
    if freq.min() < 1 or int(freq.sum()) != PREC_TOTAL:
        raise DecodeError("corrupted side-information table")
    n = int(np.prod(shape))
    lane_size, counts, words = fmt.unpack_lanes(payload[1 + 2 * k:], n)
    d = decode_lanes(counts, words, np.zeros(n, np.int32), freqs_to_cdf(freq)[None], lane_size)
    return _side_undeltas(d.reshape(shape), k)
