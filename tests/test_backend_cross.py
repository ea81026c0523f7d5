"""One bitstream across backends: the Triton kernels (``device="triton"``: the interpreter on CPU tensors
without a GPU) write exactly the bytes of the CPU twins, and each decodes what the other wrote.

The full codec uses the model's lanes of 8192 symbols, i.e. one long sequential lane per tiny image
under the interpreter: images here have a few hundred samples.
"""
import os

import numpy as np
import pytest
import torch
from PIL import Image

import tricodec
from tricodec import context_model as cm
from tricodec import backend as backend_mod
from tricodec.backend import get_backend
from tricodec.errors import BackendError, DecodeError
from tricodec.pixels import from_array

from conftest import FIXTURES, SHARED_DATA
from helpers import photo_like, same_image

HAS_CUDA = torch.cuda.is_available()


def _image(h, w, c, seed=1):
    return from_array(photo_like(h, w, c, seed=seed).reshape(h, w, c).squeeze())


@pytest.mark.parametrize("h,w,c", [(9, 12, 3), (12, 16, 1), (9, 12, 4)])
def test_triton_writes_cpu_bytes_and_both_decode_both(h, w, c):
    image = _image(h, w, c)
    cpu = tricodec.encode(image, device="cpu")
    assert not tricodec.read_header(cpu).is_fallback   # the model path, not the fallback, is compared
    tri = tricodec.encode(image, device="triton")
    assert tri == cpu
    assert same_image(tricodec.decode(tri, device="triton"), image)
    assert same_image(tricodec.decode(tri, device="cpu"), image)


def test_triton_decode_of_corrupted_file_raises_like_cpu():
    image = _image(9, 12, 3)
    data = bytearray(tricodec.encode(image, device="cpu"))
    data[-3] ^= 0x40                                   # inside the last lane's words
    for device in ("cpu", "triton"):
        with pytest.raises(DecodeError):
            tricodec.decode(bytes(data), device=device)


def test_backend_arrays_cross_decode():
    """Every stage of the Triton backend (its own arrays, crossing only by upload/download) against the
    CPU one, and lanes written by either decoded by the other."""
    cpu, tri = get_backend("cpu"), get_backend("triton")
    up, down = tri.upload, tri.download
    planes = np.ascontiguousarray(photo_like(7, 10, 3, seed=3).transpose(2, 0, 1))
    refs = (-1, 0, 0)
    model = tricodec.load_model("tric-bs2")
    res = down(tri.compute_residuals(up(planes), refs))
    assert res.dtype == np.uint8 and np.array_equal(res, cpu.compute_residuals(planes, refs))
    assert np.array_equal(down(tri.reconstruct(up(res), refs)), planes)
    side = down(tri.choose_block_scales(up(res), up(model.cost), 3))
    assert np.array_equal(side, cpu.choose_block_scales(res, model.cost, 3))
    ids = down(tri.table_ids(up(side), 7, 10, 3))
    assert np.array_equal(ids, cpu.table_ids(side, 7, 10, 3))
    cdf = model.cdf
    c_t, w_t = (down(a) for a in tri.encode_lanes(up(res.ravel()), up(ids.ravel()), up(cdf), 64))
    c_c, w_c = cpu.encode_lanes(res.ravel(), ids.ravel(), cdf, 64)
    assert np.array_equal(c_t, c_c) and np.array_equal(w_t, w_c)
    assert np.array_equal(cpu.decode_lanes(c_t.astype(np.uint32), w_t.astype(np.uint16), ids.ravel(), cdf, 64),
                          res.ravel())
    assert np.array_equal(down(tri.decode_lanes(up(c_c), up(w_c), up(ids.ravel()), up(cdf), 64)), res.ravel())


def test_context_lanes_cross_decode():
    """The context coder on both backends, through the Backend interface, lanes of 1, 2 and all rows."""
    cpu, tri = get_backend("cpu"), get_backend("triton")
    up, down = tri.upload, tri.download
    model = tricodec.load_model("tric-cx1")
    for p, h, w, lane_rows in [(3, 5, 6, 2), (1, 4, 5, 4), (4, 3, 4, 1)]:
        planes = np.ascontiguousarray(photo_like(h, w, p, seed=h * w).reshape(h, w, p).transpose(2, 0, 1))
        res = cpu.compute_residuals(planes, (-1, 0, 0, -1)[:p])
        kinds = cm.plane_kinds(p)
        c_c, w_c = cpu.encode_context_lanes(res, kinds, *model.arrays, lane_rows)
        c_t, w_t = (down(a) for a in tri.encode_context_lanes(up(res), up(kinds), *map(up, model.arrays), lane_rows))
        assert np.array_equal(c_t, c_c) and np.array_equal(w_t, w_c)
        assert np.array_equal(cpu.decode_context_lanes(c_t, w_t, res.shape, kinds, *model.arrays, lane_rows), res)
        assert np.array_equal(down(tri.decode_context_lanes(up(c_c), up(w_c), res.shape, up(kinds),
                                                            *map(up, model.arrays), lane_rows)), res)


