"""The fused model's twin (tricodec.fused_ref, tric-wf3) against a pure-Python statement of its predictor
and table-C contexts, against the wavefront twin it extends, its bitstream rules, its training and the
codec paths that reach it."""
import numpy as np
import pytest
from PIL import Image

import tricodec
from tricodec import blend_ref as br
from tricodec import container
from tricodec import fused_model as fm
from tricodec import fused_ref as fr
from tricodec import wavefront_ref as wr
from tricodec.blend_select import choose_params
from tricodec.context_model import plane_kinds
from tricodec.errors import DecodeError

from helpers import photo_crop, photo_like, same_image

MODEL = tricodec.load_model("tric-wf3")


def model_args(n_planes, lane_rows):
    return MODEL._fused_args(n_planes, lane_rows)


def planes_of(arr):
    arr = arr if arr.ndim == 3 else arr[:, :, None]
    return np.ascontiguousarray(arr.transpose(2, 0, 1))


def reference_strip(planes, params, y0, y1, bias):
    """The module docstring in plain Python: each plane of rows y0..y1 predicted as an image of its own ->
    (residual symbols, table-C contexts), (P, y1 - y0, W)."""
    n, _, w = planes.shape
    x = planes[:, y0:y1].astype(np.int64)
    rows = y1 - y0
    res = np.zeros((n, rows, w), np.int64)
    ctx = np.zeros((n, rows, w), np.int64)
    rel5 = lambda d: 2 + int(np.sign(d)) * (int(d != 0) + int(abs(d) > 4))  # noqa: E731
    for k in range(n):
        mode, q1, c1, q2, c2 = (int(v) for v in params[k])
        ref = np.zeros((rows, w), np.int64)
        if q1 >= 0:
            ref += c1 * x[q1]
        if q2 >= 0:
            ref += c2 * x[q2]
        ref >>= 2
        v = x[k] - ref
        err = np.zeros((6, rows, w), np.int64)

        def e(i, yy, xx):
            return int(err[i, yy, xx]) if 0 <= yy and 0 <= xx < w else 0
        for yy in range(rows):
            for xx in range(w):
                W = v[yy, xx - 1] if xx > 0 else (v[yy - 1, xx] if yy > 0 else 0)
                N = v[yy - 1, xx] if yy > 0 else W
                NW = v[yy - 1, xx - 1] if yy > 0 and xx > 0 else N
                NE = v[yy - 1, xx + 1] if yy > 0 and xx < w - 1 else N
                NNE = v[yy - 2, xx + 1] if yy > 1 and xx < w - 1 else NE
                med = min(W, N) if NW >= max(W, N) else max(W, N) if NW <= min(W, N) else W + N - NW
                s = [4 * med, 4 * W, 4 * N, 4 * (W + NE - N), 4 * (N + NE - NNE), 2 * (W + N) + NE - NW]
                if mode == 0:
                    pv4 = 4 * med
                    eb = int(MODEL.bin_g[min(abs(W - NW) + abs(N - NW) + abs(NE - N), len(MODEL.bin_g) - 1)])
                else:
                    S = [2 * (e(i, yy, xx - 1) + e(i, yy - 1, xx) + e(i, yy - 1, xx - 1) + e(i, yy - 1, xx + 1))
                         + e(i, yy, xx - 2) + e(i, yy - 2, xx) for i in range(6)]
                    wts = [int(br.WEIGHT_LUT[si]) for si in S]
                    tw = sum(wts)
                    pv4 = s[0] if tw == 0 else (sum(wi * (si + 4096) for wi, si in zip(wts, s)) + tw // 2) // tw - 4096
                    order = sum(int(4 * X > pv4) << i for i, X in enumerate((W, N, NW, NE)))
                    pv4 += int(bias[k][order * 4 + sum(int(min(S) > t) for t in (40, 120, 320))])
                    eb = int(MODEL.bin_s[min(min(S), len(MODEL.bin_s) - 1)])
                ctx[k, yy, xx] = (((rel5(4 * W - pv4) * 5 + rel5(4 * N - pv4)) * 5 + rel5(4 * NE - pv4)) * 8
                                  + eb) * 4 + (pv4 & 3)
                pv = (pv4 + 2 + 4096) // 4 - 1024
                if yy == 0 and xx == 0:
                    pv = 128 if q1 < 0 and q2 < 0 else 0
                pred = min(max(pv + int(ref[yy, xx]), 0), 255)
                res[k, yy, xx] = (int(x[k, yy, xx]) - pred + 128) & 255
                for i in range(6):
                    err[i, yy, xx] = min(abs(4 * int(v[yy, xx]) - s[i]), br.E_MAX)
    return res, ctx


def twin_strip(planes, params, y0, y1, bias=None):
    res = np.zeros_like(planes)
    ctx = np.zeros(planes.shape, np.int16)
    junk = np.zeros(planes.shape, np.int8), np.zeros(planes.shape, np.int16)
    bias = np.zeros((planes.shape[0], fr.N_BIAS), np.int32) if bias is None else bias
    fr._strip_symbols(planes, np.asarray(params, np.int32), bias, MODEL.bin_s, MODEL.bin_g, y0, y1, res, ctx, *junk)
    return res[:, y0:y1], ctx[:, y0:y1]


def some_bias(params, seed):
    """A random bias table: int8 values on blend planes, zeros on MED planes."""
    b = np.random.default_rng(seed).integers(-128, 128, (len(params), fr.N_BIAS)).astype(np.int32)
    b[np.asarray(params)[:, 0] == 0] = 0
    return b


@pytest.mark.parametrize("shape,params,y0,y1", [
    ((3, 9, 11), [[1, -1, 0, -1, 0], [1, 0, 4, -1, 0], [1, 0, 2, 1, 2]], 0, 9),
    ((3, 12, 7), [[0, -1, 0, -1, 0], [1, 0, 2, -1, 0], [0, 0, 3, 1, 1]], 5, 12),
    ((1, 6, 1), [[1, -1, 0, -1, 0]], 0, 6),
    ((2, 1, 9), [[1, -1, 0, -1, 0], [0, -1, 0, -1, 0]], 0, 1)])
def test_twin_predicts_what_the_model_states(shape, params, y0, y1):
    planes = planes_of(photo_crop(shape[1], shape[2], 3, seed=shape[2]))[:shape[0]].copy()
    if shape[0] == 3:
        planes[1, 2:4] = 255     # extremes: clamping and large errors
        planes[2, -2:] = 0
    for bias in (np.zeros((shape[0], fr.N_BIAS), np.int32), some_bias(params, shape[2])):
        got, want = twin_strip(planes, params, y0, y1, bias), reference_strip(planes, params, y0, y1, bias)
        assert np.array_equal(got[0], want[0]) and np.array_equal(got[1], want[1])


def test_a_strip_predicts_as_blend_ref_does_an_image():
    """Without bias, the residuals of a strip are blend_ref's of the strip cut out as an image of its own."""
    planes = planes_of(photo_crop(40, 33, 3, seed=2))
    params = choose_params(planes)
    for y0, y1 in ((0, 13), (13, 26), (26, 40)):
        res, _ = twin_strip(planes, params, y0, y1)
        assert np.array_equal(res, br.compute_blend_residuals(planes[:, y0:y1].copy(), params))


def test_mix_of_a_and_b_codes_the_wavefront_models_words():
    """At mix (8, 8, 0) the coder is tric-wf2's: the same words as wavefront_ref coding the strips'
    residuals (table C adapts unread)."""
    planes = planes_of(photo_crop(45, 50, 3, seed=4))
    params = choose_params(planes)
    rows = 16
    mix, bias, counts, words = fr.encode_fused(planes, params, *model_args(3, rows), mix=[[8, 8, 0]] * 3,
                                               bias=np.zeros((3, fr.N_BIAS), np.int32))
    res = np.concatenate([twin_strip(planes, params, y0, min(45, y0 + rows))[0] for y0 in range(0, 45, rows)], 1)
    c2, w2 = wr.encode_wavefront_lanes(res, plane_kinds(3), *MODEL.arrays, MODEL.update_steps, rows)
    assert np.array_equal(counts, c2) and np.array_equal(words, w2)


MIXES = [None, [[16, 0, 0]] * 3, [[0, 16, 0]] * 3, [[0, 0, 16]] * 3, [[1, 2, 13], [5, 0, 11], [0, 15, 1]]]


@pytest.mark.parametrize("shape,lane_rows,states", [((1, 1, 1), 1, 0), ((3, 1, 9), 1, 0), ((2, 7, 1), 3, 0),
                                                    ((4, 5, 6), 2, 1), ((3, 33, 17), 8, 128), ((1, 64, 200), 20, 0)])
@pytest.mark.parametrize("mix", MIXES, ids=["chosen", "A", "B", "C", "odd"])
def test_round_trip_odd_shapes_and_mixes(shape, lane_rows, states, mix):
    n, h, w = shape
    src = photo_crop(h, w, 4, seed=h + w) if h * w > 1 else np.full((1, 1, 4), 77, np.uint8)
    planes = planes_of(src)[:n].copy()
    params = choose_params(planes)
    used, bias, counts, words = fr.encode_fused(planes, params, *model_args(n, lane_rows), mix=mix, states=states)
    out = fr.decode_fused(counts, words, planes.shape, params, used, bias, *model_args(n, lane_rows))
    assert np.array_equal(out, planes)
    if mix is not None:
        assert used.tolist() == mix


def test_round_trip_with_any_bias_and_the_encoders_bias_is_the_median():
    planes = planes_of(photo_crop(50, 60, 3, seed=12))
    params = np.array([[1, -1, 0, -1, 0], [0, 0, 4, -1, 0], [1, 0, 2, 1, 2]], np.int32)
    bias = some_bias(params, 3)
    used, b, counts, words = fr.encode_fused(planes, params, *model_args(3, 20), bias=bias)
    assert np.array_equal(b, bias)
    assert np.array_equal(fr.decode_fused(counts, words, planes.shape, params, used, bias, *model_args(3, 20)), planes)
    assert not fr.strip_symbols(planes, params, MODEL.bin_s, MODEL.bin_g, 20)[0].any()   # too small to pay
    big = np.zeros((3, 256, 256), np.uint8)         # choose_bias sees planes of 2^16 pixels
    bctx, e4 = np.zeros(big.shape, np.int8), np.zeros(big.shape, np.int16)
    zero = np.zeros((3, fr.N_BIAS), np.int32)
    for y0 in (0, 20, 40):
        fr._strip_symbols(planes, params, zero, MODEL.bin_s, MODEL.bin_g, y0, min(50, y0 + 20),
                          np.zeros_like(planes), np.zeros(planes.shape, np.int16), bctx[:, :50, :60], e4[:, :50, :60])
    bctx[:, 50:] = bctx[:, :, 60:] = -1
    chosen = fr.choose_bias(bctx, e4, params)
    assert not chosen[1].any() and chosen[[0, 2]].any()
    for p in (0, 2):
        for c in range(fr.N_BIAS):
            e = np.sort(e4[p, :50, :60][bctx[p, :50, :60] == c].astype(int))
            assert chosen[p, c] == (np.clip(e[(len(e) - 1) // 2], -128, 127) if len(e) else 0)
    with pytest.raises(ValueError):
        fr.check_bias(np.ones((3, fr.N_BIAS), np.int32), params)     # a MED plane's row must be 0
    with pytest.raises(ValueError):
        fr.check_bias(np.full((3, fr.N_BIAS), 128), np.ones((3, 5), np.int32))


def test_round_trip_noise_flat_and_every_mode():
    rng = np.random.default_rng(5)
    for planes in (rng.integers(0, 256, (3, 30, 41), dtype=np.uint8), np.full((3, 30, 41), 255, np.uint8),
                   (np.indices((30, 41)).sum(0) % 2 * 255).astype(np.uint8)[None].repeat(3, 0)):
        for params in ([[0, -1, 0, -1, 0], [0, 0, 4, -1, 0], [0, 0, 1, 1, 3]],
                       [[1, -1, 0, -1, 0], [1, -1, 0, -1, 0], [1, 1, 4, -1, 0]]):
            mix, bias, counts, words = fr.encode_fused(planes, params, *model_args(3, 11))
            assert np.array_equal(fr.decode_fused(counts, words, planes.shape, params, mix, bias, *model_args(3, 11)),
                                  planes)


def test_encoder_picks_the_cheapest_candidate_and_it_pays_on_a_photo():
    planes = planes_of(photo_crop(96, 128, 3, seed=6))
    params = choose_params(planes)
    mix, bias, counts, words = fr.encode_fused(planes, params, *model_args(3, 48))
    assert all(any((m == c).all() for c in fr.CANDIDATE_MIXES) for m in mix)
    assert (mix[:, 2] > 0).any()          # real photo content: table C earns a share
    _, _, _, base = fr.encode_fused(planes, params, *model_args(3, 48), mix=[[8, 8, 0]] * 3)
    assert words.size < base.size
    cost = np.array([[3.0, 1.0, 2.0] + [9.0] * 13, [0.5] + [9.0] * 15, [9.0] * 15 + [0.1]])
    assert fr.choose_mix(cost, np.array([0, 1])).tolist() == [[7, 7, 2], [8, 8, 0], [8, 8, 0]]


def test_corruption_and_bad_arguments_are_reported():
    planes = planes_of(photo_crop(20, 30, 3, seed=8))
    params = choose_params(planes)
    mix, bias, counts, words = fr.encode_fused(planes, params, *model_args(3, 10))
    args = model_args(3, 10)
    with pytest.raises(DecodeError):
        fr.decode_fused(counts, words[:-1], planes.shape, params, mix, bias, *args)
    bad = counts.copy()
    bad[0, 0] += 1
    with pytest.raises(DecodeError):
        fr.decode_fused(bad, np.concatenate([words, [0]]).astype(np.uint16), planes.shape, params, mix, bias, *args)
    # a changed word decodes to an error or other pixels, never past the buffer (the container's CRC then)
    flipped = words.copy()
    flipped[len(flipped) // 2] ^= 0x1234
    try:
        assert not np.array_equal(fr.decode_fused(counts, flipped, planes.shape, params, mix, bias, *args), planes)
    except DecodeError:
        pass
    for m in ([[8, 8, 1]] * 3, [[17, -1, 0]] * 3, [[8, 8]] * 3, np.full((3, 3), 16 / 3)):
        with pytest.raises(ValueError):
            fr.check_mix(m)
    with pytest.raises(ValueError):
        fr.check_table_c(MODEL.init_c[:, :10], MODEL.bin_s, MODEL.bin_g)
    with pytest.raises(ValueError):
        fr.check_table_c(MODEL.init_c, MODEL.bin_s + 8, MODEL.bin_g)


def test_each_set_of_tables_is_checked_though_the_checks_are_kept():
    """A model's tables are checked once and kept (fused_ref._model); other arrays, even equal to ones kept
    but for one entry, are checked again, and the kinds every time."""
    planes = planes_of(photo_crop(20, 24, 1, seed=5))
    args = list(MODEL._fused_args(1, 8))
    fr.encode_fused(planes, np.array([[1, -1, 0, -1, 0]]), *args)
    bad = MODEL.init_c.copy()
    bad[1, 7, 3] = bad[1, 7, 2] - 1
    with pytest.raises(ValueError, match="init_c"):
        fr.encode_fused(planes, np.array([[1, -1, 0, -1, 0]]), *args[:3], bad, *args[4:])
    with pytest.raises(ValueError, match="kinds"):
        fr.encode_fused(planes, np.array([[1, -1, 0, -1, 0]]), np.array([1], np.int32), *args[1:])


def test_table_states_reach_the_weight_cap_on_many_strips():
    """A 2-strip grey photo: contexts pass the weight schedule's cap (512 uses), strips are independent
    (each strip decodes alone, from its own words)."""
    planes = planes_of(photo_like(128, 256, 1, seed=9))
    params = choose_params(planes)
    mix, bias, counts, words = fr.encode_fused(planes, params, *model_args(1, 64))
    assert counts.shape[0] == 2
    ctx = twin_strip(planes, params, 0, 64)[1]
    assert np.bincount(ctx.ravel()).max() > len(MODEL.weight_lut)
    n0 = int(counts[0, :2].sum())
    second = fr.decode_fused(counts[1:], words[n0:], (1, 64, 256), params, mix, bias, *model_args(1, 64))
    assert np.array_equal(second, planes[:, 64:])


# ---- the model in the codec ----

@pytest.mark.parametrize("mode,channels", [("L", 1), ("LA", 2), ("RGB", 3), ("RGBA", 4)])
def test_codec_round_trip_with_the_fused_model(mode, channels):
    arr = photo_crop(37, 45, 4, seed=channels)[:, :, :channels] if channels != 1 else photo_crop(37, 45, 1)
    image = Image.fromarray(arr.squeeze() if channels in (1,) else arr, mode)
    data = tricodec.encode(image, device="cpu", model="tric-wf3")
    header, secs = container.unpack(data)
    assert header.model_name == "tric-wf3" and not header.is_fallback
    assert same_image(tricodec.decode(data, device="cpu"), image)


def test_codec_16_bit_with_the_fused_model():
    """16-bit images reach the model as the depth split's symbols: coded with tables A and B (SIDE: lane
    rows alone), decoded exactly."""
    from pathlib import Path
    image = Image.open(Path(__file__).resolve().parent / "golden" / "v1_wf3_gray16_37x29.png")
    data = tricodec.encode(image, device="cpu", model="tric-wf3")
    header, secs = container.unpack(data)
    assert header.model_name == "tric-wf3" and header.bit_depth == 16 and container.SEC_DEEP in secs
    assert len(secs[container.SEC_SIDE]) == 4
    assert same_image(tricodec.decode(data, device="cpu"), image)


def test_bad_side_information_is_a_decode_error():
    image = Image.fromarray(photo_like(300, 256, 3, seed=1), "RGB")
    data = tricodec.encode(image, device="cpu", model="tric-wf3")
    header, secs = container.unpack(data)
    side = bytes(secs[container.SEC_SIDE])
    head = 4 + 15
    _, params, _, rep, bias = fm.unpack_side(side, (3, 300, 256))
    assert rep == (1, 1) and side[head + 9] == 0
    assert side[head + 10] == sum(1 << p for p in range(3) if params[p, 0]) and len(side) == head + 11 + 64 * bin(
        side[head + 10]).count("1") and bias.any()
    med = [p for p in range(3) if not params[p, 0]]
    flags = [side[head + 10] ^ 1 << med[0]] if med else []      # a table for a MED plane
    for bad in [side[:-1], side + b"\0", side[:head] + bytes([8, 8, 1] + [8, 8, 0] * 2) + side[head + 9:],
                side[:head + 10] + bytes([side[head + 10] | 8]) + side[head + 11:],
                side[:head + 9] + bytes([0x40]) + side[head + 10:], side[:head + 9] + bytes([0x04]) + side[head + 10:]] \
            + [side[:head + 10] + bytes([f]) + side[head + 11:] for f in flags]:
        with pytest.raises(DecodeError):
            MODEL.decode_planes_batch([{**secs, container.SEC_SIDE: memoryview(bad)}], [(3, 300, 256)], [None],
                                      tricodec.backend.get_backend("cpu"))
    assert fm.unpack_side(side, (3, 300, 256))[2].sum() == 48


@pytest.mark.parametrize("fy,fx,h,w", [(2, 2, 36, 40), (3, 1, 10, 7), (1, 4, 5, 18), (2, 3, 7, 11), (4, 4, 9, 9)])
def test_replicated_images_code_their_small_image(fy, fx, h, w):
    """Nearest-neighbour enlargements (partial blocks at the edges too) are found, coded small, rebuilt."""
    from tricodec import replicate
    small = photo_crop(-(-h // fy), -(-w // fx), 3, seed=fy * 7 + fx)
    big = np.ascontiguousarray(np.repeat(np.repeat(small, fy, 0), fx, 1)[:h, :w])
    planes = planes_of(big)
    assert replicate.replication(planes) == (fy, fx)
    assert np.array_equal(replicate.expand(planes_of(small), fy, fx, h, w), planes)
    assert np.array_equal(replicate.expand(torch_tensor(planes_of(small)), fy, fx, h, w).numpy(), planes)
    image = Image.fromarray(big, "RGB")
    data = tricodec.encode(image, device="cpu", model="tric-wf3")
    header, secs = container.unpack(data)
    assert not header.is_fallback and fm.unpack_side(secs[container.SEC_SIDE], (3, h, w))[3] == (fy, fx)
    assert same_image(tricodec.decode(data, device="cpu"), image)
    one = big.copy()
    one[1, 1, 2] ^= 1                            # one sample off (not the first of its block): not a replica
    assert replicate.replication(planes_of(one)) != (fy, fx)


def test_replication_is_the_largest_factor_its_definition_allows():
    """replicate.replication against its definition (x == x[(y // fy) * fy, (x // fx) * fx]), by brute
    force, on small random replicas, some with one sample off (anywhere: the checks read views and a
    middle block first, the definition reads everything)."""
    from tricodec import replicate
    rng = np.random.default_rng(11)

    def holds(planes, fy, fx):
        _, h, w = planes.shape
        return fy <= h and fx <= w and (h > 1 or fy == 1) and (w > 1 or fx == 1) and np.array_equal(
            planes, planes[:, (np.arange(h) // fy) * fy][:, :, (np.arange(w) // fx) * fx])

    for trial in range(400):
        p, h, w = int(rng.integers(1, 4)), int(rng.integers(1, 14)), int(rng.integers(1, 14))
        fy, fx = (int(v) for v in rng.integers(1, 5, 2))
        small = rng.integers(0, 3 if trial % 2 else 256, (p, -(-h // fy), -(-w // fx))).astype(np.uint8)
        x = replicate.expand(small, fy, fx, h, w)
        if trial % 3 == 0:
            x = x.copy()
            x[rng.integers(0, p), rng.integers(0, h), rng.integers(0, w)] ^= 1
        gy = max(f for f in range(1, replicate.MAX_FACTOR + 1) if holds(x, f, 1))
        gx = max(f for f in range(1, replicate.MAX_FACTOR + 1) if holds(x[:, ::gy], 1, f))
        assert replicate.replication(x) == (gy, gx)


def torch_tensor(a):
    import torch
    return torch.from_numpy(np.ascontiguousarray(a))


# ---- training ----

def test_training_is_deterministic_and_counts_every_symbol(tmp_path):
    from tricodec.model import model_from_bytes
    from tricodec.train_fused import count_table_c, train_fused
    Image.fromarray(photo_crop(40, 50, 3, seed=1), "RGB").save(tmp_path / "a.png")
    Image.fromarray(photo_crop(30, 20, 1, seed=2), "L").save(tmp_path / "b.png")
    one, two = (train_fused(tmp_path, name="mine") for _ in range(2))
    assert one == two
    m = model_from_bytes(one)
    assert m.kind == "fused" and m.name == "mine" and np.array_equal(m.init_a, MODEL.init_a)
    hist = np.zeros((3, fr.NC_C, 24), np.int64)
    count_table_c(planes_of(photo_crop(40, 50, 3, seed=1)), m.bin_s, m.bin_g, hist)
    assert hist.sum() == 3 * 40 * 50 and (hist.sum(axis=(1, 2)) == 40 * 50).all()
    with pytest.raises(ValueError):
        train_fused(tmp_path, name="x", base="tric-wf1")
