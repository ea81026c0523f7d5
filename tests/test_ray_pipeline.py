"""tricodec.ray_pipeline: inputs and output names (as the CLI's), the per-file worker (in-process, on local
paths and memory:// URLs), the device choice, and the whole pipeline on a small local Ray (skipped when Ray
is not installed)."""
import json
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
    """src/ with images at two depths, a misnamed one, one with a suffix Pillow does not know, one that is
    not an image, and a text file."""
    src = root / "src"
    (src / "sub" / "deeper").mkdir(parents=True)
    shutil.copy(FIXTURES / "photo_rgb_41x34.png", src / "rgb.png")
    shutil.copy(FIXTURES / "photo_gray_37x29.png", src / "sub" / "gray.png")
    shutil.copy(FIXTURES / "photo_rgb_41x34.png", src / "sub" / "deeper" / "photo.jpg")  # a PNG named .jpg
    Image.fromarray(photo_like(12, 10, 4, seed=5), "RGBA").convert("CMYK").save(src / "sub" / "cmyk.tiff")
    (src / "sub" / "broken.png").write_bytes(b"not a png")
    shutil.copy(FIXTURES / "photo_gray_37x29.png", src / "sub" / "scan.dat")  # an image whatever its suffix
    (src / "notes.txt").write_text("ignored")
    return src


def _sources(src: Path) -> dict:
    return {p.relative_to(src).as_posix(): p for p in src.rglob("*")
            if p.is_file() and p.suffix != ".txt" and p.name != "broken.png"}


@pytest.fixture
def mem():
    fsspec = pytest.importorskip("fsspec")
    root = f"memory://ray-{uuid.uuid4().hex[:8]}"
    yield root
    fs = fsspec.filesystem("memory")
    if fs.exists(root):
        fs.rm(root, recursive=True)


# ---- inputs and names, as the CLI's ----

def test_image_suffixes_match_the_cli():
    cli = pytest.importorskip("tricodec.cli.main")
    assert rp.IMAGE_SUFFIXES == cli.IMAGE_SUFFIXES and rp.TRIC_SUFFIX == cli.SUFFIX
    assert rp.readable_suffixes() == cli._readable_suffixes()


def test_decoded_names():
    """The CLI's names: the source's full name is kept, so distinct sources get distinct outputs."""
    assert rp.decoded_name("a.png.tric", "RGB") == "a.png"
    assert rp.decoded_name("a.JPG.tric", "RGB") == "a.JPG.png"
    assert rp.decoded_name("a.jpg.tric", "RGB") == "a.jpg.png"
    assert rp.decoded_name("a.png.tric", "CMYK") == "a.png.tiff"
    assert rp.decoded_name("a.tif.tric", "CMYK") == "a.tif"
    assert rp.decoded_name("a.tric", "RGB") == "a.png"
    assert rp.decoded_name("a.b.tric", "RGB") == "a.b.png"
    assert rp.decoded_name("a.tric", "RGB;16") == "a.png"
    assert rp.decoded_name("a.tric", None) == "a.png"


def _rel(plan, src, out):
    return [(Path(s).relative_to(src).as_posix(), Path(d).relative_to(out).as_posix(), e) for s, d, e in plan]


def test_plan_mirrors_the_tree(tmp_path):
    src = _tree(tmp_path)
    out = str(tmp_path / "out")
    plan, ignored = rp.plan(str(src), out, "encode")
    assert _rel(plan, src, out) == [
        ("rgb.png", "rgb.png.tric", ""),
        ("sub/broken.png", "sub/broken.png.tric", ""),
        ("sub/cmyk.tiff", "sub/cmyk.tiff.tric", ""),
        ("sub/deeper/photo.jpg", "sub/deeper/photo.jpg.tric", ""),
        ("sub/gray.png", "sub/gray.png.tric", ""),
        ("sub/scan.dat", "sub/scan.dat.tric", "")]
    assert ignored == [(str(src / "notes.txt"), "not an image Pillow can open (UnidentifiedImageError)")]
    # a single file: to dst itself, or into dst when it is a folder or ends with "/"
    one = str(src / "rgb.png")
    assert rp.plan(one, str(tmp_path / "x.tric"), "encode") == ([(one, str(tmp_path / "x.tric"), "")], [])
    assert rp.plan(one, str(tmp_path) + "/", "encode") == ([(one, str(tmp_path / "rgb.png.tric"), "")], [])
    with pytest.raises(FileNotFoundError):
        rp.plan(str(tmp_path / "missing"), out, "encode")


