"""The Triton fused encoder and decoder (kernels/fused_encode.py, kernels/fused_decode.py) equal their CPU
twin (tricodec.fused_ref) bit for bit.

Without a GPU the kernel runs under the Triton interpreter, whose cost is per operation: time goes with the
dependent steps (about W + 2 * rows a strip), so the cases are small and most force 128 rANS states (one
round a step).  With a GPU the ``gpu`` test adds a real photo size.
"""
import numpy as np
import pytest
import torch
from PIL import Image

import tricodec
from tricodec import fused_ref as fr
from tricodec.blend_select import choose_params
from tricodec.errors import DecodeError
from tricodec.kernels import fused_decode, fused_encode

from helpers import photo_crop, photo_like, same_image

DEV = "cuda" if torch.cuda.is_available() else "cpu"
MODEL = tricodec.load_model("tric-wf3")


def _t(a):
    return torch.from_numpy(np.ascontiguousarray(a)).to(DEV)


def _kernel_args(n_planes, lane_rows):
    args = MODEL._fused_args(n_planes, lane_rows)
    return [_t(a) for a in args[:-2]] + list(args[-2:])


def _encoded(planes, lane_rows, params=None, mix=None, bias=None, states=128):
    params = choose_params(planes) if params is None else np.asarray(params, np.int32)
    mix, bias, counts, words = fr.encode_fused(planes, params, *MODEL._fused_args(planes.shape[0], lane_rows),
                                               mix=mix, bias=bias, states=states)
    return params, mix, bias, counts, words


def _kernel_encode(planes, lane_rows, params, mix=None, bias=None, states=128):
    out = fused_encode.encode_fused(_t(planes), params, *_kernel_args(planes.shape[0], lane_rows), mix=mix, bias=bias,
                                    states=states)
    return out[0], out[1], out[2].cpu().numpy(), out[3].cpu().numpy()


def _same_as_twin(planes, lane_rows, params, mix=None, bias=None, states=128):
    """Encode with the twin and the kernels (equal), decode the twin's stream with the kernel (equal) ->
    the twin's (params, mix, bias, counts, words)."""
    enc = _encoded(planes, lane_rows, params, mix, bias, states)
    got = _kernel_encode(planes, lane_rows, enc[0], mix, bias, states)
    assert all(np.array_equal(a, b) for a, b in zip(got, enc[1:]))
    assert np.array_equal(_kernel_decode(planes.shape, lane_rows, *enc), planes)
    return enc


def _kernel_decode(planes_shape, lane_rows, params, mix, bias, counts, words):
    return fused_decode.decode_fused(_t(counts.astype(np.int64)), _t(words), planes_shape, params, mix, bias,
                                     *_kernel_args(planes_shape[0], lane_rows)).cpu().numpy()


def _random_bias(params, seed):
    b = np.random.default_rng(seed).integers(-128, 128, (len(params), fr.N_BIAS)).astype(np.int32)
    b[np.asarray(params)[:, 0] == 0] = 0
    return b


def test_rgb_strips_modes_bias_and_an_odd_mix():
    planes = np.ascontiguousarray(photo_crop(20, 30, 3, seed=1).transpose(2, 0, 1))
    params = np.array([[1, -1, 0, -1, 0], [0, 0, 4, -1, 0], [1, 0, 2, 1, 2]], np.int32)
    _same_as_twin(planes, 8, params, mix=[[4, 4, 8], [0, 3, 13], [6, 5, 5]], bias=_random_bias(params, 2))


def test_the_encoders_choices_are_the_twins():
    """Bias medians and mix chosen from the kernels' maps: those of the twin (a 2^16-pixel grey plane gets
    a bias table)."""
    planes = photo_like(256, 256, 1, seed=3).reshape(1, 256, 256)
    params = np.array([[1, -1, 0, -1, 0]], np.int32)
    bias, res, ctx = fr.strip_symbols(planes, params, MODEL.bin_s, MODEL.bin_g, 128)
    assert bias.any()
    maps = fused_encode.strip_symbols(_t(planes), params, bias, _t(MODEL.bin_s), _t(MODEL.bin_g), 128)
    assert np.array_equal(maps[0].cpu().numpy(), res) and np.array_equal(maps[1].cpu().numpy(), ctx)
    small = np.ascontiguousarray(planes[:, :12, :40])
    _same_as_twin(small, 6, params)


