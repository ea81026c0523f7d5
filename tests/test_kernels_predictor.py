"""The Triton predictor kernels (residuals, decode scan) and the table-id kernel equal their CPU twins.

Without a GPU the kernels run under the Triton interpreter (conftest sets TRITON_INTERPRET): images are
tiny.  The scan's cost there is one wavefront step per (strip, column + row), so a few hundred rows are
affordable only when the image is a few columns wide.
"""

import numpy as np
import pytest
import torch
from PIL import Image

from tricodec import predictor_ref
from tricodec.kernels import predictor_residual, predictor_scan, table_ids
from tricodec.kernels.predictor_scan import BLOCK_H as SCAN_ROWS
from tricodec.model import block_table_ids

from conftest import SHARED_DATA
from helpers import photo_like
from test_predictor_ref import _spec, make_planes

DEV = "cuda" if torch.cuda.is_available() else "cpu"


def _t(a):
    return torch.from_numpy(np.ascontiguousarray(a)).to(DEV)


def _planes(kind, shape, seed):
    p, h, w = shape
    rng = np.random.default_rng(seed)
    if kind == "noise":
        return rng.integers(0, 256, shape).astype(np.uint8)
    if kind == "photo":
        return np.ascontiguousarray(photo_like(h, w, p, seed=seed).reshape(h, w, p).transpose(2, 0, 1))
    if kind == "extreme":  # 0/255 patterns: MED and the clamp at both ends, wrap-around residuals
        return (rng.integers(0, 2, shape) * 255).astype(np.uint8)
    raise ValueError(kind)


CASES = [  # (P, H, W), refs, content
    ((1, 1, 1), (-1,), "noise"),
    ((1, 1, 7), (-1,), "photo"),
    ((1, 6, 1), (-1,), "extreme"),
    ((3, 9, 12), (-1, 0, 0), "photo"),
    ((3, 9, 12), (-1, 0, 0), "extreme"),
    ((4, 17, 13), (-1, 0, 0, -1), "noise"),
    ((4, 5, 70), (-1, 0, 0, -1), "photo"),        # wider than one 64-column tile
    ((2, 19, 3), (-1, 0), "extreme"),              # taller than one 16-row tile
    ((3, 4, 5), (-1, 0, 1), "noise"),              # a chain of references
]


@pytest.mark.parametrize("shape,refs,kind", CASES)
def test_residuals_and_scan_equal_twin(shape, refs, kind):
    planes = _planes(kind, shape, seed=sum(shape))
    res_ref = predictor_ref.compute_residuals(planes, refs)
    res_k = predictor_residual.compute_residuals(_t(planes), refs)
    assert res_k.dtype == torch.uint8 and res_k.device.type == DEV
    assert np.array_equal(res_k.cpu().numpy(), res_ref)
    back = predictor_scan.reconstruct(_t(res_ref), refs)
    assert back.dtype == torch.uint8 and back.device.type == DEV
    assert np.array_equal(back.cpu().numpy(), planes)
    # The scan is the inverse on any residuals, not only on ones the encoder produced.
    noise = _planes("noise", shape, seed=7)
    assert np.array_equal(predictor_scan.reconstruct(_t(noise), refs).cpu().numpy(),
                          predictor_ref.reconstruct(noise, refs))


def test_scan_more_rows_than_one_strip():
    """H > the scan's strip height: the first row of a strip reads the last row of the previous one."""
    shape = (2, SCAN_ROWS + 9, 3)
    planes = _planes("photo", shape, seed=1)
    res = predictor_ref.compute_residuals(planes, (-1, 0))
    assert np.array_equal(predictor_residual.compute_residuals(_t(planes), (-1, 0)).cpu().numpy(), res)
    assert np.array_equal(predictor_scan.reconstruct(_t(res), (-1, 0)).cpu().numpy(), planes)


