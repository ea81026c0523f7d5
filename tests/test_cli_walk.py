"""The folder walk: every file Pillow can open is encoded, whatever its suffix (or none); every other file
of the tree is listed with its reason, in the text summary and in --json, never skipped silently."""
import json

import numpy as np
from PIL import Image
from typer.testing import CliRunner

from tricodec.cli.main import app

from helpers import same_image

runner = CliRunner()


def _tree(root):
    root.mkdir()
    image = Image.fromarray(np.random.default_rng(0).integers(0, 256, (8, 9, 3), dtype=np.uint8))
    image.save(root / "a.dds")                       # suffixes outside the old fixed list
    image.convert("1").save(root / "b.xbm")
    image.convert("1").save(root / "c.msp")
    image.save(root / "no_suffix", format="PNG")     # no suffix: Pillow's probe decides
    (root / "notes.txt").write_text("not an image")
    (root / "x.pdf").write_bytes(b"%PDF-1.4 a format Pillow only writes")
    (root / "old.tric").write_bytes(b"TRIC")
    return root


def test_encode_walks_by_what_pillow_opens_and_lists_the_rest(tmp_path):
    src = _tree(tmp_path / "src")
    r = runner.invoke(app, ["encode", str(src), str(tmp_path / "packed"), "--json"])
    assert r.exit_code == 0, r.output
    summary = json.loads(r.stdout)
    assert (summary["files"], summary["ok"]) == (4, 4)
    assert {(e["file"].split("/")[-1], e["reason"].split(" (")[0]) for e in summary["ignored"]} == {
        ("notes.txt", "not an image Pillow can open"), ("x.pdf", "not an image Pillow can open"),
        ("old.tric", "already a .tric file")}
    assert sorted(p.name for p in (tmp_path / "packed").iterdir()) == \
        ["a.dds.tric", "b.xbm.tric", "c.msp.tric", "no_suffix.tric"]
    r = runner.invoke(app, ["decode", str(tmp_path / "packed"), str(tmp_path / "back")])
    assert r.exit_code == 0, r.output
    for name in ("a.dds", "b.xbm", "c.msp"):
        assert same_image(Image.open(tmp_path / "back" / (name + ".png")), Image.open(src / name)), name
    assert same_image(Image.open(tmp_path / "back" / "no_suffix.png"), Image.open(src / "no_suffix"))


def test_text_summary_names_ignored_files(tmp_path):
    src = _tree(tmp_path / "src")
    r = runner.invoke(app, ["encode", str(src), str(tmp_path / "packed")])
    assert r.exit_code == 0, r.output
    assert "3 ignored" in r.output and "notes.txt (not an image" in r.output and "old.tric (already" in r.output


def test_decode_lists_files_that_are_not_tric(tmp_path):
    src = _tree(tmp_path / "src")
    r = runner.invoke(app, ["decode", str(src), str(tmp_path / "out"), "--json"])
    assert r.exit_code == 1  # old.tric is no valid file: a failure, not a skip
    summary = json.loads(r.stdout)
    assert sorted(e["file"].split("/")[-1] for e in summary["ignored"]) == \
        ["a.dds", "b.xbm", "c.msp", "no_suffix", "notes.txt", "x.pdf"]