@pytest.mark.parametrize("shape,lane_rows", [((1, 1, 1), 1), ((1, 1, 13), 1), ((2, 9, 1), 4), ((4, 9, 12), 5)])
def test_odd_shapes_and_four_planes(shape, lane_rows):
    n, h, w = shape
    planes = np.ascontiguousarray(photo_crop(max(h, 2), max(w, 2), 4, seed=h * w).transpose(2, 0, 1)[:n, :h, :w])
    _same_as_twin(planes, lane_rows, choose_params(planes), states=0 if n * h * w < 200 else 128)  # own K: tiny


def test_contexts_pass_the_weight_cap():
    """A flat grey image with a few dots: table contexts pass the weight schedule's cap (its last entry) in
    one strip."""
    planes = np.full((1, 24, 64), 90, np.uint8)
    planes[0, 5:20:4, 7:60:9] = photo_like(4, 6, 1, seed=4).reshape(4, 6)
    params = choose_params(planes)
    _, _, ctx = fr.strip_symbols(planes, params, MODEL.bin_s, MODEL.bin_g, 24)
    assert np.bincount(ctx.ravel()).max() > len(MODEL.weight_lut)
    _same_as_twin(planes, 24, params)


def test_a_batch_of_images_and_corruption_as_the_twin():
    a = np.ascontiguousarray(photo_crop(7, 9, 3, seed=5).transpose(2, 0, 1))
    b = photo_crop(6, 11, 1, seed=6).reshape(1, 6, 11)
    ea, eb = _encoded(a, 3), _encoded(b, 6)
    shapes = [a.shape, b.shape]
    outs = fused_decode.decode_fused_batch(
        [_t(e[3].astype(np.int64)) for e in (ea, eb)], [_t(e[4]) for e in (ea, eb)], shapes,
        [ea[0], eb[0]], [ea[1], eb[1]], [ea[2], eb[2]], [_t(MODEL._fused_args(n, 1)[0]) for n in (3, 1)],
        *_kernel_args(3, 1)[1:-2], MODEL.update_steps, [3, 6])
    assert np.array_equal(outs[0].cpu().numpy(), a) and np.array_equal(outs[1].cpu().numpy(), b)
    params, mix, bias, counts, words = ea
    with pytest.raises(DecodeError):
        _kernel_decode(a.shape, 3, params, mix, bias, counts, words[:-1])
    flipped = words.copy()
    flipped[len(words) // 2] ^= 0x0F0F
    try:
        twin = fr.decode_fused(counts, flipped, a.shape, params, mix, bias, *MODEL._fused_args(3, 3))
    except DecodeError:
        with pytest.raises(DecodeError):
            _kernel_decode(a.shape, 3, params, mix, bias, counts, flipped)
    else:
        assert np.array_equal(_kernel_decode(a.shape, 3, params, mix, bias, counts, flipped), twin)


def test_the_codec_decodes_fused_files_on_the_triton_backend():
    image = Image.fromarray(photo_crop(6, 8, 3, seed=7), "RGB")
    data = tricodec.encode(image, device="cpu", model="tric-wf3")
    assert tricodec.read_header(data).model_name == "tric-wf3"
    assert tricodec.encode(image, device="triton", model="tric-wf3") == data
    assert same_image(tricodec.decode(data, device="triton"), image)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a GPU")
def test_photo_size_on_the_gpu():
    planes = np.ascontiguousarray(photo_crop(256, 200, 3, seed=8).transpose(2, 0, 1))
    _same_as_twin(planes, 128, choose_params(planes), states=0)
