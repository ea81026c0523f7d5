"""Files of third-party corpora (tests/conformance_fixtures/, see LICENSES.md there): each one round-trips
exactly or is refused with a typed error, through the API and (for some) the CLI. One file per class of
failure the conformance run (perf/conformance.py over Pillow's test images and PngSuite) found.

The checks are perf/conformance.py's own (an independent reading of each file at full depth: pypng's raw
samples for 16-bit PNG, tifffile's for deep TIFF), so this test and the conformance run judge alike."""
import importlib.util
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

HERE = Path(__file__).resolve().parent
FIXTURES = HERE / "conformance_fixtures"  # not under tests/fixtures/: tests walk that folder as photos
_spec = importlib.util.spec_from_file_location("tricodec_conformance", HERE.parent / "perf" / "conformance.py")
conf = importlib.util.module_from_spec(_spec)
sys.modules[_spec.name] = conf
_spec.loader.exec_module(conf)

# file -> (class it stands for, what it must give: "ok" = round trip, "ok|refused" = either)
CASES = {
    "basn4a16.png": ("16-bit grey+alpha PNG (was read at 8 bits, then refused; kept as LA;16 since)", "ok"),
    "basn2c16.png": ("16-bit RGB PNG", "ok"),
    "Basn0g03.png": ("PNG with sBIT (4-bit grey)", "ok"),
    "tiff_16bit_RGB.tiff": ("16-bit RGB TIFF (Pillow truncates it)", "ok|refused"),
    "tiff_16bit_RGBa.tiff": ("16-bit RGBA TIFF with extra samples", "ok|refused"),
    "16bit.MM.deflate.tif": ("16-bit grey big-endian TIFF (I;16B)", "ok"),
    "16_bit_binary.pgm": ("16-bit PGM (Pillow mode I)", "ok|refused"),
    "python.ico": ("ICO with several sizes (only the largest loads; sizes kept as frames since issue #14)", "ok"),
    "apng_delay.png": ("APNG (frames kept since issue #14)", "ok"),
    "apng_mode_16bit.png": ("16-bit APNG (was coded as one frame; frames kept since issue #14)", "ok"),
    "no_palette.gif": ("multi-frame GIF", "ok|refused"),
    "multipage.tiff": ("multi-page TIFF", "ok|refused"),
    "frame_size.mpo": ("MPO (several JPEGs)", "ok|refused"),
    "psd-oob-write-overflow.psd": ("hostile PSD (bad tile)", "ok|refused"),
    "five_channels.psd": ("PSD with five channels", "ok|refused"),
    "color_snakes.png": ("PNG with XMP", "ok"),
    "hopper_jpg.tif": ("TIFF with JPEG compression", "ok"),
    "tiff_strip_cmyk_jpeg.tif": ("CMYK TIFF with JPEG compression", "ok"),
    "exif_gps.jpg": ("JPEG with GPS EXIF (and a dpi too large for PNG's pHYs)", "ok"),
    "pil_sample_cmyk.jpg": ("CMYK JPEG with EXIF (and a thumbnail a TIFF cannot hold)", "ok|refused"),
    "piexif_r_sigma.jpg": ("camera JPEG with maker-note EXIF", "ok"),
    "ossfuzz-5730089102868480.sgi": ("16-bit SGI", "ok|refused"),
    "cross_scan_line_truncated.tga": ("truncated TGA", "ok|refused"),
    "dispose_bgnd.gif": ("multi-frame GIF, disposal to background", "ok"),
    "test_extents.gif": ("GIF frame partly outside the screen", "ok"),
    "multipage-mmap.tiff": ("multi-page TIFF (pages with XResolution 0)", "ok"),
    "m13_crop_300x240.png": ("16-bit grey (I;16) astronomy image, cropped from m13.fits", "ok|refused"),
}
# API classes whose fix has not landed yet (strict: the day it lands the mark must go).
API_XFAIL = {}
# Through the CLI too (files written and read back; metadata compared): classes where the CLI differs.
CLI_CASES = ["exif_gps.jpg", "pil_sample_cmyk.jpg", "piexif_r_sigma.jpg", "color_snakes.png", "tiff_16bit_RGB.tiff", "basn4a16.png",
             "16_bit_binary.pgm", "tiff_strip_cmyk_jpeg.tif", "python.ico", "apng_mode_16bit.png", "apng_delay.png",
             "dispose_bgnd.gif", "test_extents.gif", "multipage-mmap.tiff", "multipage.tiff"]
# Classes whose fix has not landed yet: strict, so the day it lands the mark must go. Empty since the
# last two (exif_gps.jpg: a dpi PNG's pHYs cannot hold; pil_sample_cmyk.jpg: an EXIF thumbnail a TIFF
# cannot hold, now refused by encode) were fixed (tests/test_metadata_kept.py).
CLI_XFAIL: dict = {}


def test_every_fixture_is_listed_and_small():
    files = {p.name for p in FIXTURES.iterdir() if p.name != "LICENSES.md"}
    assert files == set(CASES)
    assert all((FIXTURES / f).stat().st_size < 50_000 for f in files)
    assert sum((FIXTURES / f).stat().st_size for f in files) < 1_000_000
    licences = (FIXTURES / "LICENSES.md").read_text()
    assert all(f in licences for f in files)