def _tric_tree(root: Path) -> Path:
    """packed/: a.png.tric and a.jpg.tric (one output each: a.png, a.jpg.png), x.tric and x.png.tric (both
    would write x.png), a CMYK image's file, and a file that is not .tric."""
    packed = root / "packed"
    packed.mkdir()
    rgb = tricodec.encode(read_image(FIXTURES / "photo_rgb_41x34.png"), device="cpu")
    gray = tricodec.encode(read_image(FIXTURES / "photo_gray_37x29.png"), device="cpu")
    cmyk = tricodec.encode(Image.fromarray(photo_like(12, 10, 4, seed=5), "RGBA").convert("CMYK"), device="cpu")
    for name, data in (("a.png.tric", rgb), ("a.jpg.tric", gray), ("x.tric", rgb), ("x.png.tric", gray),
                       ("c.tif.tric", cmyk), ("readme.txt", b"no")):
        (packed / name).write_bytes(data)
    return packed


def test_decode_plan_names_from_the_header_and_fails_clashes_up_front(tmp_path):
    packed = _tric_tree(tmp_path)
    out = str(tmp_path / "back")
    plan, ignored = rp.plan(str(packed), out, "decode")
    got = {s: (d, e) for s, d, e in _rel(plan, packed, out)}
    assert {s: d for s, (d, _) in got.items()} == {
        "a.jpg.tric": "a.jpg.png", "a.png.tric": "a.png", "c.tif.tric": "c.tif",
        "x.png.tric": "x.png", "x.tric": "x.png"}
    assert [s for s, (_, e) in got.items() if e] == ["x.png.tric", "x.tric"]
    assert got["x.tric"][1].startswith(str(packed / "x.tric") + ": output ")
    assert str(packed / "x.png.tric") in got["x.tric"][1]
    assert ignored == [(str(packed / "readme.txt"), "not a .tric file")]
    # a single file into a folder: named from its header
    one = str(packed / "c.tif.tric")
    assert rp.plan(one, str(tmp_path), "decode") == ([(one, str(tmp_path / "c.tif"), "")], [])


def test_decode_tree_distinct_outputs_and_clashes_fail(tmp_path):
    packed = _tric_tree(tmp_path)
    back = tmp_path / "back"
    s = rp.code_tree_local("decode", str(packed), str(back), device="cpu")
    assert (s["files"], s["ok"]) == (5, 3)
    assert sorted(Path(f).name for f, _ in s["failed"]) == ["x.png.tric", "x.tric"]
    assert all("would also be written from" in m for _, m in s["failed"])
    assert s["ignored"] == [(str(packed / "readme.txt"), "not a .tric file")]
    assert sorted(p.name for p in back.iterdir()) == ["a.jpg.png", "a.png", "c.tif"]  # no x.png: no winner
    assert same_image(read_image(back / "a.png"), read_image(FIXTURES / "photo_rgb_41x34.png"))
    assert same_image(read_image(back / "a.jpg.png"), read_image(FIXTURES / "photo_gray_37x29.png"))
    assert read_image(back / "c.tif").mode == "CMYK"


def test_cli_over_urls_reports_ignored_files_and_encodes_unknown_suffixes(tmp_path, mem):
    from typer.testing import CliRunner
    from tricodec.cli.main import app

    src = _tree(tmp_path)
    for p in src.rglob("*"):
        if p.is_file():
            remote.write_bytes_atomic(f"{mem}/src/{p.relative_to(src).as_posix()}", p.read_bytes(), force=False)
    r = CliRunner().invoke(app, ["encode", f"{mem}/src", f"{mem}/out", "--device", "cpu", "--json"])
    assert r.exit_code == 1, r.output  # broken.png fails
    summary = json.loads(r.stdout)
    assert (summary["files"], summary["ok"], summary["failed"]) == (6, 5, 1)
    assert summary["ignored"] == [{"file": f"{mem}/src/notes.txt",
                                   "reason": "not an image Pillow can open (UnidentifiedImageError)"}]
    assert remote.read_bytes(f"{mem}/out/sub/scan.dat.tric") == \
        tricodec.encode(read_image(src / "sub" / "scan.dat"), device="cpu")
    r = CliRunner().invoke(app, ["decode", f"{mem}/out", f"{mem}/back", "--device", "cpu"])
    assert r.exit_code == 0, r.output
    assert "ignored" not in r.output
    tmp = tmp_path / "scan.png"
    tmp.write_bytes(remote.read_bytes(f"{mem}/back/sub/scan.dat.png"))
    assert same_image(read_image(tmp), read_image(src / "sub" / "scan.dat"))


