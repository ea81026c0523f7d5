"""tricodec.ray_pipeline: output naming (as the CLI's), the per-file worker (in-process, on local paths
and memory:// URLs), and the whole pipeline on a small local Ray (skipped when Ray is not installed)."""
import shutil
import sys
import uuid
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import tricodec
from tricodec import ray_pipeline as rp
from tricodec import remote
from tricodec.pixels import read_image

from conftest import FIXTURES
from helpers import photo_like, same_image


def _tree(root: Path) -> Path:
    """src/ with images at two depths, a misnamed one, one that is not an image, and a text file."""
    src = root / "src"
    (src / "sub" / "deeper").mkdir(parents=True)
    shutil.copy(FIXTURES / "photo_rgb_41x34.png", src / "rgb.png")
    shutil.copy(FIXTURES / "photo_gray_37x29.png", src / "sub" / "gray.png")
    shutil.copy(FIXTURES / "photo_rgb_41x34.png", src / "sub" / "deeper" / "photo.jpg")  # a PNG named .jpg
    Image.fromarray(photo_like(12, 10, 4, seed=5), "RGBA").convert("CMYK").save(src / "sub" / "cmyk.tiff")
    (src / "sub" / "broken.png").write_bytes(b"not a png")
    (src / "notes.txt").write_text("ignored")
    return src


def _sources(src: Path) -> dict:
    return {p.relative_to(src).as_posix(): p for p in src.rglob("*")
            if p.is_file() and p.suffix != ".txt" and p.name != "broken.png"}


# ---- naming, as the CLI's ----

def test_image_suffixes_match_the_cli():
    cli = pytest.importorskip("tricodec.cli.main")
    assert rp.IMAGE_SUFFIXES == cli.IMAGE_SUFFIXES and rp.TRIC_SUFFIX == cli.SUFFIX


def test_decoded_names():
    rgb, cmyk = Image.new("RGB", (1, 1)), Image.new("CMYK", (1, 1))
    assert rp.decoded_name("a.png.tric", rgb) == "a.png"
    assert rp.decoded_name("a.JPG.tric", rgb) == "a.png"
    assert rp.decoded_name("a.png.tric", cmyk) == "a.tiff"
    assert rp.decoded_name("a.tric", rgb) == "a.png"
    assert rp.decoded_name("a.b.tric", rgb) == "a.b.png"
    assert rp.decoded_name("a.tric", np.zeros((1, 1, 3), np.uint16)) == "a.png"


def test_plan_mirrors_the_tree(tmp_path):
    src = _tree(tmp_path)
    out = str(tmp_path / "out")
    plan = rp.plan(str(src), out, "encode")
    assert [(Path(s).relative_to(src).as_posix(), Path(d).relative_to(out).as_posix(), r) for s, d, r in plan] == [
        ("rgb.png", "rgb.png.tric", False),
        ("sub/broken.png", "sub/broken.png.tric", False),
        ("sub/cmyk.tiff", "sub/cmyk.tiff.tric", False),
        ("sub/deeper/photo.jpg", "sub/deeper/photo.jpg.tric", False),
        ("sub/gray.png", "sub/gray.png.tric", False)]
    # a single file: to dst itself, or into dst when it is a folder or ends with "/"
    one = str(src / "rgb.png")
    assert rp.plan(one, str(tmp_path / "x.tric"), "encode") == [(one, str(tmp_path / "x.tric"), False)]
    assert rp.plan(one, str(tmp_path) + "/", "encode") == [(one, str(tmp_path / "rgb.png.tric"), False)]
    assert rp.plan(one, str(tmp_path), "decode") == [(one, str(tmp_path / "rgb.png"), True)]
    with pytest.raises(FileNotFoundError):
        rp.plan(str(tmp_path / "missing"), out, "encode")


# ---- the worker, in this process ----

@pytest.fixture
def mem():
    fsspec = pytest.importorskip("fsspec")
    root = f"memory://ray-{uuid.uuid4().hex[:8]}"
    yield root
    fs = fsspec.filesystem("memory")
    if fs.exists(root):
        fs.rm(root, recursive=True)


def _call(worker, plan):
    return worker({"src": [s for s, _, _ in plan], "dst": [d for _, d, _ in plan], "rename": [r for _, _, r in plan]})


def test_worker_on_urls_round_trip(tmp_path, mem):
    src = _tree(tmp_path)
    for rel, p in list(_sources(src).items()) + [("sub/broken.png", src / "sub" / "broken.png")]:
        remote.write_bytes_atomic(f"{mem}/src/{rel}", p.read_bytes(), force=False)
    plan = rp.plan(f"{mem}/src", f"{mem}/out", "encode")
    rows = _call(rp.CodecWorker("encode", "cpu", None, False), plan)
    errors = [e for e in rows["error"] if e]
    assert len(errors) == 1 and errors[0].startswith(f"{mem}/src/sub/broken.png: ")
    for rel, p in _sources(src).items():
        expected = tricodec.encode(read_image(p), device="cpu")
        assert remote.read_bytes(f"{mem}/out/{rel}.tric") == expected, rel
    rows = _call(rp.CodecWorker("decode", "cpu", None, False), rp.plan(f"{mem}/out", f"{mem}/back", "decode"))
    assert not any(rows["error"])
    assert sorted(d.split("/back/")[1] for d in rows["dst"]) == [
        "rgb.png", "sub/cmyk.tiff", "sub/deeper/photo.png", "sub/gray.png"]
    for d in rows["dst"]:
        rel = d.split("/back/")[1]
        orig = {"sub/deeper/photo.png": "sub/deeper/photo.jpg"}.get(rel, rel)
        tmp = tmp_path / ("back" + Path(d).suffix)
        tmp.write_bytes(remote.read_bytes(d))
        assert same_image(read_image(tmp), read_image(src / orig)), rel


