"""The fallback policy (issue #11, items 8 and 9): never much larger than a plain PNG of the same pixels,
and big images do not pay for fallbacks that cannot win."""
import io
import lzma

import numpy as np
import pytest
from PIL import Image, ImageDraw

import tricodec
from tricodec import container, fallback

from conftest import FIXTURES
from helpers import same_image

# What a FALLBACK file adds to its payload: the header, the section's tag and length, the kind byte.
OVERHEAD = container.HEADER_SIZE + 5 + 1
RNG = np.random.default_rng(8)


def plain_png(image: Image.Image) -> int:
    buf = io.BytesIO()
    image.save(buf, "PNG")
    return len(buf.getvalue())


def two_colour_drawing() -> Image.Image:
    """20x20, two colours scattered: the model's contexts learn nothing in 400 pixels."""
    pick = RNG.random((20, 20, 1)) < 0.5
    return Image.fromarray(np.where(pick, [200, 30, 60], [20, 90, 250]).astype(np.uint8), "RGB")


def diagram(w: int, h: int, mode: str) -> Image.Image:
    im = Image.new("RGB", (w, h), "white")
    d = ImageDraw.Draw(im)
    rng = np.random.default_rng(w)
    for i in range(30):
        x, y = int(rng.integers(0, w)), int(rng.integers(0, h))
        d.rectangle((x, y, x + int(rng.integers(5, w // 3)), y + int(rng.integers(5, h // 3))),
                    fill=tuple(int(v) for v in rng.integers(0, 256, 3)), outline="black")
        d.text((int(rng.integers(0, w)), int(rng.integers(0, h))), f"label {i}", fill="black")
    return im.quantize(64) if mode == "P" else im.convert(mode)


SMALL_GRAPHICS = {
    "two-colour-20x20": two_colour_drawing,
    "dither-rgb-20x20": lambda: Image.fromarray(np.where(
        (np.add.outer(np.arange(20), np.arange(20)) % 3 == 0)[:, :, None], [255, 0, 0], [0, 0, 255]).astype(np.uint8)),
    "diagram-p-200x150": lambda: diagram(200, 150, "P"),
    "diagram-rgb-120x90": lambda: diagram(120, 90, "RGB"),
    "diagram-l-120x90": lambda: diagram(120, 90, "L"),
    "bilevel-64x40": lambda: diagram(64, 40, "1"),
}


@pytest.mark.parametrize("name", sorted(SMALL_GRAPHICS))
def test_never_larger_than_a_plain_png_by_more_than_the_header(name):
    """The 20x20 two-colour drawing took 754 bytes where Pillow's PNG takes 274: the PNG fallback was
    tried only below 2 bits per sample."""
    image = SMALL_GRAPHICS[name]()
    data = tricodec.encode(image, device="cpu")
    assert same_image(tricodec.decode(data, device="cpu"), image)
    assert len(data) <= plain_png(image) + OVERHEAD, (len(data), plain_png(image))


def test_two_colour_drawing_is_no_larger_than_its_png():
    image = two_colour_drawing()
    data = tricodec.encode(image, device="cpu")
    assert len(data) - OVERHEAD < plain_png(image)


def test_png_variants_beat_pillows_optimize_on_graphics():
    """Re-coding Pillow's rows with other filters and zlib strategies: at least as small as
    ``optimize=True`` on every one, smaller on the set, and each decodes to the same pixels and palette."""
    total, total_opt = 0, 0
    for image in [diagram(200, 150, "P"), diagram(120, 90, "RGB"), two_colour_drawing()]:
        buf = io.BytesIO()
        image.save(buf, "PNG", optimize=True)
        payload = fallback.encode_png(image, effort=2)
        assert payload[0] == fallback.PNG and len(payload) - 1 <= len(buf.getvalue())
        back = fallback.decode_fallback(memoryview(payload), image.mode, image.width, image.height,
                                        len(image.getbands()))
        assert same_image(back, image)
        total, total_opt = total + len(payload) - 1, total_opt + len(buf.getvalue())
    assert total < total_opt


def test_photo_keeps_the_model():
    image = Image.open(FIXTURES / "photo_rgb_41x34.png")
    assert not tricodec.read_header(tricodec.encode(image, device="cpu")).is_fallback


# ---- bounded cost on big images ----

@pytest.fixture
def lzma_inputs(monkeypatch):
    """Sizes of everything given to lzma.compress while the test runs."""
    sizes = []
    real = lzma.compress

    def spy(data, *args, **kw):
        sizes.append(len(data))
        return real(data, *args, **kw)
    monkeypatch.setattr(lzma, "compress", spy)
    return sizes


def smooth_photo(w: int, h: int) -> Image.Image:
    return Image.open(FIXTURES / "photo_rgb_41x34.png").convert("RGB").resize((w, h), Image.BICUBIC)


def test_big_photo_runs_lzma_only_on_samples(lzma_inputs):
    """A smooth 1 MP photo (the model codes it below 2 bits per sample): xz of the whole image, 21 s of
    a 10 MP encode, ran although the model always won; now xz sees only two samples of rows."""
    image = smooth_photo(1000, 1000)
    data = tricodec.encode(image, device="cpu")
    assert not tricodec.read_header(data).is_fallback
    assert lzma_inputs and max(lzma_inputs) <= 4 * fallback.SAMPLE_BYTES < len(image.tobytes()) // 10


def test_big_noise_is_stored_without_full_lzma(lzma_inputs):
    """Noise: neither the model nor xz can win; STORED, with xz run on samples only."""
    arr = RNG.integers(0, 256, (700, 600, 3), dtype=np.uint8)
    data = tricodec.encode(arr, device="cpu")
    header, sections = container.unpack(data)
    assert header.is_fallback and bytes(sections[container.SEC_FALLBACK][:1]) == bytes([fallback.STORED])
    assert max(lzma_inputs) <= 4 * fallback.SAMPLE_BYTES


def test_big_graphics_still_get_the_full_fallback():
    """The samples must not hide a winner: a 1024x768 palette diagram (flat areas: xz's fixed costs
    dominate a sample) and a 16-bit array of repeated noise tiles, where only xz can win."""
    image = diagram(1024, 768, "P")
    data = tricodec.encode(image, device="cpu")
    assert len(data) < 0.5 * plain_png(image)
    assert same_image(tricodec.decode(data, device="cpu"), image)
    tile = RNG.integers(0, 65536, (32, 32, 3)).astype(np.uint16)
    deep = np.tile(tile, (16, 24, 1))
    data = tricodec.encode(deep, device="cpu")
    assert len(data) < deep.nbytes // 20
    assert np.array_equal(tricodec.decode_array(data, device="cpu"), deep)


def test_16bit_photo_xz_uses_a_delta_filter():
    """16-bit arrays are xz-compressed after a one-pixel delta filter (~12% smaller on photos); the stream
    names its filters, so the decoder needs nothing new."""
    base = np.asarray(smooth_photo(200, 150)).astype(np.uint16) * 257
    deep = (base + RNG.integers(0, 64, base.shape)).astype(np.uint16)
    payload = fallback.encode_raw(deep, compress=True)
    plain = lzma.compress(deep.astype(">u2").tobytes(), preset=6)
    assert len(payload) < 0.95 * (1 + 8 + len(plain))
    back = fallback.decode_fallback(memoryview(payload), "RGB;16", 200, 150, 3)
    assert np.array_equal(back, deep)


@pytest.mark.parametrize("levels", [20, 5000])
def test_big_16bit_grey_images_are_coded(levels):
    """A 16-bit grey image above the sampling size: the few-colours check called Pillow's getcolors, which
    raises ValueError("image has wrong mode") for I;16 (found by the conformance run on FITS files)."""
    arr = (np.arange(400 * 300).reshape(400, 300) % levels * 13).astype(np.uint16)
    image = Image.fromarray(arr)
    assert image.mode == "I;16"
    back = tricodec.decode(tricodec.encode(image, device="cpu"), device="cpu")
    assert back.mode == "I;16" and np.array_equal(np.asarray(back), arr)


# A palette PNG whose PLTE chunk is gone (found by perf/fuzz_long.py, case encode:13:699431): Pillow opens
# it as "P" with no palette; sampling it for the fallback estimate used to fail with an AttributeError.
NO_PLTE_PNG = bytes.fromhex(
    "89504e470d0a1a0a0000000d49484452000000180000ffff04030000008b2e41c10000000374524e53ffff00d7ca0d410000"
    "008349444154789c8dceb109c2401886e1e72ed1d6b3b213c90419c0c2427b477004c7701c07b0c802820b086e700b9cc4"
    "22115258f8770fbcfc7c618fdba5de35218928c68ba8ab09bca79866659a752d5e7dce7178562c1050b5b3e3218d592ba4"
    "07d4303f598fa8103daf5b6129acce1ab9744326ca42480336dca5ef9cfef7b63ff00139ac168538528abc000000004945"
    "4e44ae426082")


def test_palette_image_without_plte_is_coded_or_refused_with_a_typed_error():
    import io

    import tricodec
    from PIL import Image

    image = Image.open(io.BytesIO(NO_PLTE_PNG))
    try:
        data = tricodec.encode(image)
    except tricodec.TricodecError:
        return
    assert tricodec.decode(data).tobytes() == image.tobytes()


# ---- the fallback check's estimates: made after the model, two candidates in two threads ----

FALLBACK_CASES = {
    "photo-400x300": lambda: smooth_photo(400, 300),
    "diagram-p-1024x768": lambda: diagram(1024, 768, "P"),
    "diagram-l-600x400": lambda: diagram(600, 400, "L"),
    "noise-l-300x300": lambda: Image.fromarray(RNG.integers(0, 256, (300, 300), dtype=np.uint8)),
    "two-colour-20x20": two_colour_drawing,
    "deep-rgb16-tiles": lambda: np.tile(RNG.integers(0, 65536, (16, 16, 3)).astype(np.uint16), (20, 20, 1)),
}


@pytest.mark.parametrize("name", sorted(FALLBACK_CASES))
def test_estimates_in_two_threads_are_the_estimates_made_in_one(name, monkeypatch):
    """PNG's estimate runs in a thread of its own beside xz's: the same figures as one after the other."""
    image = FALLBACK_CASES[name]()
    raw = fallback.pixel_bytes(image)
    threaded = fallback.estimate_fallbacks(image, raw)
    monkeypatch.setattr(fallback, "Background", _Inline)
    assert fallback.estimate_fallbacks(image, raw) == threaded


class _Inline:
    """fallback.Background's interface, run at once in the calling thread."""

    def __init__(self, fn, *args):
        self._value = fn(*args)

    def result(self):
        return self._value


def test_samples_shrink_with_the_image(lzma_inputs, monkeypatch):
    """The samples are at most 1/8 (PNG) and 1/16 (xz, the dearer coder) of a 0.25 MP grey photo, not
    32 KiB each (~6 ms of a ~16 ms encode)."""
    image = smooth_photo(512, 512).convert("L")
    png_inputs = []
    real = fallback._pillow_png
    monkeypatch.setattr(fallback, "_pillow_png", lambda im: png_inputs.append(len(im.tobytes())) or real(im))
    fallback.estimate_fallbacks(image)
    n = len(image.tobytes())
    assert lzma_inputs and max(lzma_inputs) <= n // fallback.XZ_SAMPLE_SHARE < fallback.SAMPLE_BYTES
    assert png_inputs and max(png_inputs) <= n // fallback.PNG_SAMPLE_SHARE


def test_a_close_png_runs_in_full_and_a_distant_one_does_not(monkeypatch):
    """PNG runs in full when its estimate is within PNG_WIN_MARGIN of the model's size, not beyond."""
    image = smooth_photo(400, 300)
    estimate = fallback.estimate_fallbacks(image).png
    runs = []
    real = fallback.encode_png
    monkeypatch.setattr(fallback, "encode_png", lambda *a, **k: runs.append(1) or real(*a, **k))
    fallback.choose_fallback(image, int(estimate / fallback.PNG_WIN_MARGIN) + 2)
    assert runs == [1]
    fallback.choose_fallback(image, int(estimate / fallback.PNG_WIN_MARGIN) - 2)
    assert runs == [1]


def test_a_png_that_cannot_win_is_not_decoded_to_prove_it(monkeypatch):
    """Proving a PNG exact decodes it: done only for a PNG smaller than the limit."""
    image = smooth_photo(300, 200)
    size = plain_png(image)
    decoded = []
    real = fallback._decodes_to
    monkeypatch.setattr(fallback, "_decodes_to", lambda data, im: decoded.append(len(data)) or real(data, im))
    assert fallback.encode_png(image, 0, limit=size + 1) is None and decoded == []
    payload = fallback.encode_png(image, 0, limit=size + 2)
    assert payload is not None and len(payload) == size + 1 and decoded == [size]


def test_encode_reports_an_error_of_the_estimates(monkeypatch):
    def broken(*args):
        raise MemoryError("estimate")
    monkeypatch.setattr(fallback, "_extrapolate", broken)
    with pytest.raises(MemoryError, match="estimate"):
        tricodec.encode(smooth_photo(200, 150), device="cpu")


def test_encode_reports_the_models_error_not_the_estimates(monkeypatch):
    from tricodec import codec

    def broken_model(*args):
        raise RuntimeError("model")
    monkeypatch.setattr(codec, "encode_model", broken_model)
    with pytest.raises(RuntimeError, match="model"):
        tricodec.encode(smooth_photo(200, 150), device="cpu")