# ---- the worker, in this process ----

def _call(worker, plan):
    return worker({"src": [s for s, _, _ in plan], "dst": [d for _, d, _ in plan], "error": [e for _, _, e in plan]})


def test_worker_on_urls_round_trip(tmp_path, mem):
    src = _tree(tmp_path)
    for rel, p in list(_sources(src).items()) + [("sub/broken.png", src / "sub" / "broken.png")]:
        remote.write_bytes_atomic(f"{mem}/src/{rel}", p.read_bytes(), force=False)
    plan, _ = rp.plan(f"{mem}/src", f"{mem}/out", "encode")
    rows = _call(rp.CodecWorker("encode", "cpu", None, False), plan)
    errors = [e for e in rows["error"] if e]
    assert len(errors) == 1 and errors[0].startswith(f"{mem}/src/sub/broken.png: ")
    for rel, p in _sources(src).items():
        expected = tricodec.encode(read_image(p), device="cpu")
        assert remote.read_bytes(f"{mem}/out/{rel}.tric") == expected, rel
    rows = _call(rp.CodecWorker("decode", "cpu", None, False), rp.plan(f"{mem}/out", f"{mem}/back", "decode")[0])
    assert not any(rows["error"])
    assert sorted(d.split("/back/")[1] for d in rows["dst"]) == [
        "rgb.png", "sub/cmyk.tiff", "sub/deeper/photo.jpg.png", "sub/gray.png", "sub/scan.dat.png"]
    for d in rows["dst"]:
        rel = d.split("/back/")[1]
        orig = {"sub/deeper/photo.jpg.png": "sub/deeper/photo.jpg", "sub/scan.dat.png": "sub/scan.dat"}.get(rel, rel)
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
    rows = _call(rp.CodecWorker("encode", "cpu", None, False), [(f"{mem}/deep.png", f"{mem}/deep.png.tric", "")])
    assert rows["error"] == [""]
    assert np.array_equal(tricodec.decode_array(remote.read_bytes(f"{mem}/deep.png.tric")), arr)


def _multi_frame_tree(root: Path) -> Path:
    """An APNG of 3 frames, a multi-page TIFF of 2 pages and a single PNG."""
    src = root / "frames_src"
    src.mkdir()
    photos = [Image.fromarray(photo_like(14, 18, 4, seed=i), "RGBA") for i in range(3)]
    photos[0].save(src / "anim.png", save_all=True, append_images=photos[1:], duration=[40, 50, 60], loop=2)
    pages = [Image.fromarray(photo_like(10, 12, 3, seed=7 + i), "RGB") for i in range(2)]
    pages[0].save(src / "scan.tiff", save_all=True, append_images=pages[1:])
    shutil.copy(FIXTURES / "photo_rgb_41x34.png", src / "one.png")
    return src


@pytest.mark.parametrize("where", ["local", "url"])
def test_worker_codes_multi_frame_files(tmp_path, mem, where):
    """APNG and TIFF pages through the Ray/URL worker: one .tric each, decoded back to a file of their kind
    with the same frames and timing (as the CLI does); a single image beside them as before."""
    from tricodec import frames as tframes

    src = _multi_frame_tree(tmp_path)
    root = str(tmp_path) if where == "local" else mem
    if where == "url":
        for p in src.iterdir():
            remote.write_bytes_atomic(f"{mem}/frames_src/{p.name}", p.read_bytes(), force=False)
    rows = _call(rp.CodecWorker("encode", "cpu", None, False), rp.plan(f"{root}/frames_src", f"{root}/out", "encode")[0])
    assert not any(rows["error"]), rows["error"]
    assert remote.read_bytes(f"{root}/out/anim.png.tric") == tricodec.encode_frames(src / "anim.png", device="cpu")
    plan, _ = rp.plan(f"{root}/out", f"{root}/back", "decode")
    assert sorted(d.split("/back/")[1] for _, d, _ in plan) == ["anim.png", "one.png", "scan.tiff"]
    rows = _call(rp.CodecWorker("decode", "cpu", None, False), plan)
    assert not any(rows["error"]), rows["error"]
    for name in ("anim.png", "scan.tiff"):
        back = tframes.read_frames(remote.read_bytes(f"{root}/back/{name}"))
        assert tframes.same_frames(back, tframes.read_frames(src / name)), name
    assert rows["bytes_out"][[d.endswith("anim.png") for d in rows["dst"]].index(True)] == 3 * 14 * 18 * 4


