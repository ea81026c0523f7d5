"""The blended predictor's twin (``blend_ref``) against a plain statement of its docstring, and the
encoder's choice of its parameters (``blend_select``)."""
import numpy as np
import pytest

from tricodec import blend_ref as br
from tricodec import blend_select as bs
from tricodec import predictor_ref

from helpers import photo_like


def _spec_residuals(planes, params):
    """blend_ref's docstring, pixel by pixel, with whole error planes (no rings, no bands)."""
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
                        ts += wt * (s[i] + 4096)
                    pv4 = s[0] if tw == 0 else (ts + tw // 2) // tw - 4096
                    pv = int(np.floor(pv4 / 4 + 0.5))
                if y == 0 and xx == 0:
                    pv = 128 if q1 < 0 and q2 < 0 else 0
                pred = min(max(pv + ref[y, xx], 0), 255)
                out[k, y, xx] = (x[k, y, xx] - pred + 128) & 255
                for i in range(6):
                    err[i, y, xx] = abs(4 * v[y, xx] - s[i])
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


def test_float_division_of_the_twin_is_the_integer_division():
    """The twin divides the blend's sums in float64; over the sums' whole range (weights <= 2^24 each, six
    of them; sub-predictions + 4096 in 1036..8176), including numerators one below a multiple of the
    divisor, the result is the integer floor division."""
    rng = np.random.default_rng(0)
    tw = np.concatenate([rng.integers(1, 6 * 2**24 + 1, 400_000), np.arange(1, 2000),
                         6 * 2**24 - np.arange(2000)]).astype(np.int64)
    q = rng.integers(1036, 8177, tw.size).astype(np.int64)
    for num in (q * tw + rng.integers(0, tw), q * tw - 1, q * tw, q * tw + tw - 1):
        want = num // tw
        got = (num.astype(np.float64) / tw.astype(np.float64)).astype(np.int64)
        assert np.array_equal(got, want)