def test_strided_inputs():
    """Non-contiguous views (an HWC image seen as planes) give the same result as contiguous copies."""
    hwc = photo_like(11, 10, 3, seed=4)
    view = torch.from_numpy(hwc).to(DEV).permute(2, 0, 1)
    assert not view.is_contiguous()
    planes = np.ascontiguousarray(hwc.transpose(2, 0, 1))
    refs = (-1, 0, 0)
    res = predictor_ref.compute_residuals(planes, refs)
    assert np.array_equal(predictor_residual.compute_residuals(view, refs).cpu().numpy(), res)
    res_view = torch.from_numpy(np.ascontiguousarray(res.transpose(1, 2, 0))).to(DEV).permute(2, 0, 1)
    assert np.array_equal(predictor_scan.reconstruct(res_view, torch.tensor(refs)).cpu().numpy(), planes)


def test_bad_refs_and_shapes_refused_like_twin():
    planes = np.zeros((2, 3, 3), np.uint8)
    for refs in [(-1, 1), (0, -1), (-1,), (-1, 0, 0)]:
        with pytest.raises(ValueError):
            predictor_ref.compute_residuals(planes, refs)
        with pytest.raises(ValueError):
            predictor_residual.compute_residuals(_t(planes), refs)
        with pytest.raises(ValueError):
            predictor_scan.reconstruct(_t(planes), refs)
    with pytest.raises(ValueError):
        predictor_residual.compute_residuals(_t(planes.astype(np.int32)), (-1, 0))
    with pytest.raises(ValueError):
        predictor_scan.reconstruct(_t(planes[0]), (-1,))


# ---- 9..16-bit samples (uint16), and uint16 at 8 bits ----

DEEP_DEPTHS = [(8, False), (8, True), (9, False), (12, False), (16, False)]   # (bits, uint16 at 8 bits)
DEEP_CASES = [  # (P, H, W), refs
    ((1, 1, 1), (-1,)),
    ((1, 1, 11), (-1,)),
    ((1, 9, 1), (-1,)),
    ((3, 7, 9), (-1, 0, 0)),
    ((4, 5, 70), (-1, 0, 0, -1)),      # wider than one 64-column tile
    ((2, 19, 3), (-1, 0)),             # taller than one 16-row tile
    ((3, 4, 5), (-1, 0, 1)),           # a chain of references
]
DEEP_KINDS = ["noise", "low", "high", "extreme"]   # wrap at both ends; clamp at 0, at maxv; both


def _deep_check(planes, refs, bits):
    """Both kernels equal the twin exactly, keep the dtype, and the scan inverts the residuals."""
    res_ref = predictor_ref.compute_residuals(planes, refs, bits)
    res_k = predictor_residual.compute_residuals(_t(planes), refs, bits)
    assert res_k.dtype == _t(planes).dtype and res_k.device.type == DEV
    assert np.array_equal(res_k.cpu().numpy(), res_ref)
    back = predictor_scan.reconstruct(res_k, refs, bits)
    assert back.dtype == res_k.dtype and back.device.type == DEV
    assert np.array_equal(back.cpu().numpy(), planes)


def _deep_planes(kind, i, shape, bits, wide):
    return make_planes(kind, shape, bits, seed=bits + 7 * i + sum(shape), wide=wide)


@pytest.mark.parametrize("bits,wide", DEEP_DEPTHS)
@pytest.mark.parametrize("shape,refs", DEEP_CASES)
def test_deep_residuals_and_scan_equal_twin(bits, wide, shape, refs):
    for i, kind in enumerate(DEEP_KINDS):
        _deep_check(_deep_planes(kind, i, shape, bits, wide), refs, bits)
    # The scan is the inverse on any residuals, not only on ones the encoder produced.
    noise = make_planes("noise", shape, bits, seed=bits, wide=wide)
    assert np.array_equal(predictor_scan.reconstruct(_t(noise), refs, bits).cpu().numpy(),
                          predictor_ref.reconstruct(noise, refs, bits))


