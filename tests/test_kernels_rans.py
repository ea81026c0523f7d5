"""The Triton rANS kernels equal their CPU twin (tricodec.rans_ref) bit for bit, in both directions.

Without a GPU the kernels run under the Triton interpreter (conftest sets TRITON_INTERPRET), which costs
per executed operation: inputs are tiny and lanes short.  With a GPU the same tests run on CUDA tensors,
and the ``gpu`` tests add real sizes.
"""
import numpy as np
import pytest
import torch

from tricodec import rans_ref
from tricodec.errors import DecodeError
from tricodec.kernels import rans_decode, rans_encode
from tricodec.tables import freqs_to_cdf, laplace_family, quantize_counts

DEV = "cuda" if torch.cuda.is_available() else "cpu"


def _t(a, dtype=None):
    return torch.from_numpy(np.ascontiguousarray(a, dtype=dtype)).to(DEV)


def _np(t):
    return t.cpu().numpy()


def _tables(rng, n_tables, n_symbols, kind):
    if kind == "uniform":
        freq = [quantize_counts(np.ones(n_symbols)) for _ in range(n_tables)]
    elif kind == "skewed":
        freq = [quantize_counts(rng.random(n_symbols) ** 6) for _ in range(n_tables)]
    elif kind == "peaked":  # one symbol takes almost everything: f close to 2**16 and f == 1 neighbours
        freq = []
        for _ in range(n_tables):
            f = np.ones(n_symbols, dtype=np.int64)
            f[rng.integers(n_symbols)] += (1 << 16) - n_symbols
            freq.append(f)
    else:
        raise ValueError(kind)
    return freqs_to_cdf(np.stack(freq).astype(np.uint32))


def _message(rng, cdf, n):
    """Symbols drawn from the tables they are coded with (so rates are realistic), ids uniform."""
    n_tables = cdf.shape[0]
    ids = rng.integers(0, n_tables, n).astype(np.int32)
    u = rng.integers(0, 1 << 16, n)
    sym = np.empty(n, dtype=np.uint8)
    for t in range(n_tables):
        m = ids == t
        sym[m] = np.searchsorted(cdf[t], u[m], side="right") - 1
    return sym, ids


def _kernel_encode(sym, ids, cdf, lane_size, cdf_dtype=np.int32):
    counts, words = rans_encode.encode_lanes(_t(sym), _t(ids), _t(cdf, cdf_dtype), lane_size)
    assert counts.device.type == DEV and words.device.type == DEV
    return _np(counts), _np(words)


def _kernel_decode(counts, words, ids, cdf, lane_size, cdf_dtype=np.int32):
    out = rans_decode.decode_lanes(_t(counts, np.int64), _t(words), _t(ids), _t(cdf, cdf_dtype), lane_size)
    assert out.dtype == torch.uint8 and out.device.type == DEV
    return _np(out)


CASES = [  # (n symbols, lane_size, n tables, alphabet, table kind)
    (1, 64, 1, 256, "skewed"),         # one symbol, one lane
    (63, 64, 2, 256, "uniform"),       # one short lane
    (64, 64, 3, 256, "skewed"),        # exactly one lane
    (65, 64, 3, 256, "peaked"),        # a last lane of one symbol
    (203, 64, 4, 256, "skewed"),       # several lanes, short last lane
    (700, 8, 5, 256, "skewed"),        # 88 lanes: more than one program of 64 lanes
    (97, 1, 2, 17, "uniform"),         # lanes of one symbol
    (301, 7, 3, 3, "skewed"),          # odd everything, tiny alphabet
    (120, 33, 1, 2, "peaked"),         # binary alphabet, f = 1 and f = 65535
]


@pytest.mark.parametrize("n,lane_size,n_tables,n_symbols,kind", CASES)
def test_encode_decode_equal_twin_both_ways(n, lane_size, n_tables, n_symbols, kind):
    rng = np.random.default_rng(n * 131 + lane_size)
    cdf = _tables(rng, n_tables, n_symbols, kind)
    sym, ids = _message(rng, cdf, n)
    c_ref, w_ref = rans_ref.encode_lanes(sym, ids, cdf, lane_size)
    c_k, w_k = _kernel_encode(sym, ids, cdf, lane_size)
    assert c_k.dtype == np.int32 and w_k.dtype == np.uint16
    assert np.array_equal(c_k, c_ref)
    assert np.array_equal(w_k, w_ref)
    # kernel-encoded -> twin decode, twin-encoded -> kernel decode
    assert np.array_equal(rans_ref.decode_lanes(c_k.astype(np.uint32), w_k, ids, cdf, lane_size), sym)
    assert np.array_equal(_kernel_decode(c_ref, w_ref, ids, cdf, lane_size), sym)


