"""The CLI's output path: decoded names never collide, an existing file is never replaced by a racing
writer, and `verify` reads files made with a trained model."""
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
