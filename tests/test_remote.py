"""tricodec.remote on local paths, file:// URLs and fsspec's in-memory filesystem."""
import os
import sys
import uuid
from pathlib import Path

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


def test_list_files_lists_everything(tmp_path, mem):
    src = _local_tree(tmp_path)
    assert [rel for _, rel in remote.list_files(str(src))] == [
        "a.png", "b.txt", "sub/c.png", "sub/deeper/d.png", "sub/deeper/e.jpg"]
    remote.write_bytes_atomic(f"{mem}/x/y.bin", b"1", force=False)
    remote.write_bytes_atomic(f"{mem}/z", b"2", force=False)
    assert remote.list_files(mem) == [(f"{mem}/x/y.bin", "x/y.bin"), (f"{mem}/z", "z")]
    assert remote.list_files(f"{mem}/z") == [(f"{mem}/z", "z")]


@pytest.mark.parametrize("where", ["local", "memory"])
def test_read_head_and_open_binary(tmp_path, mem, where):
    path = str(tmp_path / "f") if where == "local" else f"{mem}/f"
    remote.write_bytes_atomic(path, b"0123456789" * 100, force=False)
    assert remote.read_head(path, 4) == b"0123"
    assert remote.read_head(path, 5000) == b"0123456789" * 100
    with remote.open_binary(path) as f:
        assert f.read(3) == b"012"


def test_remote_write_does_not_replace_a_file_that_appears_meanwhile(mem, monkeypatch):
    """Another writer creates the target while this one uploads its temporary file: the move is refused
    (the target is checked again just before it), the other writer's file stays, no temporary file is left."""
    fs = fsspec.filesystem("memory")
    target = f"{mem}/f.tric"
    real_pipe = type(fs).pipe_file

    def racing_pipe(self, path, value, *a, **k):
        real_pipe(self, path, value, *a, **k)
        if ".part" in path:
            real_pipe(self, fs._strip_protocol(target), b"theirs")

    monkeypatch.setattr(type(fs), "pipe_file", racing_pipe)
    with pytest.raises(FileExistsError, match="exists"):
        remote.write_bytes_atomic(target, b"mine", force=False)
    monkeypatch.undo()
    assert remote.read_bytes(target) == b"theirs"
    assert [p.rsplit("/", 1)[1] for p in fs.find(mem)] == ["f.tric"]


def test_local_write_without_hard_links_is_still_exclusive(tmp_path, monkeypatch):
    """On a filesystem without hard links the name is reserved with O_EXCL before the rename, so a file
    that appeared since the first check is not replaced."""
    path = tmp_path / "f.tric"

    def no_link_and_a_racer(src, dst):
        Path(dst).write_bytes(b"theirs")  # another writer got there first
        raise OSError(1, "Operation not permitted")

    monkeypatch.setattr(os, "link", no_link_and_a_racer)
    with pytest.raises(FileExistsError):
        remote.write_bytes_atomic(str(path), b"mine", force=False)
    assert path.read_bytes() == b"theirs"
    assert os.listdir(tmp_path) == ["f.tric"]


def test_local_write_without_hard_links(tmp_path, monkeypatch):
    def no_link(src, dst):
        raise OSError(1, "Operation not permitted")

    monkeypatch.setattr(os, "link", no_link)
    remote.write_bytes_atomic(str(tmp_path / "f.tric"), b"mine", force=False)
    assert (tmp_path / "f.tric").read_bytes() == b"mine"
    assert os.listdir(tmp_path) == ["f.tric"]
