"""The blended predictor's twin (``blend_ref``) against a plain statement of its docstring, and the
encoder's choice of its parameters (``blend_select``)."""
import numpy as np
import pytest

from tricodec import blend_ref as br
from tricodec import blend_select as bs
from tricodec import predictor_ref

from helpers import photo_like


def _spec_residuals(planes, params, bits=8):
    """blend_ref's docstring, pixel by pixel, with whole error planes (no rings, no bands), at depth
    ``bits`` (Python ints: no overflow, floor divisions)."""
    half, maxv, esh, off = 1 << (bits - 1), (1 << bits) - 1, max(bits - 8, 0), 1 << (bits + 4)
    n, h, w = planes.shape
    x = planes.astype(np.int64)
    out = np.zeros_like(planes)
    for k in range(n):
        mode, q1, c1, q2, c2 = (int(v) for v in params[k])
        ref = np.zeros((h, w), np.int64)
        if q1 >= 0:
            ref += c1 * x[q1]
        if q2 >= 0:
            ref += c2 * x[q2]
        ref >>= 2
        v = x[k] - ref
        err = np.zeros((6, h, w), np.int64)
        for y in range(h):
            for xx in range(w):
                W = v[y, xx - 1] if xx > 0 else v[y - 1, xx] if y > 0 else 0
                N = v[y - 1, xx] if y > 0 else W
                NW = v[y - 1, xx - 1] if y > 0 and xx > 0 else N
                NE = v[y - 1, xx + 1] if y > 0 and xx < w - 1 else N
                NNE = v[y - 2, xx + 1] if y > 1 and xx < w - 1 else NE
                med = min(W, N) if NW >= max(W, N) else max(W, N) if NW <= min(W, N) else W + N - NW
                s = [4 * med, 4 * W, 4 * N, 4 * (W + NE - N), 4 * (N + NE - NNE), 2 * (W + N) + NE - NW]
                if mode == 0:
                    pv = med
                else:
                    def e(i, yy, xq):
                        return err[i, yy, xq] if 0 <= yy and 0 <= xq < w else 0
                    tw = ts = 0
                    for i in range(6):
                        S = 2 * (e(i, y, xx - 1) + e(i, y - 1, xx) + e(i, y - 1, xx - 1) + e(i, y - 1, xx + 1)) \
                            + e(i, y, xx - 2) + e(i, y - 2, xx)
                        wt = 2**30 // (8 + S) ** 2
                        tw += wt
                        ts += wt * (int(s[i]) + off)
                    pv4 = int(s[0]) if tw == 0 else (ts + tw // 2) // tw - off
                    pv = (pv4 + 2) // 4                     # floor(pv4 / 4 + 1/2)
                if y == 0 and xx == 0:
                    pv = half if q1 < 0 and q2 < 0 else 0
                pred = min(max(pv + ref[y, xx], 0), maxv)
                out[k, y, xx] = (x[k, y, xx] - pred + half) & maxv
                for i in range(6):
                    err[i, y, xx] = min(abs(4 * v[y, xx] - s[i]) >> esh, 16 * 255)
    return out


MIXES = [(-1, 0, -1, 0), (0, 3, -1, 0), (0, 1, 1, 3)]


@pytest.mark.parametrize("shape,modes,content", [
    ((3, 1, 1), (1, 1, 1), "noise"), ((1, 1, 13), (1,), "photo"), ((1, 13, 1), (1,), "photo"),
    ((3, 9, 8), (1, 0, 1), "noise"), ((3, 37, 11), (1, 1, 1), "photo"),   # > CHUNK_ROWS, > BAND_ROWS
    ((4, 21, 9), (0, 1, 1, 1), "photo")])
def test_twin_equals_the_docstring(shape, modes, content):
    rng = np.random.default_rng(sum(shape))
    n, h, w = shape
    planes = rng.integers(0, 256, shape).astype(np.uint8) if content == "noise" else \
        np.ascontiguousarray(photo_like(h, w, n, seed=3).reshape(h, w, n).transpose(2, 0, 1))
    params = np.array([(modes[k],) + (MIXES[k] if k < 3 else (-1, 0, -1, 0)) for k in range(n)], np.int32)
    res = br.compute_blend_residuals(planes, params)
    assert np.array_equal(res, _spec_residuals(planes, params))
    assert np.array_equal(br.reconstruct_blend(res, params), planes)


def _deep_planes(content, shape, bits, seed):
    """uint16 planes at depth ``bits``: full-range noise, 0/maxv patterns, or smooth content hugging 0 and
    maxv (photo-like, stretched to the depth and pushed against both ends: the clamps)."""
    n, h, w = shape
    maxv = (1 << bits) - 1
    rng = np.random.default_rng(seed)
    if content == "noise":
        return rng.integers(0, maxv + 1, shape).astype(np.uint16)
    if content == "extreme":
        return (rng.integers(0, 2, shape) * maxv).astype(np.uint16)
    p = photo_like(h, w, n, seed=seed).reshape(h, w, n).transpose(2, 0, 1).astype(np.int64)
    x = (p * maxv) // 255 + rng.integers(-3, 4, shape)          # full-scale, a little noise at every depth
    x[:, :, : w // 2] -= maxv // 3                                # left half near 0, right half near maxv
    x[:, :, w // 2:] += maxv // 3
    return np.ascontiguousarray(np.clip(x, 0, maxv).astype(np.uint16))


@pytest.mark.parametrize("bits", [8, 10, 16])
@pytest.mark.parametrize("shape,modes,content", [
    ((3, 1, 1), (1, 1, 1), "noise"), ((1, 1, 13), (1,), "smooth"), ((1, 13, 1), (1,), "smooth"),
    ((3, 9, 8), (1, 0, 1), "noise"), ((3, 37, 11), (1, 1, 1), "smooth"),   # > CHUNK_ROWS, > BAND_ROWS
    ((3, 12, 10), (1, 1, 1), "extreme"), ((4, 21, 9), (0, 1, 1, 1), "smooth")])
def test_twin_equals_the_docstring_at_depth(bits, shape, modes, content):
    """uint16 planes at 8, 10 and 16 bits against the plain statement (at 16: errors beyond the cap)."""
    n = shape[0]
    planes = _deep_planes(content, shape, bits, seed=sum(shape) + bits)
    params = np.array([(modes[k],) + (MIXES[k] if k < 3 else (-1, 0, -1, 0)) for k in range(n)], np.int32)
    res = br.compute_blend_residuals(planes, params, bits=bits)
    assert res.dtype == np.uint16
    assert np.array_equal(res, _spec_residuals(planes, params, bits))
    assert np.array_equal(br.reconstruct_blend(res, params, bits), planes)
    if bits == 8:       # uint16 at 8 bits is the uint8 predictor, value for value
        assert np.array_equal(br.compute_blend_residuals(planes.astype(np.uint8), params), res)
        assert np.array_equal(br.reconstruct_blend(res.astype(np.uint8), params), planes)


@pytest.mark.parametrize("bits", [1, 2, 7, 9, 12, 15, 16])
def test_every_depth_round_trips(bits):
    rng = np.random.default_rng(bits)
    for content in ("noise", "extreme", "smooth"):
        planes = _deep_planes(content, (3, 19, 23), bits, seed=bits)
        for mode in (0, 1):
            for mix in ((0, 4, -1, 0), (0, 1, 1, 3)):
                params = np.array([(mode, -1, 0, -1, 0), (mode, 0, 2, -1, 0), (mode,) + mix], np.int32)
                res = br.compute_blend_residuals(planes, params, bits=bits)
                assert int(res.max()) < 2**bits
                assert np.array_equal(br.reconstruct_blend(res, params, bits=bits), planes)
                # bits above the depth in a residual are ignored by the decoder
                noisy = res | (rng.integers(0, 2, res.shape).astype(np.uint16) << bits) if bits < 16 else res
                assert np.array_equal(br.reconstruct_blend(noisy, params, bits=bits), planes)


def test_depth_rules():
    """predictor_ref.check_bits: uint8 only at 8 bits, uint16 at 1..16; samples must fit the depth."""
    p8 = np.zeros((1, 2, 2), np.uint8)
    params = [[1, -1, 0, -1, 0]]
    for bad in (0, 17, 9, True, 8.0):
        with pytest.raises(ValueError):
            br.compute_blend_residuals(p8, params, bits=bad)
        with pytest.raises(ValueError):
            br.reconstruct_blend(p8, params, bits=bad)
    with pytest.raises(ValueError):
        br.compute_blend_residuals(np.full((1, 2, 2), 1024, np.uint16), params, bits=10)
    assert br.compute_blend_residuals(np.full((1, 2, 2), 1023, np.uint16), params, bits=10).dtype == np.uint16


def test_med_mode_is_the_old_predictor():
    planes = np.ascontiguousarray(photo_like(70, 45, 3, seed=5).reshape(70, 45, 3).transpose(2, 0, 1))
    params = [[0, -1, 0, -1, 0], [0, 0, 4, -1, 0], [0, 0, 4, -1, 0]]
    assert np.array_equal(br.compute_blend_residuals(planes, params), predictor_ref.compute_residuals(planes, (-1, 0, 0)))


def test_every_choice_round_trips_on_big_errors():
    """0/255 patterns: errors at their largest (the weight table's far end), clamps at both ends."""
    rng = np.random.default_rng(9)
    planes = (rng.integers(0, 2, (3, 40, 33)) * 255).astype(np.uint8)
    for refs in zip(*[bs.REFS_RGB[0] * 6, bs.REFS_RGB[1] * 2, bs.REFS_RGB[2]]):
        for mode in (0, 1):
            params = np.array([(mode,) + r for r in refs], np.int32)
            res = br.compute_blend_residuals(planes, params)
            assert np.array_equal(br.reconstruct_blend(res, params), planes)
    assert br.WEIGHT_LUT.shape == (br.MAX_ERR_SUM + 1,) and br.WEIGHT_LUT[-1] == 2**30 // (8 + br.MAX_ERR_SUM) ** 2


@pytest.mark.parametrize("bad", [[[2, -1, 0, -1, 0]], [[1, 0, 4, -1, 0]], [[1, -1, 1, -1, 0]], [[1, -1, 0, -1, 5]]])
def test_bad_params_are_refused(bad):
    with pytest.raises(ValueError):
        br.check_params(np.array(bad), 1)


def test_reference_weights_sum_to_at_most_4():
    """c1 + c2 <= 4 keeps v in [-maxv, maxv], the docstring's ranges (every mix of the encoder obeys it)."""
    ok = [[0, -1, 0, -1, 0], [0, -1, 0, -1, 0], [1, 0, 1, 1, 3]]
    br.check_params(np.array(ok), 3)
    for c1, c2 in ((4, 1), (3, 2), (4, 4)):
        with pytest.raises(ValueError):
            br.check_params(np.array(ok[:2] + [[1, 0, c1, 1, c2]]), 3)
    for mixes in bs.REFS_RGB:
        assert all(c1 + c2 <= 4 for _, c1, _, c2 in mixes)


def test_choice_finds_an_exact_colour_relation():
    """B = (G + R) / 2 exactly: the choice must refer B to both planes, which leaves only MED's errors."""
    rng = np.random.default_rng(1)
    g = np.ascontiguousarray(photo_like(64, 64, 1, seed=2).reshape(64, 64))
    r = np.clip(g.astype(np.int32) + rng.integers(-40, 40, g.shape), 0, 255).astype(np.uint8)
    b = ((2 * g.astype(np.int32) + 2 * r) >> 2).astype(np.uint8)
    params = bs.choose_params(np.stack([g, r, b]))
    assert tuple(params[2, 1:]) == (0, 2, 1, 2)
    gray = bs.choose_params(g[None])
    assert gray.shape == (1, 5) and tuple(gray[0, 1:]) == (-1, 0, -1, 0)


@pytest.mark.parametrize("bits", [8, 12, 16])
def test_float_division_of_the_twin_is_the_integer_division(bits):
    """The twin divides the blend's sums in float64; over the sums' whole range at depth ``bits`` (weights
    <= 2^24 each, six of them; sub-predictions + OFF in [OFF - 12 maxv, OFF + 12 maxv]: 1036..8176 at 8
    bits, 262156..1834996 at 16), including numerators one below a multiple of the divisor, the result is
    the integer floor division (the proof: blend_ref._code_row; it needs numerators below 2^53)."""
    maxv, off = (1 << bits) - 1, 1 << (bits + 4)
    rng = np.random.default_rng(bits)
    tw = np.concatenate([rng.integers(1, 6 * 2**24 + 1, 400_000), np.arange(1, 2000),
                         6 * 2**24 - np.arange(2000)]).astype(np.int64)
    q = rng.integers(off - 12 * maxv, off + 12 * maxv + 1, tw.size).astype(np.int64)
    q[:1000], q[1000:2000] = off - 12 * maxv, off + 12 * maxv           # both ends of the range
    for num in (q * tw + rng.integers(0, tw), q * tw - 1, q * tw, q * tw + tw - 1, q * tw + tw // 2):
        assert int(num.max()) < 2**53
        want = num // tw
        got = (num.astype(np.float64) / tw.astype(np.float64)).astype(np.int64)
        assert np.array_equal(got, want)


def test_sums_stay_in_range_at_16_bits():
    """The docstring's bounds at D = 16, from the spec's worst cases: every e_i capped to the table, every
    s_i + OFF positive, the weighted sum inside int64 (and below 2^53: the float division above)."""
    maxv, off = 2**16 - 1, 2**20
    assert br.MAX_ERR_SUM == 10 * br.E_MAX == 10 * 16 * 255 and br.WEIGHT_LUT.dtype == np.int32
    assert (16 * maxv) >> 8 == 4095 > br.E_MAX          # the cap is needed above 8 bits ...
    assert 16 * 255 == br.E_MAX                         # ... and a no-op at 8 (and below)
    assert off - 12 * maxv > 0 and 16 * maxv < 2**31
    assert int(br.WEIGHT_LUT[0]) == 2**24 and 6 * 2**24 * (off + 12 * maxv) + 3 * 2**24 < 2**53


@pytest.mark.parametrize("bits", [10, 12, 16])
def test_choice_at_depth(bits):
    """The exact colour relation is found at depth too, and a photo widened to ``bits`` (its 8 bits on
    top, noise below) gets the 8-bit photo's choices; uint16 at 8 bits chooses as uint8."""
    rng = np.random.default_rng(bits)
    t = bits - 8
    g = np.ascontiguousarray(photo_like(64, 64, 1, seed=2).reshape(64, 64)).astype(np.int64)
    r = np.clip(g + rng.integers(-40, 40, g.shape), 0, 255)
    g, r = (g << t) + rng.integers(0, 1 << t, g.shape), (r << t) + rng.integers(0, 1 << t, g.shape)
    b = (2 * g + 2 * r) >> 2
    params = bs.choose_params(np.stack([g, r, b]).astype(np.uint16), bits)
    assert tuple(params[2, 1:]) == (0, 2, 1, 2)
    photo = np.ascontiguousarray(photo_like(96, 80, 3, seed=1).reshape(96, 80, 3).transpose(2, 0, 1))
    deep = ((photo.astype(np.int64) << t) | rng.integers(0, 1 << t, photo.shape)).astype(np.uint16)
    assert np.array_equal(bs.choose_params(deep, bits), bs.choose_params(photo))
    assert np.array_equal(bs.choose_params(photo.astype(np.uint16), 8), bs.choose_params(photo))


def test_estimate_shift_follows_the_residuals_scale():
    """A smooth 16-bit plane with residuals of a few units keeps them (no shift): a fixed bits - 8 = 8
    would quantise them all to 0 and -1; a noisy one is brought down to an 8-bit photo's scale."""
    rng = np.random.default_rng(0)
    small = (32768 + rng.integers(-6, 7, (40, 40))).astype(np.uint16)
    assert bs.estimate_shift(small, 16) == 0
    big = (32768 + rng.integers(-4000, 4001, (40, 40))).astype(np.uint16)
    t = bs.estimate_shift(big, 16)
    assert 6 <= t <= 10 and 1 <= np.abs((big.astype(np.int64) - 32768) >> t).mean() <= 8
    assert bs.estimate_shift(big.astype(np.uint8), 8) == 0
