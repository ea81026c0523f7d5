"""The rANS lane coder twin: exact round trips, the golden message, rate close to the entropy."""
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from tricodec.errors import DecodeError
from tricodec.rans_ref import PREC_TOTAL, decode_lanes, encode_lanes, lane_count
from tricodec.tables import freqs_to_cdf, laplace_family, quantize_counts


def _tables(rng, n_tables, n_symbols):
    return freqs_to_cdf(np.stack([quantize_counts(rng.random(n_symbols) ** 4) for _ in range(n_tables)]))


@settings(max_examples=60, deadline=None)
@given(n=st.integers(1, 3000), lane_log2=st.integers(0, 9), n_tables=st.integers(1, 5),
       n_symbols=st.sampled_from([2, 3, 17, 256]), seed=st.integers(0, 2**31))
def test_round_trip_any_message(n, lane_log2, n_tables, n_symbols, seed):
    rng = np.random.default_rng(seed)
    cdf = _tables(rng, n_tables, n_symbols)
    sym = rng.integers(0, n_symbols, n).astype(np.uint8)
    ids = rng.integers(0, n_tables, n).astype(np.int32)
    counts, words = encode_lanes(sym, ids, cdf, 1 << lane_log2)
    assert counts.shape == (lane_count(n, 1 << lane_log2),)
    assert (counts >= 2).all() and counts.sum() == words.size
    assert np.array_equal(decode_lanes(counts, words, ids, cdf, 1 << lane_log2), sym)


def test_golden_message():
    """Pins the exact words of a tiny hand-made message: the coder's arithmetic is part of the format."""
    freq = np.array([[32768, 16384, 8192, 8192], [1, 1, 1, 65533]], dtype=np.uint32)
    cdf = freqs_to_cdf(freq)
    sym = np.array([0, 1, 2, 3, 3, 0, 2, 1, 0, 3], dtype=np.uint8)
    ids = np.array([0, 0, 0, 0, 1, 1, 0, 0, 0, 1], dtype=np.int32)
    counts, words = encode_lanes(sym, ids, cdf, 4)
    assert counts.tolist() == GOLDEN_COUNTS
    assert words.tolist() == GOLDEN_WORDS
    assert np.array_equal(decode_lanes(counts, words, ids, cdf, 4), sym)


GOLDEN_COUNTS = [2, 3, 2]
GOLDEN_WORDS = [575, 0, 36, 111, 49152, 2, 6]


def test_rate_within_one_percent_of_cross_entropy():
    rng = np.random.default_rng(1)
    cdf = freqs_to_cdf(laplace_family(16, 0.15, 80.0))
    freq = np.diff(cdf.astype(np.int64), axis=1)
    n = 1 << 20
    ids = rng.integers(2, 14, n).astype(np.int32)
    u = rng.integers(0, PREC_TOTAL, n)
    sym = np.empty(n, dtype=np.uint8)
    for t in np.unique(ids):
        m = ids == t
        sym[m] = np.searchsorted(cdf[t], u[m], side="right") - 1
    bits = -np.log2(freq[ids, sym] / PREC_TOTAL).sum()
    counts, words = encode_lanes(sym, ids, cdf, 8192)
    total_bits = 16 * words.size + 32 * counts.size
    assert total_bits < 1.01 * bits
    assert 32 * counts.size < 0.005 * total_bits  # lane overhead: final states + lengths


def test_corrupted_stream_raises():
    rng = np.random.default_rng(3)
    cdf = _tables(rng, 2, 256)
    sym = rng.integers(0, 256, 5000).astype(np.uint8)
    ids = rng.integers(0, 2, 5000).astype(np.int32)
    counts, words = encode_lanes(sym, ids, cdf, 1024)
    bad = words.copy()
    bad[7] ^= 0x40
    with pytest.raises(DecodeError):
        decode_lanes(counts, bad, ids, cdf, 1024)
    with pytest.raises(DecodeError):
        decode_lanes(counts[:-1], words, ids, cdf, 1024)
    short = counts.copy()
    short[0] -= 1
    with pytest.raises(DecodeError):
        decode_lanes(short, words[:-1], ids, cdf, 1024)


def test_uncodable_symbol_is_refused():
    cdf = freqs_to_cdf(np.array([[65536, 0]], dtype=np.uint32))
    with pytest.raises(ValueError, match="zero frequency"):
        encode_lanes(np.array([0, 1], np.uint8), np.zeros(2, np.int32), cdf, 64)
    with pytest.raises(ValueError, match="out of range"):
        encode_lanes(np.array([0, 2], np.uint8), np.zeros(2, np.int32), cdf, 64)