def test_uniform_random_symbols_and_int64_tables():
    """Symbols not drawn from their tables (a rare-symbol-heavy message), cdf given as int64."""
    rng = np.random.default_rng(5)
    cdf = _tables(rng, 3, 256, "skewed")
    sym = rng.integers(0, 256, 150).astype(np.uint8)
    ids = rng.integers(0, 3, 150).astype(np.int32)
    c_ref, w_ref = rans_ref.encode_lanes(sym, ids, cdf, 40)
    c_k, w_k = _kernel_encode(sym, ids, cdf, 40, cdf_dtype=np.int64)
    assert np.array_equal(c_k, c_ref) and np.array_equal(w_k, w_ref)
    assert np.array_equal(_kernel_decode(c_ref, w_ref, ids, cdf, 40, cdf_dtype=np.int64), sym)
    # words handed over as int32 decode the same
    out = rans_decode.decode_lanes(_t(c_ref, np.int64), _t(w_ref, np.int32), _t(ids), _t(cdf, np.int32), 40)
    assert np.array_equal(_np(out), sym)


def test_golden_message():
    """The twin's pinned words (tests/test_rans_ref.py::test_golden_message), from the kernel."""
    cdf = freqs_to_cdf(np.array([[32768, 16384, 8192, 8192], [1, 1, 1, 65533]], dtype=np.uint32))
    sym = np.array([0, 1, 2, 3, 3, 0, 2, 1, 0, 3], dtype=np.uint8)
    ids = np.array([0, 0, 0, 0, 1, 1, 0, 0, 0, 1], dtype=np.int32)
    counts, words = _kernel_encode(sym, ids, cdf, 4)
    assert counts.tolist() == [2, 3, 2]
    assert words.tolist() == [575, 0, 36, 111, 49152, 2, 6]
    assert np.array_equal(_kernel_decode(counts, words, ids, cdf, 4), sym)


def test_renormalisation_boundaries():
    """States landing exactly on x == f << 16 (a frequency-1 symbol coded first from x = 2**16), runs of
    rare symbols (a word per symbol) and of a 65535/65536 symbol (no word for a long time)."""
    freq = np.array([[1, 1, 2, 65532], [32768, 32766, 1, 1], [65535, 1, 0, 0]], dtype=np.uint32)
    cdf = freqs_to_cdf(freq)
    rng = np.random.default_rng(2)
    parts = [np.zeros(20, np.uint8), np.ones(20, np.uint8), np.full(20, 2, np.uint8),
             rng.integers(0, 2, 40).astype(np.uint8)]
    sym = np.concatenate(parts)
    ids = np.concatenate([np.zeros(60, np.int32), np.full(20, 2, np.int32), np.ones(20, np.int32)])
    sym[60:80] = 0
    sym[95:] = [0, 0, 1, 2, 3]
    ids[95:] = [0, 2, 0, 1, 1]
    for lane_size in (1, 5, 20, 64):
        c_ref, w_ref = rans_ref.encode_lanes(sym, ids, cdf, lane_size)
        c_k, w_k = _kernel_encode(sym, ids, cdf, lane_size)
        assert np.array_equal(c_k, c_ref) and np.array_equal(w_k, w_ref)
        assert np.array_equal(_kernel_decode(c_ref, w_ref, ids, cdf, lane_size), sym)


def test_model_tables_long_lane():
    """The shipped model's Laplace family, one lane longer than the block of steps used elsewhere."""
    rng = np.random.default_rng(11)
    cdf = freqs_to_cdf(laplace_family(16, 0.15, 80.0))
    sym, ids = _message(rng, cdf, 333)
    c_ref, w_ref = rans_ref.encode_lanes(sym, ids, cdf, 300)
    c_k, w_k = _kernel_encode(sym, ids, cdf, 300)
    assert np.array_equal(c_k, c_ref) and np.array_equal(w_k, w_ref)
    assert np.array_equal(_kernel_decode(c_ref, w_ref, ids, cdf, 300), sym)


# ---- corruption: both decoders refuse, with DecodeError ----

def _encoded(seed=3, n=150, lane_size=50):
    rng = np.random.default_rng(seed)
    cdf = _tables(rng, 2, 256, "skewed")
    sym, ids = _message(rng, cdf, n)
    counts, words = rans_ref.encode_lanes(sym, ids, cdf, lane_size)
    return sym, ids, cdf, lane_size, counts, words


def _both_refuse(counts, words, ids, cdf, lane_size):
    with pytest.raises(DecodeError) as e_ref:
        rans_ref.decode_lanes(counts, words, ids, cdf, lane_size)
    with pytest.raises(DecodeError) as e_k:
        _kernel_decode(counts, words, ids, cdf, lane_size)
    assert str(e_k.value) == str(e_ref.value)


