"""The MED predictor's CPU twin (``tricodec.predictor_ref``) against a plain pure-Python statement of its
docstring, at every sample depth 1..16, and its refusals.

The inputs are chosen to reach every state of the formula: the start pixel with and without a reference,
first row / first column / MED's three branches, the clamp at 0 and at maxv, and the residual wrapping
at both ends; ``test_inputs_reach_every_state`` proves they do at each depth tested.
"""
import numpy as np
import pytest

from tricodec import predictor_ref

from helpers import photo_like


def _spec(planes, refs, bits, residuals=None, states=None):
    """predictor_ref's docstring, pixel by pixel on Python ints.  With ``residuals`` it is the decode
    scan (neighbours read from the planes decoded so far), else the encoder.  ``states`` (a dict)
    counts the branches taken."""
    half, maxv = 1 << (bits - 1), (1 << bits) - 1
    p, h, w = (residuals if residuals is not None else planes).shape
    src = residuals.tolist() if residuals is not None else planes.tolist()
    px = [[[0] * w for _ in range(h)] for _ in range(p)] if residuals is not None else src
    out = [[[0] * w for _ in range(h)] for _ in range(p)]
    states = {} if states is None else states

    def tick(name):
        states[name] = states.get(name, 0) + 1

    for k in range(p):
        r = refs[k]

        def v(y, x):
            return px[k][y][x] - (px[r][y][x] if r >= 0 else 0)

        for y in range(h):
            for x in range(w):
                if y == 0 and x == 0:
                    pv = 0 if r >= 0 else half
                    tick("start")
                elif y == 0:
                    pv = v(y, x - 1)
                elif x == 0:
                    pv = v(y - 1, x)
                else:
                    a, b, c = v(y, x - 1), v(y - 1, x), v(y - 1, x - 1)
                    if c >= max(a, b):
                        pv = min(a, b)
                    elif c <= min(a, b):
                        pv = max(a, b)
                    else:
                        pv = a + b - c
                        tick("med_plane")
                t = pv + (px[r][y][x] if r >= 0 else 0)
                pred = min(max(t, 0), maxv)
                if t < 0:
                    tick("clamp_lo")
                if t > maxv:
                    tick("clamp_hi")
                if residuals is None:
                    d = src[k][y][x] - pred + half
                    out[k][y][x] = d & maxv
                    tick("wrap_lo" if d < 0 else "wrap_hi" if d > maxv else "no_wrap")
                else:
                    out[k][y][x] = (src[k][y][x] - half + pred) & maxv
                    px[k][y][x] = out[k][y][x]
    return np.array(out, dtype=(residuals if residuals is not None else planes).dtype).reshape(p, h, w)


def _dtype(bits, wide=False):
    return np.uint16 if bits != 8 or wide else np.uint8