@pytest.mark.parametrize("bits,wide", DEEP_DEPTHS)
def test_deep_inputs_reach_every_state(bits, wide):
    """The inputs of the test above take every branch of the formula (the plain statement counts them):
    the start pixel, MED's interpolation, the clamp at 0 and at maxv, residuals wrapping at both ends."""
    states = {}
    for shape, refs in DEEP_CASES:
        for i, kind in enumerate(DEEP_KINDS):
            _spec(_deep_planes(kind, i, shape, bits, wide), refs, bits, states=states)
    assert {"start", "med_plane", "clamp_lo", "clamp_hi", "wrap_lo", "wrap_hi", "no_wrap"} <= set(states)


@pytest.mark.parametrize("bits,wide", DEEP_DEPTHS)
def test_deep_scan_more_rows_than_one_strip(bits, wide):
    for kind in ("low", "high"):
        _deep_check(make_planes(kind, (2, SCAN_ROWS + 9, 3), bits, seed=bits, wide=wide), (-1, 0), bits)


def test_uint16_at_8_bits_equals_uint8():
    """The depth decides, not the dtype: uint16 at 8 bits is the 8-bit result, widened."""
    planes = _planes("photo", (3, 9, 12), seed=5)
    res8 = predictor_residual.compute_residuals(_t(planes), (-1, 0, 0))
    res16 = predictor_residual.compute_residuals(_t(planes.astype(np.uint16)), (-1, 0, 0), 8)
    assert res16.dtype == torch.uint16 and np.array_equal(res16.cpu().numpy(), res8.cpu().numpy())
    back16 = predictor_scan.reconstruct(res16, (-1, 0, 0), 8)
    assert back16.dtype == torch.uint16 and np.array_equal(back16.cpu().numpy(), planes)


def test_deep_strided_inputs():
    hwc = make_planes("noise", (3, 11, 10), 12, seed=4).transpose(1, 2, 0).copy()
    view = torch.from_numpy(hwc).to(DEV).permute(2, 0, 1)
    assert not view.is_contiguous()
    planes = np.ascontiguousarray(hwc.transpose(2, 0, 1))
    res = predictor_ref.compute_residuals(planes, (-1, 0, 0), 12)
    assert np.array_equal(predictor_residual.compute_residuals(view, (-1, 0, 0), 12).cpu().numpy(), res)
    res_view = torch.from_numpy(np.ascontiguousarray(res.transpose(1, 2, 0))).to(DEV).permute(2, 0, 1)
    assert np.array_equal(predictor_scan.reconstruct(res_view, (-1, 0, 0), 12).cpu().numpy(), planes)


@pytest.mark.parametrize("dtype,bits", [(np.uint8, 7), (np.uint8, 9), (np.uint8, 16), (np.uint16, 0),
                                        (np.uint16, 17), (np.uint16, True), (np.int16, 8), (np.int32, 8)])
def test_bad_dtype_or_bits_refused_like_twin(dtype, bits):
    planes = np.zeros((1, 2, 2), dtype)
    with pytest.raises(ValueError):
        predictor_ref.compute_residuals(planes, (-1,), bits)
    with pytest.raises(ValueError):
        predictor_residual.compute_residuals(_t(planes), (-1,), bits)
    with pytest.raises(ValueError):
        predictor_scan.reconstruct(_t(planes), (-1,), bits)


@pytest.mark.parametrize("bits,bad", [(8, 256), (9, 512), (12, 4096), (12, 65535), (15, 32768)])
def test_sample_out_of_depth_refused_like_twin(bits, bad):
    planes = np.zeros((2, 3, 4), np.uint16)
    planes[1, 2, 3] = bad
    with pytest.raises(ValueError):
        predictor_ref.compute_residuals(planes, (-1, 0), bits)
    with pytest.raises(ValueError):
        predictor_residual.compute_residuals(_t(planes), (-1, 0), bits)
    planes[1, 2, 3] = (1 << bits) - 1     # the largest legal sample passes
    _deep_check(planes, (-1, 0), bits)


