"""Paths that are local files or fsspec URLs (``s3://``, ``gs://``, ``file://``, ``memory://`` ...).

Local paths (and ``file://`` URLs) are handled with ``os``/``pathlib`` and never import fsspec. Any
other URL goes through fsspec, imported at first use; a missing fsspec, or a missing backend for the
URL's protocol (``s3fs`` for ``s3://``, ``gcsfs`` for ``gs://`` ...), raises :class:`TricodecError`
naming the package to install.

Writes are all-or-nothing: :func:`write_bytes_atomic` writes a temporary file beside the target and
moves it into place, and refuses to overwrite an existing target unless ``force``. Locally the move is an
exclusive create (``os.link``, which fails if the name is taken, even by a racing writer); through fsspec
it is ``fs.mv`` after a second existence check (see :func:`_write_remote` for what that guarantees).
"""
from __future__ import annotations

import os
import posixpath
import re
import uuid
from pathlib import Path
from typing import Callable

from .errors import TricodecError

# two letters at least, so that a Windows drive ("C://x") is not a scheme
_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.\-]+(::[A-Za-z][A-Za-z0-9+.\-]+)*://")
_LOCAL_PROTOCOLS = ("file", "local")


def is_url(path: str) -> bool:
    """True for ``scheme://...`` (including fsspec chains such as ``simplecache::s3://...`` and
    ``file://``); False for plain local paths (``C:\\x`` and ``C:/x`` included)."""
    return bool(_SCHEME.match(os.fspath(path)))


def local_path(path) -> str | None:
    """The local path a plain path or ``file://`` URL names; None for other URLs."""
    path = os.fspath(path)
    if not is_url(path):
        return path
    scheme, _, rest = path.partition("://")
    if scheme.lower() in _LOCAL_PROTOCOLS:
        if rest.startswith("localhost/"):
            rest = rest[len("localhost"):]
        if os.name == "nt" and re.match(r"^/[A-Za-z]:", rest):
            rest = rest[1:]
        return rest or "/"
    return None


def _fsspec():
    try:
        import fsspec
    except ImportError:
        raise TricodecError("URLs need fsspec, which is not installed: pip install fsspec") from None
    return fsspec


def _fs(url: str):
    """(filesystem, path inside it) for a non-local URL."""
    fsspec = _fsspec()
    protocol = url.split("://", 1)[0].split("::")[-1].lower()
    try:
        return fsspec.core.url_to_fs(url)
    except ImportError as e:
        raise TricodecError(f"{protocol}:// URLs need {_backend_package(protocol, e)}") from None
    except ValueError as e:
        if "Protocol not known" in str(e) or "protocol" in str(e).lower():
            raise TricodecError(f"{url}: unknown URL protocol {protocol!r} ({e})") from None
        raise


def _backend_package(protocol: str, error: ImportError) -> str:
    """What to install for ``protocol``: "the s3fs package: pip install s3fs", or fsspec's own message
    for a built-in filesystem whose dependencies are missing (http needs aiohttp ...)."""
    try:
        from fsspec.registry import known_implementations
        package = known_implementations[protocol]["class"].split(".")[0]
    except Exception:
        package = "fsspec"
    if package == "fsspec":
        return f"packages that are not installed: {error}"
    return f"the {package} package, which is not installed: pip install {package}"


def isdir(path: str) -> bool:
    local = local_path(path)
    if local is not None:
        return os.path.isdir(local)
    fs, p = _fs(path)
    return bool(fs.isdir(p))


def exists(path: str) -> bool:
    local = local_path(path)
    if local is not None:
        return os.path.exists(local)
    fs, p = _fs(path)
    return bool(fs.exists(p))


def join(root: str, rel: str) -> str:
    """``root`` / ``rel`` (``rel`` uses "/"), in the style of ``root``: URLs stay URLs."""
    root = os.fspath(root)
    if is_url(root):
        return root.rstrip("/") + "/" + rel.lstrip("/") if rel else root
    return os.path.join(root, *[part for part in rel.split("/") if part])


def list_files(src: str) -> list[tuple[str, str]]:
    """Every file under ``src``: ``[(full path, path relative to src with "/")]``, sorted; a single file is
    ``[(src, its name)]``. Full paths are built with :func:`join`, so they keep ``src``'s form (its URL
    scheme, its options). Raises FileNotFoundError when ``src`` does not exist."""
    src = os.fspath(src)
    local = local_path(src)
    if local is not None:
        if os.path.isdir(local):
            found = sorted(p.relative_to(local).as_posix() for p in Path(local).rglob("*") if p.is_file())
        elif os.path.exists(local):
            return [(src, os.path.basename(local.rstrip("/\\")))]
        else:
            raise FileNotFoundError(f"{src} does not exist")
    else:
        fs, p = _fs(src)
        if fs.isdir(p):
            prefix = p.rstrip("/")
            found = sorted(f[len(prefix):].lstrip("/") for f in fs.find(p)
                           if f.startswith(prefix) and f[len(prefix):].lstrip("/"))
        elif fs.isfile(p):
            return [(src, posixpath.basename(p.rstrip("/")))]
        else:
            raise FileNotFoundError(f"{src} does not exist")
    return [(join(src, rel), rel) for rel in found]