def make_planes(kind, shape, bits, seed, wide=False):
    """Test planes of ``bits``-bit samples (shared with the kernel tests).

    * noise: uniform over [0, 2**bits): residuals wrap at both ends;
    * low / high: smooth ramps falling towards 0 / rising towards maxv (slopes of both signs, a little
      noise): MED extrapolates past the range and the clamp triggers at that end;
    * extreme: 0 / maxv patterns, MED and the clamp at both ends, the largest residuals.
    """
    p, h, w = shape
    maxv = (1 << bits) - 1
    rng = np.random.default_rng(seed)
    if kind == "noise":
        a = rng.integers(0, maxv + 1, shape)
    elif kind == "extreme":
        a = rng.integers(0, 2, shape) * maxv
    elif kind in ("low", "high"):
        yy, xx = np.mgrid[0:h, 0:w]
        step = max(1, maxv // 16)
        a = np.empty(shape, np.int64)
        for k in range(p):
            sy, sx = rng.choice([-1, 1], 2) * rng.integers(1, 3, 2) * step
            ramp = sy * yy + sx * xx
            ramp = ramp - ramp.min() + rng.integers(0, step + 1, (h, w))   # >= 0, small noise
            a[k] = ramp if kind == "low" else maxv - ramp
        a = np.clip(a, 0, maxv)
    elif kind == "photo":
        a = photo_like(h, w, p, seed=seed).reshape(h, w, p).transpose(2, 0, 1).astype(np.int64)
        a = a * maxv // 255
    else:
        raise ValueError(kind)
    return np.ascontiguousarray(a.astype(_dtype(bits, wide)))


DEPTHS = [(1, False), (2, False), (7, False), (8, False), (8, True), (9, False), (12, False), (15, False),
          (16, False)]
SHAPES = [((1, 1, 1), (-1,)), ((1, 1, 9), (-1,)), ((1, 8, 1), (-1,)), ((3, 7, 9), (-1, 0, 0)),
          ((4, 6, 5), (-1, 0, 0, -1)), ((3, 5, 6), (-1, 0, 1))]
KINDS = ["noise", "low", "high", "extreme"]


@pytest.mark.parametrize("bits,wide", DEPTHS)
@pytest.mark.parametrize("shape,refs", SHAPES)
def test_twin_equals_statement(bits, wide, shape, refs):
    for i, kind in enumerate(KINDS):
        planes = make_planes(kind, shape, bits, seed=bits * 31 + i + sum(shape), wide=wide)
        res = predictor_ref.compute_residuals(planes, refs, bits)
        assert res.dtype == planes.dtype
        assert np.array_equal(res, _spec(planes, refs, bits))
        back = predictor_ref.reconstruct(res, refs, bits)
        assert back.dtype == planes.dtype and np.array_equal(back, planes)
        # The scan against the statement's own scan, on residuals no encoder produced.
        noise = make_planes("noise", shape, bits, seed=i, wide=wide)
        assert np.array_equal(predictor_ref.reconstruct(noise, refs, bits), _spec(None, refs, bits, residuals=noise))


@pytest.mark.parametrize("bits,wide", DEPTHS)
def test_inputs_reach_every_state(bits, wide):
    """The test inputs above take every branch of the formula at this depth (else the equality tests
    would prove less than they seem to)."""
    states = {}
    for shape, refs in SHAPES:
        for i, kind in enumerate(KINDS):
            _spec(make_planes(kind, shape, bits, seed=bits * 31 + i + sum(shape), wide=wide), refs, bits,
                  states=states)
    need = {"start", "clamp_lo", "clamp_hi", "wrap_hi", "no_wrap"}
    if bits > 1:
        # impossible at 1 bit: a + b - c strictly between a and b needs three values, and
        # x - pred + half >= 0 - 1 + 1 never goes below 0
        need |= {"med_plane", "wrap_lo"}
    assert need <= set(states), sorted(need - set(states))


def test_eight_bit_uint16_equals_uint8():
    """uint16 at 8 bits gives the uint8 result, widened: the depth decides, not the dtype."""
    planes = make_planes("photo", (3, 21, 19), 8, seed=3)
    res8 = predictor_ref.compute_residuals(planes, (-1, 0, 0))
    res16 = predictor_ref.compute_residuals(planes.astype(np.uint16), (-1, 0, 0), 8)
    assert res16.dtype == np.uint16 and np.array_equal(res16, res8)
    assert np.array_equal(predictor_ref.reconstruct(res16, (-1, 0, 0), 8), planes)


@pytest.mark.parametrize("bits,wide", [(8, False), (8, True), (10, False), (16, False)])
def test_reconstruct_rows_continues_the_image(bits, wide):
    planes = make_planes("noise", (3, 12, 7), bits, seed=bits, wide=wide)
    refs = (-1, 0, 0)
    res = predictor_ref.compute_residuals(planes, refs, bits)
    for y in (1, 5, 11):
        band = predictor_ref.reconstruct_rows(res[:, y:], refs, planes[:, y - 1], bits)
        assert band.dtype == planes.dtype and np.array_equal(band, planes[:, y:])


@pytest.mark.parametrize("dtype,bits", [(np.uint8, 7), (np.uint8, 9), (np.uint8, 16), (np.uint16, 0),
                                        (np.uint16, 17), (np.uint16, True), (np.uint16, 8.0), (np.uint16, "8"),
                                        (np.int16, 8), (np.int32, 8), (np.uint32, 16)])
def test_bad_dtype_or_bits_refused(dtype, bits):
    planes = np.zeros((1, 2, 2), dtype)
    with pytest.raises(ValueError):
        predictor_ref.compute_residuals(planes, (-1,), bits)
    with pytest.raises(ValueError):
        predictor_ref.reconstruct(planes, (-1,), bits)
    with pytest.raises(ValueError):
        predictor_ref.reconstruct_rows(planes, (-1,), planes[:, 0], bits)


@pytest.mark.parametrize("bits,bad", [(1, 2), (8, 256), (9, 512), (12, 4096), (12, 65535), (15, 32768)])
def test_sample_out_of_depth_refused(bits, bad):
    planes = np.zeros((2, 3, 4), np.uint16)
    planes[1, 2, 3] = bad
    with pytest.raises(ValueError):
        predictor_ref.compute_residuals(planes, (-1, 0), bits)
    planes[1, 2, 3] = (1 << bits) - 1     # the largest legal sample passes
    predictor_ref.compute_residuals(planes, (-1, 0), bits)