def test_corrupt_final_state():
    sym, ids, cdf, ls, counts, words = _encoded()
    words = words.copy()
    start = int(counts[0])  # lane 1's final state, high word
    words[start] ^= 0x0100
    _both_refuse(counts, words, ids, cdf, ls)


def test_corrupt_ran_out_of_words():
    sym, ids, cdf, ls, counts, words = _encoded()
    counts = counts.copy()
    lane = int(np.argmax(counts))
    cut = int(counts[: lane + 1].sum()) - 1          # drop the lane's last word
    words = np.delete(words, cut)
    counts[lane] -= 1
    _both_refuse(counts, words, ids, cdf, ls)


def test_corrupt_words_left_over():
    sym, ids, cdf, ls, counts, words = _encoded()
    counts = counts.copy()
    pos = int(counts[:2].sum())                      # an extra word at the end of lane 1
    words = np.insert(words, pos, 12345)
    counts[1] += 1
    _both_refuse(counts, words, ids, cdf, ls)


def test_corrupt_lane_table():
    sym, ids, cdf, ls, counts, words = _encoded()
    bad = counts.copy()
    bad[0] = 1
    _both_refuse(bad, words, ids, cdf, ls)           # lane shorter than its final state
    _both_refuse(counts[:-1], words, ids, cdf, ls)   # lane table does not match the image size
    _both_refuse(counts, words[:-1], ids, cdf, ls)   # lengths do not add up
    bad = counts.copy()
    bad[0] = ls + 3
    _both_refuse(bad, words, ids, cdf, ls)           # longer than any encoder writes


def test_random_word_flips_agree():
    """Every single-word flip: both decoders raise, or both return the same symbols."""
    sym, ids, cdf, ls, counts, words = _encoded(seed=9, n=40, lane_size=20)
    rng = np.random.default_rng(0)
    for i in rng.choice(words.size, size=6, replace=False):
        w = words.copy()
        w[i] ^= np.uint16(1 << int(rng.integers(16)))
        try:
            ref = rans_ref.decode_lanes(counts, w, ids, cdf, ls)
        except DecodeError:
            ref = None
        try:
            got = _kernel_decode(counts, w, ids, cdf, ls)
        except DecodeError:
            got = None
        assert (ref is None) == (got is None)
        if ref is not None:
            assert np.array_equal(ref, got)


# ---- argument checks ----

def test_kernel_refuses_zero_frequency_symbol_and_bad_inputs():
    cdf = np.array([[0, 100, 100, 65536]], dtype=np.uint32)   # symbol 1 has frequency 0
    with pytest.raises(ValueError):
        _kernel_encode(np.array([1], np.uint8), np.zeros(1, np.int32), cdf, 4)
    good = freqs_to_cdf(quantize_counts(np.ones(4)))[None]
    with pytest.raises(ValueError):
        _kernel_encode(np.array([0], np.uint8), np.array([1], np.int32), good, 4)   # table id >= T
    with pytest.raises(ValueError):
        _kernel_encode(np.array([], np.uint8), np.array([], np.int32), good, 4)
    with pytest.raises(ValueError):
        _kernel_encode(np.array([0, 1], np.uint8), np.array([0], np.int32), good, 4)
    with pytest.raises(ValueError):
        _kernel_encode(np.array([0], np.uint8), np.zeros(1, np.int32), good[:, ::-1].copy(), 4)  # not a cdf
    counts, words = rans_ref.encode_lanes(np.array([0, 1], np.uint8), np.zeros(2, np.int32), good, 4)
    with pytest.raises(ValueError):
        _kernel_decode(counts, words, np.array([0, 3], np.int32), good, 4)               # table id >= T


# ---- real sizes on a GPU ----

@pytest.mark.gpu
@pytest.mark.parametrize("lane_size", [64, 8192])
def test_gpu_large_message_equals_twin(lane_size):
    rng = np.random.default_rng(lane_size)
    cdf = freqs_to_cdf(laplace_family(16, 0.15, 80.0))
    n = 3 * 512 * 768 + 5
    sym, ids = _message(rng, cdf, n)
    c_ref, w_ref = rans_ref.encode_lanes(sym, ids, cdf, lane_size)
    c_k, w_k = _kernel_encode(sym, ids, cdf, lane_size)
    assert np.array_equal(c_k, c_ref) and np.array_equal(w_k, w_ref)
    assert np.array_equal(_kernel_decode(c_ref, w_ref, ids, cdf, lane_size), sym)
    w_bad = w_ref.copy()
    w_bad[w_bad.size // 2] ^= 0x8000
    try:
        ref = rans_ref.decode_lanes(c_ref, w_bad, ids, cdf, lane_size)
    except DecodeError:
        with pytest.raises(DecodeError):
            _kernel_decode(c_ref, w_bad, ids, cdf, lane_size)
    else:
        assert np.array_equal(_kernel_decode(c_ref, w_bad, ids, cdf, lane_size), ref)
