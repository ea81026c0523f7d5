"""The command line: folders mirrored, bit-exact round trip, per-file errors, exit codes, no overwrite."""
import json
import shutil
import time

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from tricodec.cli.main import app

from conftest import FIXTURES
from helpers import same_image

runner = CliRunner()


@pytest.fixture
def photos(tmp_path):
    src = tmp_path / "photos"
    (src / "sub").mkdir(parents=True)
    shutil.copy(FIXTURES / "photo_rgb_41x34.png", src / "a.png")
    shutil.copy(FIXTURES / "photo_gray_37x29.png", src / "sub" / "b.png")
    Image.open(FIXTURES / "photo_rgb_41x34.png").convert("CMYK").save(src / "sub" / "c.tiff")
    Image.open(FIXTURES / "photo_rgb_41x34.png").save(src / "d.bmp")
    (src / "notes.txt").write_text("not an image")
    return src


def test_encode_decode_verify_tree(photos, tmp_path):
    packed, restored = tmp_path / "packed", tmp_path / "restored"
    r = runner.invoke(app, ["encode", str(photos), str(packed)])
    assert r.exit_code == 0, r.output
    assert sorted(p.relative_to(packed).as_posix() for p in packed.rglob("*.tric")) == \
        ["a.png.tric", "d.bmp.tric", "sub/b.png.tric", "sub/c.tiff.tric"]
    r = runner.invoke(app, ["decode", str(packed), str(restored)])
    assert r.exit_code == 0, r.output
    for orig, out in [("a.png", "a.png"), ("sub/b.png", "sub/b.png"), ("sub/c.tiff", "sub/c.tiff"),
                      ("d.bmp", "d.bmp.png")]:
        assert same_image(Image.open(photos / orig), Image.open(restored / out)), orig
    r = runner.invoke(app, ["verify", str(packed), str(photos)])
    assert r.exit_code == 0, r.output
    r = runner.invoke(app, ["verify", str(packed)])
    assert r.exit_code == 0, r.output


def test_single_file_and_info(tmp_path):
    out = tmp_path / "x.tric"
    r = runner.invoke(app, ["encode", str(FIXTURES / "photo_rgb_41x34.png"), str(out)])
    assert r.exit_code == 0, r.output
    r = runner.invoke(app, ["info", str(out), "--json"])
    d = json.loads(r.stdout)
    assert (d["width"], d["height"], d["mode"], d["coding"]) == (41, 34, "RGB", "model")
    r = runner.invoke(app, ["decode", str(out), str(tmp_path / "x.png")])
    assert r.exit_code == 0
    assert same_image(Image.open(tmp_path / "x.png"), Image.open(FIXTURES / "photo_rgb_41x34.png"))