@pytest.mark.parametrize("p,h,w,block_log2,extra", [(1, 1, 1, 3, 0), (3, 9, 12, 3, 0), (2, 17, 70, 0, 0),
                                                    (3, 20, 65, 1, 2), (4, 8, 8, 3, 1)])
def test_table_ids_equal_twin(p, h, w, block_log2, extra):
    bs = 1 << block_log2
    rng = np.random.default_rng(h * w)
    side = rng.integers(0, 256, (p, -(-h // bs) + extra, -(-w // bs) + extra)).astype(np.uint8)
    ref = block_table_ids(side, h, w, block_log2)
    got = table_ids.block_table_ids(_t(side), h, w, block_log2)
    assert got.dtype == torch.int32 and got.device.type == DEV
    assert np.array_equal(got.cpu().numpy(), ref)
    # strided side info
    side_t = _t(side.transpose(0, 2, 1).copy()).transpose(1, 2)
    assert np.array_equal(table_ids.block_table_ids(side_t, h, w, block_log2).cpu().numpy(), ref)


def test_table_ids_refuses_small_grid():
    with pytest.raises(ValueError):
        table_ids.block_table_ids(_t(np.zeros((1, 1, 1), np.uint8)), 9, 8, 3)


# ---- real sizes on a GPU ----

def _dev_images():
    folder = SHARED_DATA / "dev"
    return sorted(folder.glob("*.png"))[:3] if folder.is_dir() else []


@pytest.mark.gpu
@pytest.mark.parametrize("refs", [(-1, 0, 0), (-1, -1, -1)])
def test_gpu_dev_images_equal_twin(refs):
    paths = _dev_images()
    if not paths:
        pytest.skip("no dev images")
    for path in paths:
        rgb = np.asarray(Image.open(path).convert("RGB"))
        planes = np.ascontiguousarray(rgb.transpose(2, 0, 1)[[1, 0, 2]])
        res = predictor_ref.compute_residuals(planes, refs)
        assert np.array_equal(predictor_residual.compute_residuals(_t(planes), refs).cpu().numpy(), res)
        assert np.array_equal(predictor_scan.reconstruct(_t(res), refs).cpu().numpy(), planes)
        rgba = np.concatenate([planes, planes[:1]], 0)
        res4 = predictor_ref.compute_residuals(rgba, refs + (-1,))
        assert np.array_equal(predictor_scan.reconstruct(_t(res4), refs + (-1,)).cpu().numpy(), rgba)
        side = np.random.default_rng(0).integers(0, 16, (3, -(-rgb.shape[0] // 8), -(-rgb.shape[1] // 8)),
                                                 dtype=np.uint8)
        h, w = rgb.shape[:2]
        assert np.array_equal(table_ids.block_table_ids(_t(side), h, w, 3).cpu().numpy(),
                              block_table_ids(side, h, w, 3))


@pytest.mark.gpu
@pytest.mark.parametrize("bits", [10, 16])
def test_gpu_deep_tall_and_wide(bits):
    """uint16 planes at real sizes, several strips, repeated (a race would show as differences)."""
    for kind in ("noise", "low", "high"):
        planes = make_planes(kind, (3, 2 * SCAN_ROWS + 5, 301), bits, seed=bits)
        res = predictor_ref.compute_residuals(planes, (-1, 0, 0), bits)
        assert np.array_equal(predictor_residual.compute_residuals(_t(planes), (-1, 0, 0), bits).cpu().numpy(), res)
        for _ in range(3):
            assert np.array_equal(predictor_scan.reconstruct(_t(res), (-1, 0, 0), bits).cpu().numpy(), planes)


@pytest.mark.gpu
def test_gpu_scan_tall_and_wide():
    """Several strips, and a repeat (a race in the wavefront would show as run-to-run differences)."""
    planes = _planes("photo", (3, 3 * SCAN_ROWS + 5, 301), seed=2)
    refs = (-1, 0, 0)
    res = predictor_ref.compute_residuals(planes, refs)
    for _ in range(5):
        assert np.array_equal(predictor_scan.reconstruct(_t(res), refs).cpu().numpy(), planes)
