"""The blended predictor's Triton kernels (residuals, decode scan) equal their CPU twin ``blend_ref``.

Without a GPU they run under the Triton interpreter (conftest sets TRITON_INTERPRET): images are small, but
the cases reach every state: both modes, references to one and two planes, the image's edges and first
pixel, strips of the scan (more rows than its BLOCK_H, so the error rings wrap across strips), noise
(large errors: the weight table's far end) and flat areas (zero errors: its start), 1 to 4 planes.
"""
import numpy as np
import pytest
import torch

from tricodec import blend_ref as br
from tricodec.kernels import blend_residual, blend_scan

from test_kernels_predictor import _planes as _test_planes
from test_kernels_predictor import _t


def _planes(kind, shape, seed):
    """The predictor tests' noise / photo / extreme planes, and flat areas (every error 0)."""
    if kind != "flat":
        return _test_planes(kind, shape, seed)
    p, h, w = shape
    out = np.full(shape, 77, np.uint8)
    out[:, h // 2:, w // 3:] = 200
    return out


def _params(p, modes, mixes):
    rows = []
    for k in range(p):
        q1, c1, q2, c2 = mixes[k] if k < len(mixes) else (-1, 0, -1, 0)
        rows.append((modes[k % len(modes)], q1, c1, q2, c2))
    return np.array(rows, np.int32)


RGB_MIXES = [(-1, 0, -1, 0), (0, 4, -1, 0), (0, 1, 1, 3)]
CASES = [  # (P, H, W), modes, mixes, content
    ((1, 1, 1), (1,), [], "photo"),
    ((3, 1, 1), (1,), RGB_MIXES, "noise"),
    ((3, 1, 9), (1, 0), RGB_MIXES, "photo"),
    ((3, 9, 1), (1,), RGB_MIXES, "photo"),
    ((3, 7, 5), (1,), RGB_MIXES, "noise"),
    ((3, 21, 70), (1, 0, 1), [(-1, 0, -1, 0), (0, 2, -1, 0), (0, 2, 1, 2)], "photo"),
    ((3, 19, 67), (0, 1, 1), [(-1, 0, -1, 0), (0, 4, -1, 0), (1, 4, -1, 0)], "extreme"),
    ((1, 24, 33), (1,), [], "flat"),
    ((4, 17, 20), (1,), RGB_MIXES, "photo"),
    ((2, 262, 5), (1,), [(-1, 0, -1, 0), (0, 3, -1, 0)], "noise"),   # > one strip of the scan (BLOCK_H rows)
]


@pytest.mark.parametrize("shape,modes,mixes,kind", CASES)
def test_blend_kernels_equal_the_twin(shape, modes, mixes, kind):
    planes = _planes(kind, shape, seed=sum(shape))
    params = _params(shape[0], modes, mixes)
    want = br.compute_blend_residuals(planes, params)
    got = blend_residual.compute_blend_residuals(_t(planes), params).cpu().numpy()
    assert np.array_equal(got, want)
    back = blend_scan.reconstruct_blend(_t(want), _t(params)).cpu().numpy()
    assert np.array_equal(back, planes)


def test_scan_reads_any_strides():
    planes = _planes("photo", (3, 12, 10), seed=3)
    params = _params(3, (1,), RGB_MIXES)
    res = br.compute_blend_residuals(planes, params)
    strided = _t(res.transpose(0, 2, 1).copy()).transpose(1, 2)          # same values, other strides
    assert np.array_equal(blend_scan.reconstruct_blend(strided, params).cpu().numpy(), planes)
    sliced = _t(np.ascontiguousarray(planes.transpose(0, 2, 1))).transpose(1, 2)
    assert np.array_equal(blend_residual.compute_blend_residuals(sliced, params).cpu().numpy(), res)


def test_kernels_refuse_bad_params():
    planes = _t(np.zeros((2, 3, 3), np.uint8))
    with pytest.raises(ValueError):
        blend_residual.compute_blend_residuals(planes, [[1, -1, 0, -1, 0], [1, 1, 4, -1, 0]])  # not earlier
    with pytest.raises(ValueError):
        blend_scan.reconstruct_blend(planes, [[2, -1, 0, -1, 0], [0, 0, 4, -1, 0]])           # no mode 2


# 9..16-bit samples (uint16 tensors, bits a runtime argument): full-range noise (errors past the cap),
# smooth content pushed against 0 and 2^D - 1 (the clamps), 0/maxv patterns; every edge shape.
DEEP_CASES = [  # (P, H, W), modes, mixes, content
    ((1, 1, 1), (1,), [], "smooth"),
    ((3, 1, 1), (1,), RGB_MIXES, "noise"),
    ((3, 1, 9), (1, 0), RGB_MIXES, "smooth"),
    ((3, 9, 1), (1,), RGB_MIXES, "noise"),
    ((3, 7, 5), (1, 0, 1), RGB_MIXES, "noise"),
    ((3, 13, 21), (1, 1, 0), [(-1, 0, -1, 0), (0, 2, -1, 0), (0, 2, 1, 2)], "smooth"),
    ((3, 11, 10), (0, 1, 1), [(-1, 0, -1, 0), (0, 4, -1, 0), (1, 4, -1, 0)], "extreme"),
    ((2, 259, 3), (1,), [(-1, 0, -1, 0), (0, 3, -1, 0)], "smooth"),   # > one strip of the scan
]


@pytest.mark.parametrize("bits", [9, 12, 16])
@pytest.mark.parametrize("shape,modes,mixes,kind", DEEP_CASES)
def test_blend_kernels_equal_the_twin_at_depth(bits, shape, modes, mixes, kind):
    from test_blend_ref import _deep_planes
    planes = _deep_planes(kind, shape, bits, seed=sum(shape) + bits)
    params = _params(shape[0], modes, mixes)
    want = br.compute_blend_residuals(planes, params, bits=bits)
    got = blend_residual.compute_blend_residuals(_t(planes), params, bits)
    assert got.dtype == torch.uint16
    assert np.array_equal(got.cpu().numpy(), want)
    back = blend_scan.reconstruct_blend(_t(want), _t(params), bits)
    assert back.dtype == torch.uint16
    assert np.array_equal(back.cpu().numpy(), planes)


def test_kernels_at_8_bits_in_uint16_equal_uint8():
    planes = _planes("photo", (3, 9, 14), seed=4)
    params = _params(3, (1, 0, 1), RGB_MIXES)
    want = br.compute_blend_residuals(planes, params)
    got = blend_residual.compute_blend_residuals(_t(planes.astype(np.uint16)), params, 8)
    assert got.dtype == torch.uint16 and np.array_equal(got.cpu().numpy(), want)
    back = blend_scan.reconstruct_blend(_t(want.astype(np.uint16)), params, 8)
    assert np.array_equal(back.cpu().numpy(), planes)


def test_kernels_refuse_what_the_twin_refuses_at_depth():
    params = [[1, -1, 0, -1, 0]]
    with pytest.raises(ValueError):      # uint8 holds 8-bit samples only
        blend_residual.compute_blend_residuals(_t(np.zeros((1, 2, 2), np.uint8)), params, 10)
    with pytest.raises(ValueError):
        blend_scan.reconstruct_blend(_t(np.zeros((1, 2, 2), np.uint8)), params, 12)
    with pytest.raises(ValueError):      # a sample above the depth
        blend_residual.compute_blend_residuals(_t(np.full((1, 2, 2), 1024, np.uint16)), params, 10)
    with pytest.raises(ValueError):
        blend_residual.compute_blend_residuals(_t(np.zeros((1, 2, 2), np.uint16)), params, 17)