def test_worker_refuses_a_frames_output_of_another_kind(tmp_path):
    src = _multi_frame_tree(tmp_path)
    packed = tmp_path / "anim.png.tric"
    packed.write_bytes(tricodec.encode_frames(src / "anim.png", device="cpu"))
    rows = _call(rp.CodecWorker("decode", "cpu", None, False), [(str(packed), str(tmp_path / "anim.tiff"), "")])
    assert "cannot hold its frames" in rows["error"][0] and not (tmp_path / "anim.tiff").exists()


def test_worker_refuses_to_overwrite_the_source(tmp_path):
    p = tmp_path / "a.png"
    shutil.copy(FIXTURES / "photo_gray_37x29.png", p)
    rows = _call(rp.CodecWorker("encode", "cpu", None, True), [(str(p), str(p), "")])
    assert "overwrite the source" in rows["error"][0]
    assert p.read_bytes() == (FIXTURES / "photo_gray_37x29.png").read_bytes()


class _FakeRay:
    def __init__(self, **resources):
        self.resources = resources

    def cluster_resources(self):
        return self.resources


def _never():
    raise AssertionError("backend_for need not be asked on a GPU node here")


def test_actor_pool_follows_the_device():
    gpu_cluster, cpu_cluster = _FakeRay(CPU=32.0, GPU=4.0), _FakeRay(CPU=8.0)
    # "auto" on GPUs: as codec.backend_for decides on a GPU node; GPU actors code batches of files
    assert rp._actors("auto", gpu_cluster, None, 100, lambda: "cuda") == ("auto", {"num_gpus": 1}, 4, rp.GPU_BATCH)
    # a model backend_for keeps on the CPU under "auto" (prefers_gpu false): CPU actors, one file per call
    assert rp._actors("auto", gpu_cluster, None, 100, lambda: "cpu") == ("cpu", {"num_cpus": 1}, 32, 1)
    assert rp._actors("cuda", gpu_cluster, None, 2, _never) == ("cuda", {"num_gpus": 1}, 2, rp.GPU_BATCH)
    assert rp._actors("cpu", gpu_cluster, None, 100, _never) == ("cpu", {"num_cpus": 1}, 32, 1)
    assert rp._actors("auto", cpu_cluster, None, 100, _never) == ("cpu", {"num_cpus": 1}, 8, 1)
    assert rp._actors("auto", cpu_cluster, 3, 100, _never) == ("cpu", {"num_cpus": 1}, 3, 1)
    with pytest.raises(tricodec.TricodecError, match="no GPU"):
        rp._actors("cuda", cpu_cluster, None, 10, _never)


class _FakeGpu:
    name = "cuda"


def _fake_gpu_rule(monkeypatch):
    """codec.backend_for as on a GPU node (get_backend gives a GPU backend for "auto"), without a GPU."""
    from tricodec import codec

    real = codec.get_backend
    monkeypatch.setattr(codec, "get_backend", lambda device="auto": _FakeGpu() if device != "cpu" else real("cpu"))


def test_device_rule_is_codec_backend_for(monkeypatch):
    _fake_gpu_rule(monkeypatch)
    assert rp._backend_on_gpu_node("encode", "auto", "tric-wf2") == "cuda"    # a model that prefers a GPU
    assert rp._backend_on_gpu_node("encode", "auto", None) == "cpu"           # the default (tric-wf3) does not yet
    assert rp._backend_on_gpu_node("encode", "auto", "tric-cx1") == "cpu"     # the context model does not
    assert rp._backend_on_gpu_node("encode", "cuda", "tric-cx1") == "cuda"    # unless the GPU is asked for
    assert rp._backend_on_gpu_node("decode", "auto", None) == "cuda"          # files name their models
    assert rp.CodecWorker("encode", "auto", "tric-wf2", False).batched
    assert not rp.CodecWorker("encode", "auto", None, False).batched
    assert not rp.CodecWorker("encode", "auto", "tric-cx1", False).batched
    assert not rp.CodecWorker("encode", "cpu", None, False).batched


def _spy_batches(monkeypatch, batched: bool) -> list:
    """Make the worker see a GPU backend (or not) and record the files per encode_batch/decode_batch call;
    the batch calls still code on the CPU, so the bytes are checked against tricodec.encode."""
    from tricodec import codec
    from tricodec.backend import CPU

    calls = []
    monkeypatch.setattr(codec, "backend_for", lambda device, model: _FakeGpu() if batched and device != "cpu" else CPU)
    for name in ("encode_batch", "decode_batch"):
        real = getattr(codec, name)

        def spy(items, *, device="auto", model=None, _real=real, _name=name, **kw):
            items = list(items)
            calls.append((_name, len(items)))
            return _real(items, device="cpu", model=model, **kw)

        monkeypatch.setattr(codec, name, spy)
    for name in ("encode", "decode_any"):  # the file-by-file calls too: the patched rule would send them to the fake
        real = getattr(codec, name)
        monkeypatch.setattr(codec, name, lambda x, *, device="auto", _real=real, **kw: _real(x, device="cpu", **kw))
    return calls


