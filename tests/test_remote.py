"""tricodec.remote on local paths, file:// URLs and fsspec's in-memory filesystem."""
import os
import sys
import uuid

import pytest

from tricodec import TricodecError, remote

fsspec = pytest.importorskip("fsspec")


def _png(p: str) -> bool:
    return p.endswith(".png")


@pytest.fixture
def mem():
    """A fresh memory:// folder (the memory filesystem is process-global), removed afterwards."""
    root = f"memory://t-{uuid.uuid4().hex[:8]}"
    yield root
    fs = fsspec.filesystem("memory")
    if fs.exists(root):
        fs.rm(root, recursive=True)


def _local_tree(tmp_path):
    src = tmp_path / "src"
    for rel in ("a.png", "b.txt", "sub/c.png", "sub/deeper/d.png", "sub/deeper/e.jpg"):
        (src / rel).parent.mkdir(parents=True, exist_ok=True)
        (src / rel).write_bytes(rel.encode())
    return src


def test_is_url():
    for url in ("s3://bucket/key", "gs://b/k", "file:///tmp/x", "memory://x", "simplecache::s3://b/k",
                "https://host/x.png"):
        assert remote.is_url(url), url
    for path in ("/tmp/x", "rel/x.png", "C:\\x", "C:/x", "x://", ""):
        assert not remote.is_url(path), path


def test_local_tree_listing(tmp_path):
    src = _local_tree(tmp_path)
    got = remote.list_inputs(str(src), _png)
    assert [rel for _, rel in got] == ["a.png", "sub/c.png", "sub/deeper/d.png"]
    for full, rel in got:
        assert full == os.path.join(str(src), *rel.split("/"))
        assert remote.read_bytes(full) == rel.encode()
    # a single file is listed whatever accept says, under its own name
    assert remote.list_inputs(str(src / "b.txt"), _png) == [(str(src / "b.txt"), "b.txt")]
    with pytest.raises(FileNotFoundError):
        remote.list_inputs(str(tmp_path / "missing"), _png)


def test_file_url_listing_keeps_url_form(tmp_path):
    src = _local_tree(tmp_path)
    url = "file://" + src.as_posix()
    got = remote.list_inputs(url, _png)
    assert [rel for _, rel in got] == ["a.png", "sub/c.png", "sub/deeper/d.png"]
    assert all(full.startswith("file://") for full, _ in got)
    assert remote.read_bytes(got[1][0]) == b"sub/c.png"
    assert remote.isdir(url) and remote.exists(url + "/a.png") and not remote.exists(url + "/zz")


def test_memory_tree_listing_and_round_trip(mem):
    files = {"a.png": b"A", "x/b.png": b"B" * 1000, "x/y/c.png": b"", "x/y/skip.txt": b"no"}
    for rel, data in files.items():
        remote.write_bytes_atomic(remote.join(mem, rel), data, force=False)
    got = remote.list_inputs(mem, _png)
    assert [rel for _, rel in got] == ["a.png", "x/b.png", "x/y/c.png"]
    for full, rel in got:
        assert full == f"{mem}/{rel}"
        assert remote.read_bytes(full) == files[rel]
    assert remote.list_inputs(mem + "/", _png) == [(f"{mem}/{rel}", rel) for _, rel in got]
    assert remote.list_inputs(f"{mem}/x/b.png", _png) == [(f"{mem}/x/b.png", "b.png")]
    assert remote.isdir(f"{mem}/x") and not remote.isdir(f"{mem}/a.png")
    with pytest.raises(FileNotFoundError):
        remote.list_inputs(f"{mem}/nothing", _png)
    # no temporary file left behind
    assert not [p for p in fsspec.filesystem("memory").find(mem) if ".part" in p]


def test_join():
    assert remote.join("s3://b/dir/", "a/b.png") == "s3://b/dir/a/b.png"
    assert remote.join("memory://r", "x.tric") == "memory://r/x.tric"
    assert remote.join("out", "a/b.png") == os.path.join("out", "a", "b.png")