def test_worker_16bit_png_over_url_keeps_full_depth(tmp_path, mem):
    import png

    arr = photo_like(6, 7, 3, seed=6).astype(np.uint16) * 257 + 3
    path = tmp_path / "deep.png"
    with open(path, "wb") as f:
        png.Writer(width=7, height=6, bitdepth=16, greyscale=False).write(f, arr.reshape(6, -1).tolist())
    remote.write_bytes_atomic(f"{mem}/deep.png", path.read_bytes(), force=False)
    rows = _call(rp.CodecWorker("encode", "cpu", None, False), [(f"{mem}/deep.png", f"{mem}/deep.png.tric", False)])
    assert rows["error"] == [""]
    assert np.array_equal(tricodec.decode_array(remote.read_bytes(f"{mem}/deep.png.tric")), arr)


def test_worker_refuses_to_overwrite_the_source(tmp_path):
    p = tmp_path / "a.png"
    shutil.copy(FIXTURES / "photo_gray_37x29.png", p)
    rows = _call(rp.CodecWorker("encode", "cpu", None, True), [(str(p), str(p), False)])
    assert "overwrite the source" in rows["error"][0]
    assert p.read_bytes() == (FIXTURES / "photo_gray_37x29.png").read_bytes()


class _FakeRay:
    def __init__(self, **resources):
        self.resources = resources

    def cluster_resources(self):
        return self.resources


def test_actor_pool_follows_the_device():
    gpu_cluster, cpu_cluster = _FakeRay(CPU=32.0, GPU=4.0), _FakeRay(CPU=8.0)
    assert rp._actors("auto", gpu_cluster, None, 100) == ("cuda", {"num_gpus": 1}, 4)
    assert rp._actors("cuda", gpu_cluster, None, 2) == ("cuda", {"num_gpus": 1}, 2)
    assert rp._actors("cpu", gpu_cluster, None, 100) == ("cpu", {"num_cpus": 1}, 32)
    assert rp._actors("auto", cpu_cluster, None, 100) == ("cpu", {"num_cpus": 1}, 8)
    assert rp._actors("auto", cpu_cluster, 3, 100) == ("cpu", {"num_cpus": 1}, 3)
    with pytest.raises(tricodec.TricodecError, match="no GPU"):
        rp._actors("cuda", cpu_cluster, None, 10)


def test_missing_ray_is_a_clear_error(tmp_path, monkeypatch):
    src = _tree(tmp_path)
    monkeypatch.setitem(sys.modules, "ray", None)
    with pytest.raises(tricodec.TricodecError, match=r"pip install 'tricodec\[ray\]'"):
        rp.encode_tree_ray(str(src), str(tmp_path / "out"), device="cpu")


# ---- the pipeline on a local Ray ----

@pytest.fixture(scope="module")
def local_ray():
    ray = pytest.importorskip("ray")
    pytest.importorskip("ray.data")
    if ray.is_initialized():  # another test's Ray: start this module's own, as configured here
        ray.shutdown()
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)
    ray.data.DataContext.get_current().enable_progress_bars = False
    yield ray
    ray.shutdown()


def test_ray_encode_decode_tree(tmp_path, local_ray):
    src = _tree(tmp_path)
    out, back = tmp_path / "out", tmp_path / "back"
    s = rp.encode_tree_ray(src, out, device="cpu")
    assert (s["files"], s["ok"]) == (5, 4)
    assert [p for p, _ in s["failed"]] == [str(src / "sub" / "broken.png")]
    assert "cannot read image" in s["failed"][0][1]
    n_raw = 0
    for rel, p in _sources(src).items():
        image = read_image(p)
        n_raw += len(tricodec.pixels.pixel_bytes(image))
        assert (out / (rel + ".tric")).read_bytes() == tricodec.encode(image, device="cpu"), rel
    assert s["bytes_in"] == n_raw
    assert s["bytes_out"] == sum(p.stat().st_size for p in out.rglob("*.tric"))
    assert not list(out.rglob("*.part"))

    again = rp.encode_tree_ray(src, out, device="cpu")  # no --force: every output exists
    assert again["ok"] == 0 and sum("exists" in m for _, m in again["failed"]) == 4

    d = rp.decode_tree_ray(out, back, device="cpu")
    assert (d["files"], d["ok"], d["failed"]) == (4, 4, [])
    assert sorted(p.relative_to(back).as_posix() for p in back.rglob("*")) == [
        "rgb.png", "sub", "sub/cmyk.tiff", "sub/deeper", "sub/deeper/photo.png", "sub/gray.png"]
    for rel, p in _sources(src).items():
        restored = back / rel
        if rel.endswith(".jpg"):
            restored = restored.with_suffix(".png")
        assert same_image(read_image(restored), read_image(p)), rel