def test_gpu_backend_codes_batches_of_files(tmp_path, monkeypatch):
    calls = _spy_batches(monkeypatch, batched=True)
    src = tmp_path / "src"
    src.mkdir()
    sources = {}
    for i in range(rp.GPU_BATCH + 3):
        p = src / f"im{i:02d}.png"
        Image.fromarray(photo_like(9 + i % 3, 11, 3, seed=i), "RGB").save(p)
        sources[p.name] = p
    (src / "im05.png").write_bytes(b"broken")  # fails on its own, at reading
    s = rp.code_tree_local("encode", str(src), str(tmp_path / "out"), device="auto")
    assert (s["files"], s["ok"]) == (rp.GPU_BATCH + 3, rp.GPU_BATCH + 2)
    assert [Path(f).name for f, _ in s["failed"]] == ["im05.png"]
    assert calls == [("encode_batch", rp.GPU_BATCH - 1), ("encode_batch", 3)]
    for name, p in sources.items():
        if name != "im05.png":
            assert (tmp_path / "out" / (name + ".tric")).read_bytes() == \
                tricodec.encode(read_image(p), device="cpu"), name
    # decode: a corrupt file makes its batch call fail; the batch is redone file by file
    (tmp_path / "out" / "im07.png.tric").write_bytes(b"TRIC" + b"\0" * 60)
    calls.clear()
    d = rp.code_tree_local("decode", str(tmp_path / "out"), str(tmp_path / "back"), device="auto")
    assert calls == [("decode_batch", rp.GPU_BATCH), ("decode_batch", 2)]
    assert [Path(f).name for f, _ in d["failed"]] == ["im07.png.tric"], d["failed"]
    assert d["ok"] == rp.GPU_BATCH + 1
    for name, p in sources.items():
        if name not in ("im05.png", "im07.png"):
            assert same_image(read_image(tmp_path / "back" / name), read_image(p)), name


def test_cpu_backend_codes_one_file_at_a_time(tmp_path, monkeypatch):
    calls = _spy_batches(monkeypatch, batched=False)
    src = _tree(tmp_path)
    s = rp.code_tree_local("encode", str(src), str(tmp_path / "out"), device="auto")
    assert (s["files"], s["ok"]) == (6, 5) and calls == []


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
    assert (s["files"], s["ok"]) == (6, 5)
    assert [p for p, _ in s["failed"]] == [str(src / "sub" / "broken.png")]
    assert "cannot read image" in s["failed"][0][1]
    assert s["ignored"] == [(str(src / "notes.txt"), "not an image Pillow can open (UnidentifiedImageError)")]
    n_raw = 0
    for rel, p in _sources(src).items():
        image = read_image(p)
        n_raw += len(tricodec.pixels.pixel_bytes(image))
        assert (out / (rel + ".tric")).read_bytes() == tricodec.encode(image, device="cpu"), rel
    assert s["bytes_in"] == n_raw
    assert s["bytes_out"] == sum(p.stat().st_size for p in out.rglob("*.tric"))
    assert not list(out.rglob("*.part"))

    again = rp.encode_tree_ray(src, out, device="cpu")  # no --force: every output exists
    assert again["ok"] == 0 and sum("exists" in m for _, m in again["failed"]) == 5

    shutil.copy(out / "rgb.png.tric", out / "rgb.tric")  # rgb.tric and rgb.png.tric would both write rgb.png
    d = rp.decode_tree_ray(out, back, device="cpu")
    assert (d["files"], d["ok"]) == (6, 4)
    assert sorted(Path(f).name for f, _ in d["failed"]) == ["rgb.png.tric", "rgb.tric"]
    assert all("would also be written from" in m for _, m in d["failed"])
    assert sorted(p.relative_to(back).as_posix() for p in back.rglob("*")) == [
        "sub", "sub/cmyk.tiff", "sub/deeper", "sub/deeper/photo.jpg.png", "sub/gray.png", "sub/scan.dat.png"]
    for rel, p in _sources(src).items():
        if rel == "rgb.png":
            continue
        restored = back / (rel if rel.endswith((".png", ".tiff")) else rel + ".png")
        assert same_image(read_image(restored), read_image(p)), rel
