"""The CLI's output path: decoded names never collide, an existing file is never replaced by a racing
writer, and `verify` reads files made with a trained model."""
import io
import json
import shutil

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

import tricodec
from tricodec.cli.main import app, write_atomic

from conftest import FIXTURES
from helpers import same_image

runner = CliRunner()


def _pixels(seed: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (5, 6, 3), dtype=np.uint8)


def _packed(folder, names_and_images) -> dict:
    folder.mkdir(parents=True, exist_ok=True)
    for name, image in names_and_images.items():
        (folder / name).write_bytes(tricodec.encode(image))
    return names_and_images


def test_decoded_names_keep_the_source_name(tmp_path):
    images = _packed(tmp_path / "p", {
        "a.png.tric": Image.fromarray(_pixels(0)), "a.jpg.tric": Image.fromarray(_pixels(1)),
        "a.tif.tric": Image.fromarray(_pixels(2)), "c.tif.tric": Image.fromarray(_pixels(3)).convert("CMYK"),
        "x.im1.tric": Image.fromarray(_pixels(4))})
    r = runner.invoke(app, ["decode", str(tmp_path / "p"), str(tmp_path / "r"), "--json"])
    assert r.exit_code == 0, r.output
    expect = {"a.png.tric": "a.png", "a.jpg.tric": "a.jpg.png", "a.tif.tric": "a.tif.png", "c.tif.tric": "c.tif",
              "x.im1.tric": "x.im1.png"}
    assert sorted(p.name for p in (tmp_path / "r").iterdir()) == sorted(expect.values())
    for src, out in expect.items():
        assert same_image(Image.open(tmp_path / "r" / out), images[src]), src


@pytest.mark.parametrize("force", [False, True])
@pytest.mark.parametrize("names", [("a.png.tric", "a.tric"), ("x.im1.tric", "x.im1.png.tric")])
def test_two_sources_for_one_output_both_fail(tmp_path, force, names):
    _packed(tmp_path / "p", {names[0]: _pixels(0), names[1]: _pixels(1), "other.png.tric": _pixels(2)})
    r = runner.invoke(app, ["decode", str(tmp_path / "p"), str(tmp_path / "r"), "--json"] + (["--force"] if force else []))
    assert r.exit_code == 1
    summary = json.loads(r.stdout)
    assert summary["ok"] == 1 and sorted(f["file"].split("/")[-1] for f in summary["failures"]) == sorted(names)
    assert sorted(p.name for p in (tmp_path / "r").iterdir()) == ["other.png"]  # nothing half-chosen


def test_decode_keeps_an_existing_output(tmp_path):
    _packed(tmp_path / "p", {"a.png.tric": _pixels(0)})
    (tmp_path / "r").mkdir()
    (tmp_path / "r" / "a.png").write_bytes(b"precious")
    r = runner.invoke(app, ["decode", str(tmp_path / "p"), str(tmp_path / "r")])
    assert r.exit_code == 1 and (tmp_path / "r" / "a.png").read_bytes() == b"precious"


def test_racing_writer_cannot_replace_a_file_just_written(tmp_path):
    """Another writer creates the name between this writer's existence check and its move into place
    (simulated deterministically by writing it from inside the first write): the first must fail."""
    target = tmp_path / "a.png"

    def first(p):
        p.write_bytes(b"first")
        write_atomic(target, lambda q: q.write_bytes(b"second"), force=False)

    with pytest.raises(FileExistsError):
        write_atomic(target, first, force=False)
    assert target.read_bytes() == b"second"
    assert [p.name for p in tmp_path.iterdir()] == ["a.png"]  # no temporary file left behind


def test_verify_reads_files_of_a_trained_model(tmp_path):
    photos = tmp_path / "photos"
    photos.mkdir()
    shutil.copy(FIXTURES / "photo_rgb_41x34.png", photos / "a.png")
    weights = tmp_path / "mine.npz"
    r = runner.invoke(app, ["train", str(photos), "--out", str(weights), "--name", "mine", "--kind", "block-scale",
                            "--tables", "4", "--iterations", "1", "--crops", "1", "--quiet"])
    assert r.exit_code == 0, r.output
    r = runner.invoke(app, ["encode", str(photos), str(tmp_path / "packed"), "--model", str(weights)])
    assert r.exit_code == 0, r.output
    r = runner.invoke(app, ["verify", str(tmp_path / "packed"), str(photos)])
    assert r.exit_code == 1 and "mine" in r.output
    r = runner.invoke(app, ["verify", str(tmp_path / "packed"), str(photos), "--model", str(weights)])
    assert r.exit_code == 0, r.output