def _expect(result: dict, allowed: str, what: str):
    assert result["status"] in allowed.split("|"), f"{what}: {result}"


@pytest.mark.parametrize("name", [pytest.param(n, marks=pytest.mark.xfail(strict=True, reason=API_XFAIL[n]))
                                  if n in API_XFAIL else n for n in sorted(CASES)], ids=str)
def test_api_round_trip_or_typed_refusal(name):
    what, allowed = CASES[name]
    _expect(conf.check_api(FIXTURES / name), allowed, what)


@pytest.fixture(scope="module")
def cli_results(tmp_path_factory):
    root = tmp_path_factory.mktemp("conformance")
    for name in CLI_CASES:
        (root / name).write_bytes((FIXTURES / name).read_bytes())
    return conf.run_cli(sorted(root / n for n in CLI_CASES), root, timeout=120)


@pytest.mark.parametrize("name", [pytest.param(n, marks=pytest.mark.xfail(strict=True, reason=CLI_XFAIL[n]))
                                  if n in CLI_XFAIL else n for n in CLI_CASES], ids=str)
def test_cli_round_trip_or_typed_refusal(cli_results, name):
    what, allowed = CASES[name]
    result = next(r for p, r in cli_results.items() if Path(p).name == name)
    _expect(result, allowed, "CLI, " + what)


# The checker itself must see losses, or the tests above could not fail.

def test_checker_sees_a_16bit_png_read_at_8_bits():
    ref = conf.Reading(FIXTURES / "basn2c16.png")
    eight = Image.fromarray((ref.array >> 8).astype(np.uint8), "RGB")
    assert "depth" in conf.compare_to_reading(ref, eight)[0]
    assert conf.compare_to_reading(ref, ref.array) is None
    changed = ref.array.copy()
    changed[0, 0, 0] ^= 1
    assert "altered" in conf.compare_to_reading(ref, changed)[0]


def test_checker_sees_dropped_frames_and_changed_pixels():
    multi = conf.Reading(FIXTURES / "multipage.tiff")
    assert "frames" in conf.compare_to_reading(multi, multi.image)[0]
    ref = conf.Reading(FIXTURES / "hopper_jpg.tif")
    assert conf.compare_to_reading(ref, ref.image.copy()) is None
    arr = np.asarray(ref.image).copy()
    arr[3, 4, 1] ^= 1
    assert "pixels" in conf.compare_to_reading(ref, Image.fromarray(arr, ref.image.mode))[0]
    assert "mode" in conf.compare_to_reading(ref, ref.image.convert("RGBA"))[0]


def test_checker_sees_dropped_metadata_and_untyped_errors(tmp_path):
    src = tmp_path / "src" / "color_snakes.png"
    src.parent.mkdir()
    src.write_bytes((FIXTURES / "color_snakes.png").read_bytes())
    assert "xmp" in conf.Reading(src).meta
    tric = tmp_path / "color_snakes.png.tric"
    tric.write_bytes(b"TRIC")  # exists: the CLI wrote something
    out = tmp_path / "out"
    out.mkdir()
    Image.open(src).save(out / "color_snakes.png")  # same pixels, but Pillow's writer drops the XMP
    lost = conf.check_cli_file(src, Path("color_snakes.png"), tric, out, {}, {}, 0, 0)
    assert lost["status"] == "LOST" and "XMP dropped" in lost["class"]
    grey = tmp_path / "src" / "Basn0g03.png"           # a chunk Pillow ignores (sBIT), dropped by its writer
    grey.write_bytes((FIXTURES / "Basn0g03.png").read_bytes())
    Image.open(grey).save(out / "Basn0g03.png")
    lost = conf.check_cli_file(grey, Path("Basn0g03.png"), tric, out, {}, {}, 0, 0)
    assert lost["status"] == "LOST" and "png:sBIT dropped" in lost["class"]
    key = str(src.resolve())
    typed = conf.check_cli_file(src, Path("color_snakes.png"), tric, out, {key: f"{src}: unsupported"}, {}, 1, 0)
    assert typed["status"] == "refused" and typed["reason"] == "FILE: unsupported"
    untyped = conf.check_cli_file(src, Path("color_snakes.png"), tric, out,
                                  {key: f"{src}: internal error (ValueError: x)"}, {}, 1, 0)
    assert untyped["status"] == "LOST"


def test_checker_sees_dropped_frames_and_changed_timing():
    import io
    from PIL import ImageSequence
    data = (FIXTURES / "dispose_bgnd.gif").read_bytes()
    assert conf.sequence_lost(data, data) is None
    frames = [f.copy() for f in ImageSequence.Iterator(Image.open(io.BytesIO(data)))]
    fewer = io.BytesIO()
    frames[0].save(fewer, format="GIF", save_all=True, append_images=frames[1:-1], loop=0)
    assert "frames" in conf.sequence_lost(data, fewer.getvalue())
    slower = io.BytesIO()
    frames[0].save(slower, format="GIF", save_all=True, append_images=frames[1:], duration=999,
                   loop=Image.open(io.BytesIO(data)).info.get("loop"))
    assert conf.sequence_lost(data, slower.getvalue()) is not None