def list_inputs(src: str, accept: Callable[[str], bool]) -> list[tuple[str, str]]:
    """Files to process under ``src``: :func:`list_files`, keeping the files of a folder whose full path
    ``accept`` takes; a single file is returned as ``[(src, its name)]`` whatever ``accept`` says (as the
    CLI does). Raises FileNotFoundError when ``src`` does not exist."""
    src = os.fspath(src)
    found = list_files(src)
    if not isdir(src):
        return found
    return [(full, rel) for full, rel in found if accept(full)]


def read_bytes(path: str) -> bytes:
    local = local_path(path)
    if local is not None:
        return Path(local).read_bytes()
    fs, p = _fs(path)
    return fs.cat_file(p)


def read_head(path: str, n: int) -> bytes:
    """The first ``n`` bytes of a file (fewer when it is shorter), without reading the rest."""
    local = local_path(path)
    if local is not None:
        with open(local, "rb") as f:
            return f.read(n)
    fs, p = _fs(path)
    return fs.cat_file(p, start=0, end=n)


def open_binary(path: str):
    """A file object reading ``path`` (for readers that need only a file's first bytes, such as Pillow's
    format probe); remote files are read in blocks, not fetched whole."""
    local = local_path(path)
    if local is not None:
        return open(local, "rb")
    fs, p = _fs(path)
    return fs.open(p, "rb")


def write_bytes_atomic(path: str, data: bytes, force: bool) -> None:
    """Write ``data`` to ``path`` all at once: a reader never sees a partial file, an interrupted write
    leaves at most a hidden ``.NAME.*.part`` file. Raises FileExistsError when ``path`` exists and
    ``force`` is False. Parent folders are created."""
    local = local_path(path)
    if local is not None:
        _write_local(Path(local), data, force)
    else:
        _write_remote(path, data, force)


def _write_local(path: Path, data: bytes, force: bool) -> None:
    if not force and path.exists():
        raise FileExistsError(f"{path} exists (use --force to overwrite)")
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.parent / f".{path.name}.{uuid.uuid4().hex[:12]}.part"
    # os.open, not mkstemp: the file gets the umask's permissions (mkstemp's are 0600)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o666)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        if force:
            os.replace(tmp, path)
        else:
            _link_no_clobber(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def _link_no_clobber(tmp: Path, path: Path) -> None:
    """Give ``tmp``'s content the name ``path`` only if no file has that name (a concurrent writer's
    included): FileExistsError otherwise. A hard link is an atomic exclusive create; on filesystems
    without hard links the name is reserved with ``O_CREAT | O_EXCL`` and ``tmp`` renamed onto it."""
    try:
        os.link(tmp, path)
        return
    except FileExistsError:
        raise FileExistsError(f"{path} exists (use --force to overwrite)") from None
    except OSError:
        pass
    try:
        os.close(os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY | getattr(os, "O_BINARY", 0), 0o666))
    except FileExistsError:
        raise FileExistsError(f"{path} exists (use --force to overwrite)") from None
    os.replace(tmp, path)


def _write_remote(url: str, data: bytes, force: bool) -> None:
    """Write through a temporary name in the target's folder, then move it onto the target.

    What this guarantees depends on the filesystem, since fsspec has no exclusive move: a reader never
    sees a partial target (object stores publish an object only once its upload is complete, and ``mv``
    there is a server-side copy then a delete of the temporary object; filesystems with a real rename make
    it one step). Without ``force`` the target is checked before the write and again just before the move,
    so an existing file is never replaced by this call; but a writer in another process that creates the
    same name between that second check and the move can still be overwritten (or overwrite this one), a
    race only a conditional write of the store itself could close. Within one run the outputs' names are
    unique by construction (clashes fail up front), so that race needs two runs writing the same target."""
    fs, p = _fs(url)
    if not force and fs.exists(p):
        raise FileExistsError(f"{url} exists (use --force to overwrite)")
    parent, name = posixpath.split(p.rstrip("/"))
    if parent:
        try:
            fs.makedirs(parent, exist_ok=True)
        except (NotImplementedError, OSError):
            pass  # object stores have no folders
    tmp = posixpath.join(parent, f".{name}.{uuid.uuid4().hex[:12]}.part")
    fs.pipe_file(tmp, data)
    try:
        if not force:
            fs.invalidate_cache(p)  # a listing cached by the filesystem must not hide a new file
            if fs.exists(p):
                raise FileExistsError(f"{url} exists (use --force to overwrite)")
        try:
            fs.mv(tmp, p)
        except NotImplementedError:
            fs.pipe_file(p, data)
    finally:
        try:
            if fs.exists(tmp):
                fs.rm_file(tmp)
        except (NotImplementedError, OSError, FileNotFoundError):
            pass