def test_lossy_output_format_is_refused(tmp_path):
    _packed(tmp_path, {"a.png.tric": _pixels(0)})
    for name in ("a.jpg", "a.webp"):
        r = runner.invoke(app, ["decode", str(tmp_path / "a.png.tric"), str(tmp_path / name)])
        assert r.exit_code == 1 and "exactly" in r.output and not (tmp_path / name).exists(), name
    r = runner.invoke(app, ["decode", str(tmp_path / "a.png.tric"), str(tmp_path / "a.bmp")])
    assert r.exit_code == 0 and np.array_equal(np.asarray(Image.open(tmp_path / "a.bmp")), _pixels(0))


# ---- fast decode output: --png-level, --format (issue #14, item 3) ----

def _decode(tmp_path, tric, out_name, *args):
    out = tmp_path / "o" / out_name
    r = runner.invoke(app, ["decode", str(tric), str(out), *args])
    return r, out


def _photo(seed: int = 3, h: int = 48, w: int = 64) -> Image.Image:
    y, x = np.mgrid[0:h, 0:w]
    base = np.stack([(x * 3 + y) % 256, (y * 5) % 256, (x * y) % 256], axis=2)
    noise = np.random.default_rng(seed).integers(0, 8, (h, w, 3))
    return Image.fromarray(((base + noise) % 256).astype(np.uint8))


def test_png_level_is_honoured_with_identical_pixels(tmp_path):
    image = _photo()
    (tmp_path / "a.png.tric").write_bytes(tricodec.encode(image))
    sizes = {}
    for level in ("0", "1", "9"):
        r, out = _decode(tmp_path, tmp_path / "a.png.tric", f"a{level}.png", "--png-level", level)
        assert r.exit_code == 0, r.output
        back = Image.open(out)
        assert back.mode == "RGB" and back.tobytes() == image.tobytes()
        sizes[level] = out.stat().st_size
    assert sizes["9"] < sizes["1"] < sizes["0"]
    r, _ = _decode(tmp_path, tmp_path / "a.png.tric", "bad.png", "--png-level", "10")
    assert r.exit_code == 2


def test_default_png_output_is_fast_level_and_keeps_metadata(tmp_path):
    """The default (level 1) goes through tricodec's own PNG writer for L/LA/RGB/RGBA: the same chunks
    as Pillow's writer at level 9."""
    from PIL import PngImagePlugin
    info = PngImagePlugin.PngInfo()
    info.add_text("Title", "fast")
    info.add(b"gAMA", (45455).to_bytes(4, "big"))
    for mode in ("L", "LA", "RGB", "RGBA"):
        image = _photo().convert(mode)
        buf = io.BytesIO()
        kw = {"transparency": 7} if mode == "L" else {"transparency": (1, 2, 3)} if mode == "RGB" else {}
        image.save(buf, format="PNG", pnginfo=info, dpi=(300, 300), icc_profile=b"\0" * 132, **kw)
        (tmp_path / f"{mode}.png.tric").write_bytes(tricodec.encode(Image.open(io.BytesIO(buf.getvalue()))))
        outs = {}
        for level in ("1", "9"):
            r, outs[level] = _decode(tmp_path, tmp_path / f"{mode}.png.tric", f"{mode}{level}.png", "--png-level", level)
            assert r.exit_code == 0, r.output
        fast, slow = Image.open(outs["1"]), Image.open(outs["9"])
        assert fast.mode == slow.mode == mode and fast.tobytes() == slow.tobytes() == image.tobytes()
        fast.load(), slow.load()
        assert fast.info == slow.info and fast.text == slow.text == {"Title": "fast"}, mode


@pytest.mark.parametrize("fmt,suffix", [("png", ".png"), ("tiff", ".tiff"), ("ppm", ".ppm"), ("npy", ".npy")])
def test_each_format_round_trips_rgb_exactly(tmp_path, fmt, suffix):
    image = _photo()
    _packed(tmp_path / "p", {"a.jpg.tric": image})
    r = runner.invoke(app, ["decode", str(tmp_path / "p"), str(tmp_path / "r"), "--format", fmt])
    assert r.exit_code == 0, r.output
    (out,) = list((tmp_path / "r").iterdir())
    assert out.name == "a.jpg" + suffix
    arr = np.load(out, allow_pickle=False) if fmt == "npy" else np.asarray(Image.open(out))
    assert arr.dtype == np.uint8 and np.array_equal(arr, np.asarray(image))


def test_npy_output_is_exact_for_every_depth(tmp_path):
    images = {"g.tric": _photo().convert("L"), "ga.tric": _photo().convert("LA"), "c.tric": _photo().convert("RGBA"),
              "g16.tric": np.random.default_rng(1).integers(0, 65536, (9, 7), dtype=np.uint16),
              "c16.tric": np.random.default_rng(2).integers(0, 65536, (9, 7, 3), dtype=np.uint16),
              "a16.tric": np.random.default_rng(3).integers(0, 65536, (9, 7, 4), dtype=np.uint16)}
    _packed(tmp_path / "p", images)
    r = runner.invoke(app, ["decode", str(tmp_path / "p"), str(tmp_path / "r"), "--format", "npy"])
    assert r.exit_code == 0, r.output
    for name, image in images.items():
        got = np.load(tmp_path / "r" / (name[:-5] + ".npy"), allow_pickle=False)
        want = np.asarray(image)
        assert got.dtype == want.dtype and np.array_equal(got, want), name
        assert np.array_equal(got, tricodec.decode_array((tmp_path / "p" / name).read_bytes()))