@pytest.mark.parametrize("where", ["local", "memory"])
def test_no_overwrite_without_force(tmp_path, mem, where):
    path = str(tmp_path / "d" / "f.tric") if where == "local" else f"{mem}/d/f.tric"
    assert not remote.exists(path)
    remote.write_bytes_atomic(path, b"one", force=False)
    assert remote.exists(path) and remote.read_bytes(path) == b"one"
    with pytest.raises(FileExistsError):
        remote.write_bytes_atomic(path, b"two", force=False)
    assert remote.read_bytes(path) == b"one"
    remote.write_bytes_atomic(path, b"three", force=True)
    assert remote.read_bytes(path) == b"three"
    if where == "local":
        assert os.listdir(tmp_path / "d") == ["f.tric"]
    else:
        assert [p.rsplit("/", 1)[1] for p in fsspec.filesystem("memory").find(f"{mem}/d")] == ["f.tric"]


def test_local_write_is_atomic_when_interrupted(tmp_path, monkeypatch):
    path = tmp_path / "f.tric"
    path.write_bytes(b"old")

    def broken_replace(a, b):
        raise OSError("disk on fire")

    monkeypatch.setattr(os, "replace", broken_replace)
    with pytest.raises(OSError, match="disk on fire"):
        remote.write_bytes_atomic(str(path), b"new" * 1000, force=True)
    assert path.read_bytes() == b"old"
    assert os.listdir(tmp_path) == ["f.tric"]  # the temporary file is gone


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX permissions")
def test_local_write_uses_umask_permissions(tmp_path):
    old = os.umask(0o022)
    try:
        remote.write_bytes_atomic(str(tmp_path / "f"), b"x", force=False)
    finally:
        os.umask(old)
    assert (tmp_path / "f").stat().st_mode & 0o777 == 0o644


def test_remote_write_falls_back_to_direct_write_without_mv(mem, monkeypatch):
    fs = fsspec.filesystem("memory")

    def no_mv(*a, **k):
        raise NotImplementedError

    monkeypatch.setattr(type(fs), "mv", no_mv)
    remote.write_bytes_atomic(f"{mem}/f.tric", b"data", force=False)
    assert remote.read_bytes(f"{mem}/f.tric") == b"data"
    assert [p.rsplit("/", 1)[1] for p in fs.find(mem)] == ["f.tric"]


def test_remote_write_failure_leaves_nothing(mem, monkeypatch):
    fs = fsspec.filesystem("memory")

    def bad_mv(*a, **k):
        raise OSError("network down")

    monkeypatch.setattr(type(fs), "mv", bad_mv)
    with pytest.raises(OSError, match="network down"):
        remote.write_bytes_atomic(f"{mem}/f.tric", b"data", force=False)
    assert not remote.exists(f"{mem}/f.tric")
    assert fs.find(mem) == []


def test_missing_backend_is_a_clear_error():
    from fsspec.registry import known_implementations, registry

    proto = next((p for p in ("s3", "gcs", "abfs", "hdfs") if p in known_implementations and p not in registry
                  and not _importable(known_implementations[p]["class"])), None)
    if proto is None:
        pytest.skip("every cloud backend is installed here")
    package = known_implementations[proto]["class"].split(".")[0]
    with pytest.raises(TricodecError, match=f"pip install {package}") as e:
        remote.read_bytes(f"{proto}://bucket/key.tric")
    assert str(e.value).startswith(f"{proto}://")


def _importable(cls_path: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(cls_path.split(".")[0]) is not None


def test_unknown_protocol_is_a_clear_error():
    with pytest.raises(TricodecError, match="unknown URL protocol"):
        remote.exists("nosuchproto://x/y")


def test_missing_fsspec_is_a_clear_error(monkeypatch):
    monkeypatch.setitem(sys.modules, "fsspec", None)  # import fsspec -> ImportError
    with pytest.raises(TricodecError, match="pip install fsspec"):
        remote.read_bytes("memory://x")
    # local paths never need fsspec
    assert remote.exists("/") and not remote.is_url("/tmp")