def test_bad_file_fails_alone_and_exit_code(photos, tmp_path):
    (photos / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n garbage")
    packed = tmp_path / "packed"
    r = runner.invoke(app, ["encode", str(photos), str(packed)])
    assert r.exit_code == 1
    assert "broken.png" in r.output
    assert (packed / "a.png.tric").exists()
    (packed / "a.png.tric").write_bytes(b"TRIC\x01garbage")
    r = runner.invoke(app, ["decode", str(packed), str(tmp_path / "restored")])
    assert r.exit_code == 1
    assert "a.png.tric" in r.output
    assert (tmp_path / "restored" / "sub" / "b.png").exists()
    assert not list((tmp_path / "restored").rglob("*.part"))


def test_no_overwrite_without_force(tmp_path):
    out = tmp_path / "x.tric"
    out.write_bytes(b"precious")
    r = runner.invoke(app, ["encode", str(FIXTURES / "photo_rgb_41x34.png"), str(out)])
    assert r.exit_code == 1 and out.read_bytes() == b"precious"
    r = runner.invoke(app, ["encode", str(FIXTURES / "photo_rgb_41x34.png"), str(out), "--force"])
    assert r.exit_code == 0 and out.read_bytes()[:4] == b"TRIC"


def test_never_overwrites_source(tmp_path):
    src = tmp_path / "a.png"
    shutil.copy(FIXTURES / "photo_rgb_41x34.png", src)
    before = src.read_bytes()
    r = runner.invoke(app, ["encode", str(src), str(src), "--force"])
    assert r.exit_code == 1 and src.read_bytes() == before


def test_usage_errors(tmp_path):
    r = runner.invoke(app, ["encode", str(tmp_path / "missing"), str(tmp_path / "out")])
    assert r.exit_code == 2
    r = runner.invoke(app, ["encode", str(FIXTURES), str(tmp_path / "o"), "--device", "tpu"])
    assert r.exit_code == 2 and "tpu" in r.output


def test_verify_detects_pixel_mismatch(tmp_path):
    packed = tmp_path / "p"
    runner.invoke(app, ["encode", str(FIXTURES / "photo_rgb_41x34.png"), str(packed / "photo_rgb_41x34.png.tric")])
    other = tmp_path / "orig"
    other.mkdir()
    arr = np.asarray(Image.open(FIXTURES / "photo_rgb_41x34.png")).copy()
    arr[0, 0, 0] ^= 1
    Image.fromarray(arr).save(other / "photo_rgb_41x34.png")
    r = runner.invoke(app, ["verify", str(packed), str(other)])
    assert r.exit_code == 1 and "differ" in r.output


def test_encode_verify_flag(tmp_path):
    out = tmp_path / "x.tric"
    r = runner.invoke(app, ["encode", str(FIXTURES / "photo_rgb_41x34.png"), str(out), "--verify"])
    assert r.exit_code == 0 and out.exists()


def test_interrupted_run_resumes(photos, tmp_path):
    packed = tmp_path / "packed"
    r = runner.invoke(app, ["encode", str(photos), str(packed)])
    assert r.exit_code == 0
    good = packed / "a.png.tric"
    good_bytes = good.read_bytes()
    good_mtime = good.stat().st_mtime_ns
    # an interrupted run: one output missing, one left broken, a stray temporary file
    (packed / "d.bmp.tric").unlink()
    (packed / "sub" / "b.png.tric").write_bytes(good_bytes[:100])
    (packed / ".a.png.tric.x1y2.part").write_bytes(b"half")
    r = runner.invoke(app, ["encode", str(photos), str(packed)])
    assert r.exit_code == 1  # without --resume existing outputs are never overwritten
    r = runner.invoke(app, ["encode", str(photos), str(packed), "--resume"])
    assert r.exit_code == 0, r.output
    assert good.stat().st_mtime_ns == good_mtime  # verified output skipped, not rewritten
    r = runner.invoke(app, ["verify", str(packed), str(photos)])
    assert r.exit_code == 0, r.output


def test_metadata_round_trip_through_cli(tmp_path):
    from PIL import ImageCms, PngImagePlugin

    icc = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    exif = Image.Exif()
    exif[0x010F] = "TricCam"
    text = PngImagePlugin.PngInfo()
    text.add_text("Title", "caf\u00e9")
    src = tmp_path / "m.png"
    Image.open(FIXTURES / "photo_rgb_41x34.png").save(src, pnginfo=text, icc_profile=icc, exif=exif.tobytes())
    runner.invoke(app, ["encode", str(src), str(tmp_path / "m.tric")])
    r = runner.invoke(app, ["info", str(tmp_path / "m.tric"), "--json"])
    assert set(json.loads(r.stdout)["metadata"]) == {"icc", "exif", "text:Title"}
    r = runner.invoke(app, ["decode", str(tmp_path / "m.tric"), str(tmp_path / "out.png")])
    assert r.exit_code == 0
    out = Image.open(tmp_path / "out.png")
    out.load()
    assert out.info["icc_profile"] == icc
    assert out.getexif()[0x010F] == "TricCam"
    assert out.text["Title"] == "caf\u00e9"
    assert same_image(out, Image.open(src))


def test_json_summary_filters_and_jobs(photos, tmp_path):
    packed = tmp_path / "packed"
    r = runner.invoke(app, ["encode", str(photos), str(packed), "--json", "--jobs", "3",
                            "--include", "*.png", "--include", "sub/*", "--exclude", "sub/c.*"])
    assert r.exit_code == 0, r.output
    summary = json.loads(r.stdout)
    assert (summary["files"], summary["ok"], summary["failed"]) == (2, 2, 0)
    assert summary["raw_bytes"] == 41 * 34 * 3 + 37 * 29 and summary["coded_bytes"] > 0
    assert sorted(p.name for p in packed.rglob("*.tric")) == ["a.png.tric", "b.png.tric"]


def test_stdin_stdout(tmp_path):
    src = (FIXTURES / "photo_rgb_41x34.png").read_bytes()
    r = runner.invoke(app, ["encode", "-", "-"], input=src)
    assert r.exit_code == 0
    data = r.stdout_bytes
    assert data[:4] == b"TRIC"
    r = runner.invoke(app, ["decode", "-", "-"], input=data)
    assert r.exit_code == 0
    import io

    assert same_image(Image.open(io.BytesIO(r.stdout_bytes)), Image.open(FIXTURES / "photo_rgb_41x34.png"))


def test_help_shows_examples_and_exit_codes():
    r = runner.invoke(app, ["--help"])
    assert r.exit_code == 0 and "tricodec encode photos/ packed/" in r.output and "Exit codes" in r.output


def test_quiet_prints_nothing_on_success(tmp_path):
    r = runner.invoke(app, ["encode", str(FIXTURES), str(tmp_path / "o"), "--quiet"])
    assert r.exit_code == 0 and r.output == ""


def test_fsspec_memory_urls(tmp_path):
    fsspec = pytest.importorskip("fsspec")
    fs = fsspec.filesystem("memory")
    fs.pipe("/cli-in/a.png", (FIXTURES / "photo_rgb_41x34.png").read_bytes())
    fs.pipe("/cli-in/sub/b.png", (FIXTURES / "photo_gray_37x29.png").read_bytes())
    r = runner.invoke(app, ["encode", "memory://cli-in", "memory://cli-packed", "--json"])
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout)["ok"] == 2
    local = tmp_path / "local"
    runner.invoke(app, ["encode", str(FIXTURES / "photo_rgb_41x34.png"), str(local)])
    assert fs.cat("/cli-packed/a.png.tric") == local.read_bytes()
    r = runner.invoke(app, ["decode", "memory://cli-packed", str(tmp_path / "restored")])
    assert r.exit_code == 0, r.output
    assert same_image(Image.open(tmp_path / "restored" / "sub" / "b.png"), Image.open(FIXTURES / "photo_gray_37x29.png"))