def test_16bit_ppm_output_is_exact_and_alpha_is_refused(tmp_path):
    from tricodec.pixels import read_image
    grey = np.random.default_rng(4).integers(0, 65536, (5, 6), dtype=np.uint16)
    rgb = np.random.default_rng(5).integers(0, 65536, (5, 6, 3), dtype=np.uint16)
    rgba = np.random.default_rng(6).integers(0, 65536, (5, 6, 4), dtype=np.uint16)
    _packed(tmp_path / "p", {"g.tric": grey, "c.tric": rgb, "a.tric": rgba})
    r = runner.invoke(app, ["decode", str(tmp_path / "p"), str(tmp_path / "r"), "--format", "ppm"])
    assert r.exit_code == 1 and "alpha" in r.output and not (tmp_path / "r" / "a.ppm").exists()
    assert np.array_equal(np.asarray(read_image(tmp_path / "r" / "g.ppm")), grey)
    assert np.array_equal(read_image(tmp_path / "r" / "c.ppm"), rgb)


@pytest.mark.parametrize("fmt,image,reason", [
    ("ppm", lambda: _photo().convert("RGBA"), "RGBA"),
    ("npy", lambda: _photo().convert("P"), "palette"),
    ("npy", lambda: _photo().convert("CMYK"), "mode"),
    ("ppm", lambda: _photo().convert("P"), "mode P"),
    ("png", lambda: _photo().convert("CMYK"), "CMYK"),
    ("tiff", lambda: np.zeros((3, 4, 3), np.uint16), "16-bit colour"),
], ids=["ppm-alpha", "npy-palette", "npy-cmyk", "ppm-palette", "png-cmyk", "tiff-deep"])
def test_formats_that_cannot_hold_the_image_are_refused(tmp_path, fmt, image, reason):
    _packed(tmp_path / "p", {"x.tric": image()})
    r = runner.invoke(app, ["decode", str(tmp_path / "p"), str(tmp_path / "r"), "--format", fmt])
    assert r.exit_code == 1 and reason in r.output, r.output
    assert not (tmp_path / "r").exists() or not any((tmp_path / "r").iterdir())


def test_formats_without_metadata_refuse_an_image_that_has_some(tmp_path):
    buf = io.BytesIO()
    _photo().save(buf, format="PNG", icc_profile=b"\0" * 132)
    _packed(tmp_path / "p", {"i.png.tric": Image.open(io.BytesIO(buf.getvalue()))})
    for fmt in ("npy", "ppm"):
        r = runner.invoke(app, ["decode", str(tmp_path / "p"), str(tmp_path / fmt), "--format", fmt])
        assert r.exit_code == 1 and "icc" in r.output, fmt
        assert not [p for p in (tmp_path / fmt).rglob("*") if p.is_file()], fmt   # nothing written


def test_format_and_output_suffix_must_agree(tmp_path):
    _packed(tmp_path, {"a.png.tric": _photo()})
    r, out = _decode(tmp_path, tmp_path / "a.png.tric", "a.png", "--format", "npy")
    assert r.exit_code == 2 and "names another format" in r.output and not out.exists()
    r = runner.invoke(app, ["decode", str(tmp_path / "a.png.tric"), str(tmp_path / "x"), "--format", "gif"])
    assert r.exit_code == 2 and "--format" in r.output
    r, out = _decode(tmp_path, tmp_path / "a.png.tric", "a.tif", "--format", "tiff")
    assert r.exit_code == 0 and Image.open(out).format == "TIFF"


def test_writing_leaves_the_image_and_its_metadata_as_they_were(tmp_path):
    """write_image hides info from Pillow's writers while they run; every path gives it back."""
    from tricodec.pixels import write_image
    image = _photo()
    image.info = {"gamma": 0.45455, "dpi": (300.0, 300.0)}
    for level in (1, 9, None):
        write_image(image, io.BytesIO(), ".png", png_level=level)
        assert image.info == {"gamma": 0.45455, "dpi": (300.0, 300.0)}, level


def test_output_options_are_refused_where_they_would_be_ignored(tmp_path):
    """The Ray and fsspec paths write PNG/TIFF their own way: --format/--png-level there is a usage error."""
    _packed(tmp_path / "p", {"a.png.tric": _photo()})
    for extra in (["--format", "npy"], ["--png-level", "9"]):
        r = runner.invoke(app, ["decode", str(tmp_path / "p"), "memory://out", *extra])
        assert r.exit_code == 2 and "not supported with --ray or URLs" in r.output, extra