def test_auto_keeps_the_context_model_on_the_cpu():
    from tricodec.codec import backend_for
    assert backend_for("auto", tricodec.load_model("tric-cx1")) is get_backend("cpu")
    assert backend_for("auto", tricodec.load_model("tric-bs2")) is get_backend("auto")
    assert backend_for("triton", tricodec.load_model("tric-cx1")).name == "triton"


def test_backend_switch():
    assert get_backend("cpu").name == "cpu"
    assert get_backend("auto").name == ("cuda" if HAS_CUDA else "cpu")
    assert get_backend("triton").name == "triton"
    with pytest.raises(BackendError):
        get_backend("tpu")
    if not HAS_CUDA:
        with pytest.raises(BackendError, match="GPU"):
            get_backend("cuda")
        with pytest.raises(BackendError, match="GPU"):
            tricodec.encode(_image(2, 2, 3), device="cuda")


def test_triton_without_gpu_or_interpreter_is_refused(monkeypatch):
    if HAS_CUDA:
        pytest.skip("with a GPU the triton backend runs the kernels there")
    monkeypatch.delenv("TRITON_INTERPRET", raising=False)
    backend_mod._any_triton_backend.cache_clear()
    try:
        with pytest.raises(BackendError, match="TRITON_INTERPRET"):
            get_backend("triton")
    finally:
        backend_mod._any_triton_backend.cache_clear()


# ---- real sizes on a GPU ----

def _gpu_images():
    paths = sorted((SHARED_DATA / "dev").glob("*.png"))[:3] if (SHARED_DATA / "dev").is_dir() else []
    return paths + sorted(FIXTURES.glob("*.png"))


@pytest.mark.gpu
def test_gpu_codec_equals_cpu_on_dev_images():
    paths = _gpu_images()
    assert paths
    for path in paths:
        image = Image.open(path)
        image.load()
        cpu = tricodec.encode(image, device="cpu")
        gpu = tricodec.encode(image, device="cuda")
        assert gpu == cpu, path.name
        back = tricodec.decode(gpu, device="cpu")
        assert same_image(tricodec.decode(gpu, device="cuda"), back)
        assert tricodec.read_header(gpu).is_fallback or back.tobytes() == image.convert(back.mode).tobytes()


@pytest.mark.gpu
def test_gpu_auto_is_cuda():
    assert get_backend("auto").name == "cuda"
    assert get_backend("triton").name == "triton"


def test_batches_on_the_triton_backend_share_launches_and_bytes():
    """encode_batch/decode_batch on the kernels (lanes of all images in the same launches) write and read
    exactly what the CPU writes image by image, with fallback and block-scale files mixed in."""
    images = [_image(5, 7, 3, seed=1), _image(4, 6, 1, seed=2), _image(3, 5, 4, seed=3),
              Image.new("P", (4, 4)), _image(6, 5, 3, seed=4)]
    cpu = [tricodec.encode(im, device="cpu") for im in images]
    assert tricodec.encode_batch(images, device="triton") == cpu
    mixed = cpu + [tricodec.encode(images[0], device="cpu", model="tric-bs2")]
    back = tricodec.decode_batch(mixed, device="triton")
    assert all(same_image(a, b) for a, b in zip(back, images + [images[0]]))
    bad = bytearray(cpu[4])
    bad[-3] ^= 0x10
    with pytest.raises(DecodeError):
        tricodec.decode_batch(cpu[:2] + [bytes(bad)], device="triton")


def test_batches_bigger_than_the_device_budget_go_in_groups(monkeypatch):
    from tricodec import codec
    monkeypatch.setattr(codec, "DEVICE_BATCH_BYTES", 150)   # every image or two its own group
    images = [_image(5, 7, 3, seed=5), _image(4, 6, 3, seed=6), _image(3, 5, 1, seed=7)]
    cpu = [tricodec.encode(im, device="cpu") for im in images]
    assert tricodec.encode_batch(images, device="triton") == cpu
    assert all(same_image(a, b) for a, b in zip(tricodec.decode_batch(cpu, device="triton"), images))
    assert [len(g) for g in codec._groups([1, 2, 3, 4], lambda j: 60)] == [2, 2]


def test_images_are_coded_side_by_side_only_on_thread_safe_numba_layers(monkeypatch):
    import numba

    backend_mod._threadsafe_parallel_layer.cache_clear()
    try:
        monkeypatch.setattr(numba, "threading_layer", lambda: "workqueue")
        assert backend_mod.image_workers("cpu") == 1
        backend_mod._threadsafe_parallel_layer.cache_clear()
        monkeypatch.setattr(numba, "threading_layer", lambda: "omp")
        assert backend_mod.image_workers("cpu") == max(1, min(4, os.cpu_count() or 1))
        assert backend_mod.image_workers("triton") == 1
    finally:
        backend_mod._threadsafe_parallel_layer.cache_clear()


@pytest.mark.gpu
def test_gpu_batches_at_photo_sizes_write_cpu_bytes():
    images = [_image(512, 768, 3, seed=s) for s in range(4)] + [_image(300, 451, 1, seed=9)]
    cpu = [tricodec.encode(im, device="cpu") for im in images]
    assert tricodec.encode_batch(images, device="cuda") == cpu
    assert all(same_image(a, b) for a, b in zip(tricodec.decode_batch(cpu, device="cuda"), images))