def test_ray_matches_single_machine(photos, tmp_path):
    ray = pytest.importorskip("ray")
    r = runner.invoke(app, ["encode", str(photos), str(tmp_path / "local")])
    assert r.exit_code == 0
    try:
        r = runner.invoke(app, ["encode", str(photos), str(tmp_path / "ray"), "--ray", "--device", "cpu"])
    finally:
        ray.shutdown()
    assert r.exit_code == 0, r.output
    local = {p.relative_to(tmp_path / "local"): p.read_bytes() for p in (tmp_path / "local").rglob("*.tric")}
    onray = {p.relative_to(tmp_path / "ray"): p.read_bytes() for p in (tmp_path / "ray").rglob("*.tric")}
    assert local == onray and len(local) == 4


def test_decoded_image_keeps_text_when_encoded_again(tmp_path):
    from PIL import PngImagePlugin

    import tricodec

    text = PngImagePlugin.PngInfo()
    text.add_text("Title", "t")
    src = tmp_path / "t.png"
    Image.open(FIXTURES / "photo_gray_37x29.png").save(src, pnginfo=text)
    once = tricodec.encode(Image.open(src))
    assert tricodec.encode(tricodec.decode(once)) == once


def test_bench_prints_table_and_writes_plot_and_csv(tmp_path):
    pytest.importorskip("matplotlib")
    r = runner.invoke(app, ["bench", str(FIXTURES), "--repeat", "1", "--jxl-efforts", "1",
                            "--csv", str(tmp_path / "b.csv"), "--plot", str(tmp_path / "b.png")])
    assert r.exit_code == 0, r.output
    assert "| tricodec-cpu |" in r.stdout and "| png |" in r.stdout
    assert (tmp_path / "b.csv").read_text().count("\n") >= 4
    assert Image.open(tmp_path / "b.png").size[0] > 100


@pytest.mark.parametrize("kind", ["wavefront", "context", "block-scale", "fused"])
def test_train_then_encode_and_decode_with_the_weights(photos, tmp_path, kind):
    weights = tmp_path / "mine.npz"
    extra = {"block-scale": ["--tables", "4", "--iterations", "2"], "fused": []}.get(kind, ["--grain", "1"])
    r = runner.invoke(app, ["train", str(photos), "--out", str(weights), "--name", "mine", "--kind", kind,
                            *extra, "--val", str(FIXTURES)])
    assert r.exit_code == 0, r.output
    assert "validation bpsp" in r.output
    packed = tmp_path / "packed"
    r = runner.invoke(app, ["encode", str(FIXTURES), str(packed), "--model", str(weights)])
    assert r.exit_code == 0, r.output
    info = json.loads(runner.invoke(app, ["info", str(packed / "photo_rgb_41x34.png.tric"), "--json"]).stdout)
    assert info["model"] == "mine"
    r = runner.invoke(app, ["decode", str(packed), str(tmp_path / "no-weights")])
    assert r.exit_code == 1 and "mine" in r.output  # refused without the weights, with a clear message
    r = runner.invoke(app, ["decode", str(packed), str(tmp_path / "back"), "--model", str(weights)])
    assert r.exit_code == 0, r.output
    assert same_image(Image.open(tmp_path / "back" / "photo_rgb_41x34.png"), Image.open(FIXTURES / "photo_rgb_41x34.png"))


def test_train_context_resumes_from_its_checkpoint(photos, tmp_path):
    ckpt = tmp_path / "counts.npz"
    args = ["train", str(photos), "--name", "mine", "--base", "none", "--checkpoint", str(ckpt)]
    r = runner.invoke(app, args + ["--out", str(tmp_path / "a.npz")])
    assert r.exit_code == 0, r.output
    assert ckpt.exists()
    r = runner.invoke(app, args + ["--out", str(tmp_path / "b.npz")])   # resumed: nothing left to count
    assert r.exit_code == 0, r.output
    assert (tmp_path / "a.npz").read_bytes() == (tmp_path / "b.npz").read_bytes()
    r = runner.invoke(app, args + ["--out", str(tmp_path / "c.npz"), "--grain", "2"])
    assert r.exit_code == 2 and "other options" in r.output


def test_concurrent_workers_write_the_same_files(photos, tmp_path):
    outs = []
    for workers in ("1", "3"):
        out = tmp_path / f"w{workers}"
        r = runner.invoke(app, ["encode", str(photos), str(out), "--workers", workers, "--json"])
        assert r.exit_code == 0, r.output
        assert json.loads(r.stdout)["ok"] == 4
        outs.append({p.relative_to(out): p.read_bytes() for p in out.rglob("*.tric")})
    assert outs[0] == outs[1] and len(outs[0]) == 4


@pytest.mark.parametrize("weight,expect", [(1, 3), (10 ** 12, 1)])
def test_pipeline_codes_big_images_one_at_a_time(tmp_path, weight, expect):
    import threading
    from tricodec.cli.main import run_pipeline

    lock, now, peak = threading.Lock(), [0], [0]

    def compute(src, item):
        with lock:
            now[0] += 1
            peak[0] = max(peak[0], now[0])
        time.sleep(0.05)
        with lock:
            now[0] -= 1
        return b"", 1, 1

    pairs = [(tmp_path / f"{i}", tmp_path / f"o{i}") for i in range(9)]
    run_pipeline(pairs, lambda s, d: s, compute, lambda s, d, r: None, jobs=2, quiet=True, as_json=False,
                 verb="x", workers=3, weight=lambda item: weight)
    assert peak[0] == expect


def test_gpu_backends_code_files_in_batches_with_failures_isolated(tmp_path):
    """On a GPU backend (here the kernels under the interpreter) files are coded in batches: the same
    bytes as the CPU, and one corrupted file in a batch fails alone."""
    src = tmp_path / "src"
    src.mkdir()
    for i, (h, w, c) in enumerate([(5, 6, 3), (4, 7, 1), (3, 5, 3)]):
        arr = np.random.default_rng(i).integers(90, 110, (h, w, c), dtype=np.uint8)
        Image.fromarray(arr.squeeze()).save(src / f"{i}.png")
    for device, out in (("cpu", tmp_path / "cpu"), ("triton", tmp_path / "tri")):
        r = runner.invoke(app, ["encode", str(src), str(out), "--device", device, "--json"])
        assert r.exit_code == 0, r.output
    assert all((tmp_path / "cpu" / f"{i}.png.tric").read_bytes() == (tmp_path / "tri" / f"{i}.png.tric").read_bytes()
               for i in range(3))
    bad = bytearray((tmp_path / "tri" / "1.png.tric").read_bytes())
    bad[-2] ^= 0x40
    (tmp_path / "tri" / "1.png.tric").write_bytes(bytes(bad))
    r = runner.invoke(app, ["decode", str(tmp_path / "tri"), str(tmp_path / "back"), "--device", "triton",
                            "--json"])
    assert r.exit_code == 1
    summary = json.loads(r.stdout)
    assert summary["ok"] == 2 and len(summary["failures"]) == 1 and "1.png.tric" in json.dumps(summary["failures"])
    for i in (0, 2):
        assert same_image(Image.open(tmp_path / "back" / f"{i}.png"), Image.open(src / f"{i}.png"))


def test_atomic_write_leaves_old_output_or_nothing(tmp_path):
    from tricodec.cli.main import write_atomic

    target = tmp_path / "out.tric"
    target.write_bytes(b"previous complete file")

    def crash(p):
        p.write_bytes(b"half of a new")
        raise KeyboardInterrupt  # an interruption in the middle of writing

    with pytest.raises(KeyboardInterrupt):
        write_atomic(target, crash, force=True)
    assert target.read_bytes() == b"previous complete file"
    assert list(tmp_path.iterdir()) == [target]  # no temporary file left behind
    fresh = tmp_path / "new.tric"
    with pytest.raises(KeyboardInterrupt):
        write_atomic(fresh, crash, force=False)
    assert not fresh.exists()
