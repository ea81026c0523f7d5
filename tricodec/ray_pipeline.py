"""Encode or decode a tree of images on a Ray cluster (or a local Ray), with the CLI's per-file codec.

    from tricodec.ray_pipeline import encode_tree_ray, decode_tree_ray
    summary = encode_tree_ray("s3://bucket/photos", "s3://bucket/packed")         # local Ray
    summary = decode_tree_ray("packed/", "restored/", address="ray://head:10001")  # a cluster

The pipeline is a Ray Data dataset of (input, output) pairs (``ray.data.from_items``) mapped by a pool
of actors (``map_batches`` with a callable class): each actor loads the weights once, then for every
pair reads the input (:mod:`tricodec.remote`: local paths or fsspec URLs), encodes or decodes it and
writes the output atomically. The device follows :func:`tricodec.codec.backend_for`, the one rule the
CLI also follows: on a cluster with GPUs, ``"cuda"`` and ``"triton"`` get GPU actors, and ``"auto"``
gets them unless ``backend_for`` keeps the model on the CPU (asked once on a GPU node); GPU actors
(``num_gpus=1``) code batches of GPU_BATCH files with :func:`tricodec.encode_batch` /
:func:`tricodec.decode_batch`, CPU actors (``num_cpus=1``) one file at a time.

Inputs and outputs are chosen and named as the CLI's: a folder is mirrored; encoding takes every file
Pillow (or tricodec's 16-bit readers) can open, whatever its suffix (``a/b.png`` -> ``a/b.png.tric``),
decoding every ``.tric`` file, named by :func:`tricodec.pixels.decoded_name` from its header
(``a/b.png.tric`` -> ``a/b.png``, ``a/b.jpg.tric`` -> ``a/b.jpg.png``, TIFF for modes PNG cannot
hold); the other files of the tree are listed in ``"ignored"`` with the reason. Two inputs that would
write one output (``x.tric`` and ``x.png.tric``) both fail before any work, each with its own error. A
single input file goes to ``dst`` itself, or into ``dst`` when that is a folder or ends with "/".
Without ``force`` an existing output is never replaced (see :func:`tricodec.remote.write_bytes_atomic`).

Both functions return ``{"files", "ok", "failed": [(input, message)], "ignored": [(file, reason)],
"bytes_in", "bytes_out", "seconds"}`` (bytes as the CLI counts them: raw pixel bytes and ``.tric``
bytes); a file that fails is reported there and never stops the others.

Ray is an optional dependency (``pip install 'tricodec[ray]'``), imported only when a function here
runs. On a cluster, every node needs tricodec installed, and the paths must be readable from every
node: URLs (``s3://``, ``gs://`` ...) or a shared filesystem.
"""
from __future__ import annotations

import io
import os
import posixpath
import tempfile
import time
import warnings
from concurrent.futures import ThreadPoolExecutor
from functools import lru_cache
from pathlib import Path

from . import remote
from .errors import TricodecError
from .pixels import IMAGE_SUFFIXES, TRIC_SUFFIX, decoded_name  # noqa: F401  (decoded_name: the CLI's names)

GPU_BATCH = 16  # files per codec call on a GPU backend (their lanes share kernel launches), as the CLI's
CPU_BATCH = 1   # on the CPU: images are large and uneven, one per call balances the actors best
PROBE_THREADS = 8  # files of a tree probed at once when planning (Pillow's format probe, .tric headers)


def _ray():
    try:
        import ray
        import ray.data  # noqa: F401
    except ImportError:
        raise TricodecError("Ray is not installed: pip install 'tricodec[ray]'") from None
    return ray


# ---- inputs and output names, as the CLI's ----

def _suffix(name: str) -> str:
    return posixpath.splitext(name)[1].lower()


def is_tric_name(path: str) -> bool:
    return path.endswith(TRIC_SUFFIX)


def encoded_name(name: str) -> str:
    return name + TRIC_SUFFIX


@lru_cache(maxsize=1)
def readable_suffixes() -> frozenset:
    """Suffixes of the formats Pillow can open (not write-only ones such as .pdf, nor stubs that need a
    handler installed, such as .h5), plus those of tricodec's own full-depth readers; never .tric. The
    same set as the CLI's folder walk (cli/main.py ``_readable_suffixes``)."""
    from PIL import Image, ImageFile

    def opens(fmt: str) -> bool:
        factory = Image.OPEN.get(fmt, (None,))[0]
        return factory is not None and not (isinstance(factory, type) and issubclass(factory, ImageFile.StubImageFile))

    return frozenset(({ext for ext, fmt in Image.registered_extensions().items() if opens(fmt)} | IMAGE_SUFFIXES)
                     - {TRIC_SUFFIX})


def why_not_input(path: str, name: str, op: str) -> str | None:
    """Why a file of a folder is no input (None: it is one). Encoding: a known suffix is enough (a file
    that then cannot be read is a failure, not a skip); any other file is tried with Pillow, which reads
    only its header. Decoding: every ``.tric`` file."""
    if op != "encode":
        return None if is_tric_name(name) else "not a .tric file"
    if is_tric_name(name):
        return "already a .tric file"
    if _suffix(name) in readable_suffixes():
        return None
    from PIL import Image

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            with remote.open_binary(path) as f, Image.open(f):
                return None
    except Exception as e:  # Pillow raises many types for what it cannot identify
        return f"not an image Pillow can open ({type(e).__name__})"


def _decoded_name_of(full: str, name: str) -> str:
    """A .tric file's output name: a multi-frame file's kind decides its suffix, else its header's mode."""
    from .frames import KIND_HEAD_BYTES, KINDS, kind_of_head

    try:
        kind = kind_of_head(remote.read_head(full, KIND_HEAD_BYTES))
    except OSError:
        kind = None
    return decoded_name(name, None, KINDS[kind]) if kind else decoded_name(name, header_mode(full))


def header_mode(path: str) -> str | None:
    """The image mode a ``.tric`` file's header names, read from its first bytes; None when the file is no
    ``.tric`` (its decode then fails and writes nothing)."""
    from .container import _HEADER, HEADER_SIZE

    try:
        head = remote.read_head(path, HEADER_SIZE)
        if len(head) < HEADER_SIZE or head[:4] != b"TRIC":
            return None
        return _HEADER.unpack_from(head)[8].rstrip(b"\0").decode("ascii")
    except (OSError, UnicodeDecodeError):
        return None


def _out_name(full: str, name: str, op: str) -> str:
    return encoded_name(name) if op == "encode" else _decoded_name_of(full, name)


def _is_dir_target(dst: str) -> bool:
    return dst.endswith("/") or dst.endswith(os.sep) or (remote.exists(dst) and remote.isdir(dst))


def _output_key(path: str) -> str:
    """What makes two outputs the same file: the normalised local path, or the URL."""
    local = remote.local_path(path)
    if local is not None:
        return "local:" + os.path.normcase(os.path.abspath(local))
    return "url:" + path.rstrip("/")


def clashes(pairs) -> dict:
    """{input: why} for every input whose output another input of the run also gets (the one clash
    ``decoded_name`` allows: ``x.tric`` and ``x.png.tric``): writing both would lose one, so each of them
    fails instead (no arbitrary winner)."""
    by_output: dict = {}
    for s, d in pairs:
        by_output.setdefault(_output_key(d), (d, []))[1].append(s)
    out = {}
    for d, srcs in by_output.values():
        for s in srcs if len(srcs) > 1 else ():
            others = ", ".join(o for o in srcs if o != s)
            out[s] = f"{s}: output {d} would also be written from {others}; decode it alone to another name"
    return out


def plan(src: str, dst: str, op: str) -> tuple[list[tuple[str, str, str]], list[tuple[str, str]]]:
    """``([(input, output, error)], [(ignored file, reason)])`` as the CLI pairs and names them;
    ``error`` is "" or why the input fails before any work (its output clashes with another's). Every file
    of a folder is either an input or ignored. Raises FileNotFoundError for a missing src."""
    src, dst = os.fspath(src), os.fspath(dst)
    src_is_dir = remote.isdir(src)
    files = remote.list_files(src)
    if src_is_dir:
        def classify(item):  # (input, output) or (file, reason): a probe or a header read, remote or not
            full, rel = item
            folder, name = posixpath.split(rel)
            reason = why_not_input(full, name, op)
            if reason is not None:
                return full, reason, False
            return full, remote.join(dst, posixpath.join(folder, _out_name(full, name, op))), True

        readable_suffixes()  # Pillow's plugins registered once, before the threads
        with ThreadPoolExecutor(PROBE_THREADS) as pool:  # on an object store each is a round trip
            done = list(pool.map(classify, files))
        pairs = [(f, d) for f, d, is_input in done if is_input]
        ignored = [(f, r) for f, r, is_input in done if not is_input]
    else:
        (full, name), = files
        ignored = []
        if _is_dir_target(dst):
            pairs = [(full, remote.join(dst.rstrip("/" + os.sep) or dst, _out_name(full, name, op)))]
        else:
            pairs = [(full, dst)]
    errors = clashes(pairs)
    return [(s, d, errors.get(s, "")) for s, d in pairs], ignored


def _same_path(a: str, b: str) -> bool:
    la, lb = remote.local_path(a), remote.local_path(b)
    if la is not None and lb is not None:
        return os.path.realpath(la) == os.path.realpath(lb)
    return a.rstrip("/") == b.rstrip("/")


# ---- the per-file work, in the actors ----

def read_input_image(path: str):
    """An input image as the CLI reads it (``frames.read_source``: the frames of an APNG, GIF, multi-page
    TIFF, ICO or ICNS; else ``pixels.read_image``: 16-bit PNG, TIFF, PPM, SGI at full depth, what cannot be
    kept whole refused ...). A URL is fetched to a temporary file first, so that the same checks apply."""
    from .frames import read_source as read_image

    local = remote.local_path(path)
    if local is not None:
        return read_image(Path(local))
    data = remote.read_bytes(path)
    with tempfile.TemporaryDirectory(prefix="tricodec-") as d:
        tmp = Path(d) / ("input" + _suffix(posixpath.basename(path)))
        tmp.write_bytes(data)
        try:
            return read_image(tmp)
        except TricodecError as e:
            raise type(e)(str(e).replace(str(tmp), path)) from None


def _image_bytes(image, suffix: str) -> bytes:
    """A decoded image as the CLI writes it, in the format ``suffix`` names (frames: a file of their kind)."""
    from . import frames
    from .pixels import write_image

    if isinstance(image, frames.Frames):
        frames.check_output_suffix(image, suffix)
        buf = io.BytesIO()
        frames.write_frames(image, buf)
        return buf.getvalue()
    with tempfile.TemporaryDirectory(prefix="tricodec-") as d:
        tmp = Path(d) / ("output" + suffix)
        write_image(image, tmp, suffix)
        return tmp.read_bytes()


def _message(src: str, e: BaseException) -> str:
    if isinstance(e, (TricodecError, OSError)):
        msg = str(e) or type(e).__name__
    else:  # a bug must not stop the other files; it is still reported
        msg = f"internal error ({type(e).__name__}: {e})"
    return msg if msg.startswith(src) else f"{src}: {msg}"


class CodecWorker:
    """Ray Data callable class: one per actor; loads the weights once, then codes batches of pairs.

    The backend is :func:`tricodec.codec.backend_for`'s for the actor's device and model: on a GPU backend
    the files of a call are coded GPU_BATCH at a time with ``encode_batch`` / ``decode_batch`` (a batch that
    fails is redone file by file, so that each failure is its own); on the CPU one at a time."""

    def __init__(self, op: str, device: str, model, force: bool):
        from . import codec
        from .backend import CPU
        from .model import load_model

        self.op, self.device, self.force = op, device, force
        self.model = load_model(model) if (model is not None or op == "encode") else None
        # decode without a model: each file names its own, and decode_batch applies the rule per file
        self.batched = codec.backend_for(device, self.model) is not CPU

    # stages of one file: check (before any work), load, compute, store

    def _check(self, src: str, dst: str, error: str) -> None:
        if error:
            raise FileExistsError(error)
        if _same_path(src, dst):
            raise FileExistsError("output would overwrite the source")
        if not self.force and remote.exists(dst):  # before the work, not after it
            raise FileExistsError(f"{dst} exists (use --force to overwrite)")

    def _load(self, src: str):
        return read_input_image(src) if self.op == "encode" else remote.read_bytes(src)

    def _compute(self, item):
        from .frames import decode_source, encode_source, raw_size

        if self.op == "encode":
            data = encode_source(item, device=self.device, model=self.model)
            return data, raw_size(item), len(data)
        image = decode_source(item, device=self.device, model=self.model)
        return image, len(item), raw_size(image)

    def _compute_batch(self, items) -> list:
        """Results of several loaded files, or an exception per file that failed."""
        from . import codec
        from .pixels import pixel_bytes

        from .frames import Frames, is_frames

        has_frames = any(isinstance(it, Frames) if self.op == "encode" else is_frames(it) for it in items)
        if len(items) > 1 and not has_frames:   # multi-frame files: one by one (their frames share launches)
            try:
                if self.op == "encode":
                    datas = codec.encode_batch(items, device=self.device, model=self.model)
                    return [(d, len(pixel_bytes(im)), len(d)) for im, d in zip(items, datas)]
                images = codec.decode_batch(items, device=self.device, model=self.model)
                return [(im, len(d), len(pixel_bytes(im))) for d, im in zip(items, images)]
            except Exception:
                pass  # file by file below: each failure is its own
        out = []
        for item in items:
            try:
                out.append(self._compute(item))
            except Exception as e:
                out.append(e)
        return out

    def _store(self, src: str, dst: str, result) -> None:
        if self.op == "encode":
            remote.write_bytes_atomic(dst, result, self.force)
        else:  # in the format the output's name says (decoded_name chose it from the header)
            remote.write_bytes_atomic(dst, _image_bytes(result, _suffix(posixpath.basename(dst))), self.force)

    def __call__(self, batch):
        rows = {"src": [], "dst": [], "error": [], "bytes_in": [], "bytes_out": []}
        items = [(str(s), str(d), str(e)) for s, d, e in zip(batch["src"], batch["dst"], batch["error"])]
        step = GPU_BATCH if self.batched else 1
        for i in range(0, len(items), step):
            self._group(items[i:i + step], rows)
        return rows

    def _group(self, group, rows) -> None:
        results: dict = {}
        loaded = []
        for src, dst, error in group:
            try:
                self._check(src, dst, error)
                loaded.append((src, dst, self._load(src)))
            except Exception as e:
                results[src] = e
        for (src, dst, _), r in zip(loaded, self._compute_batch([item for _, _, item in loaded])):
            if not isinstance(r, BaseException):
                try:
                    self._store(src, dst, r[0])
                    r = (None, r[1], r[2])
                except Exception as e:
                    r = e
            results[src] = r
        del loaded
        for src, dst, _ in group:
            r = results[src]
            failed = isinstance(r, BaseException)
            rows["src"].append(src)
            rows["dst"].append(dst)
            rows["error"].append(_message(src, r) if failed else "")
            rows["bytes_in"].append(0 if failed else r[1])
            rows["bytes_out"].append(0 if failed else r[2])


# ---- the pipeline ----

def _backend_on_gpu_node(op: str, device: str, model) -> str:
    """The name of the backend :func:`tricodec.codec.backend_for` picks for ``device`` and the run's model,
    where it runs (a Ray task on a GPU node)."""
    from . import codec
    from .model import load_model

    return codec.backend_for(device, load_model(model) if (model is not None or op == "encode") else None).name


def _actors(device: str, ray, num_actors: int | None, n_files: int, gpu_backend) -> tuple[str, dict, int, int]:
    """(device for the actors, their resource request, pool size, files per batch). ``gpu_backend()``: the
    backend ``codec.backend_for`` picks on a GPU node (asked only for ``"auto"`` on a cluster with GPUs)."""
    resources = ray.cluster_resources()
    gpus, cpus = int(resources.get("GPU", 0)), max(1, int(resources.get("CPU", 1)))
    if device == "cuda" and gpus == 0:
        raise TricodecError("device 'cuda' asked for, but the Ray cluster has no GPU")
    use_gpu = gpus > 0 and (device in ("cuda", "triton") or (device == "auto" and gpu_backend() != "cpu"))
    if use_gpu:  # the actors' own backend_for gives the GPU backend, as it did on the probe
        return device, {"num_gpus": 1}, max(1, min(num_actors or gpus, n_files)), GPU_BATCH
    # CPU actors: "auto" is pinned to the CPU, so an actor on a GPU node does not take the GPU
    return ("cpu" if device == "auto" else device), {"num_cpus": 1}, max(1, min(num_actors or cpus, n_files)), \
        CPU_BATCH


def _new_summary(pairs, ignored) -> dict:
    return {"files": len(pairs), "ok": 0, "failed": [], "ignored": list(ignored), "bytes_in": 0, "bytes_out": 0,
            "seconds": 0.0}


def _add_row(summary: dict, src: str, error: str, n_in, n_out) -> None:
    if error:
        summary["failed"].append((src, error))
    else:
        summary["ok"] += 1
        summary["bytes_in"] += int(n_in)
        summary["bytes_out"] += int(n_out)


def _run(op: str, src, dst, *, device: str, model, force: bool, address, num_actors: int | None) -> dict:
    from .backend import DEVICES

    if device not in DEVICES:
        raise TricodecError(f"unknown device {device!r} (one of {', '.join(DEVICES)})")
    t0 = time.perf_counter()
    src, dst = os.fspath(src), os.fspath(dst)
    pairs, ignored = plan(src, dst, op)
    summary = _new_summary(pairs, ignored)
    if pairs:
        ray = _ray()
        if model is not None:
            # Load on the driver: a bad weights file fails here, once, and the actors get the weights
            # themselves, not a path that may not exist on their node. None: each actor loads the shipped one.
            from .model import load_model

            model = load_model(model)
        try:
            ray.init(address=address, ignore_reinit_error=True)
        except ConnectionError as e:
            raise TricodecError(f"cannot reach the Ray cluster at {address!r}: {e}") from None

        def gpu_backend() -> str:
            return ray.get(ray.remote(num_gpus=1)(_backend_on_gpu_node).remote(op, device, model))

        actor_device, request, size, batch_size = _actors(device, ray, num_actors, len(pairs), gpu_backend)
        items = [{"src": s, "dst": d, "error": e} for s, d, e in pairs]
        blocks = min(len(items), 4 * size if batch_size == 1 else max(size, -(-len(items) // batch_size)))
        ds = ray.data.from_items(items, override_num_blocks=blocks)
        ds = ds.map_batches(CodecWorker, batch_size=batch_size, compute=ray.data.ActorPoolStrategy(size=size),
                            fn_constructor_kwargs={"op": op, "device": actor_device, "model": model,
                                                   "force": force},
                            **request)
        for row in ds.iter_rows():
            _add_row(summary, row["src"], row["error"], row["bytes_in"], row["bytes_out"])
        summary["failed"].sort()
    summary["seconds"] = time.perf_counter() - t0
    return summary


def encode_tree_ray(src, dst, *, device: str = "auto", model=None, force: bool = False, address: str | None = None,
                    num_actors: int | None = None) -> dict:
    """Encode an image file or a folder tree (local or URL) into ``.tric`` files, on Ray.

    Args:
        src, dst: local paths or fsspec URLs; a folder is mirrored (``a/b.png`` -> ``a/b.png.tric``), every
            file Pillow can open is encoded, the others are listed in ``"ignored"``.
        device: ``"auto"`` (GPU actors when the cluster has GPUs and :func:`tricodec.codec.backend_for`
            runs the model on a GPU, else CPU actors), ``"cpu"``, ``"cuda"``, ``"triton"``.
        model: as for :func:`tricodec.encode`; loaded on the driver and shipped to the actors.
        force: overwrite existing outputs.
        address: None for a local Ray (started, or the one already running), ``"auto"``, or
            ``"ray://host:10001"``.
        num_actors: pool size (default: one per GPU, or per CPU, of the cluster; at most one per file).

    Returns:
        ``{"files", "ok", "failed": [(input, message)], "ignored": [(file, reason)], "bytes_in",
        "bytes_out", "seconds"}``.

    Raises:
        TricodecError: Ray missing, bad device or weights. FileNotFoundError: ``src`` does not exist.
    """
    return _run("encode", src, dst, device=device, model=model, force=force, address=address,
                num_actors=num_actors)


def decode_tree_ray(src, dst, *, device: str = "auto", model=None, force: bool = False, address: str | None = None,
                    num_actors: int | None = None) -> dict:
    """Decode a ``.tric`` file or a folder tree of them (local or URL) into images, on Ray.

    Images are written and named as the CLI writes them (:func:`tricodec.pixels.decoded_name`: ``a.png.tric``
    -> ``a.png``, ``a.jpg.tric`` -> ``a.jpg.png``): PNG, TIFF for modes PNG cannot hold, 16-bit PNG for
    16-bit colour; two files that would get one output name both fail. Arguments and result as for :func:`encode_tree_ray` (``model``: the weights the files
    need when they are not shipped ones)."""
    return _run("decode", src, dst, device=device, model=model, force=force, address=address,
                num_actors=num_actors)


def code_tree_local(op: str, src, dst, *, device: str = "auto", model=None, force: bool = False) -> dict:
    """The same per-file work as the Ray pipeline, in this process, without Ray: what the CLI runs for
    fsspec URLs when ``--ray`` is not asked for. ``op`` is ``"encode"`` or ``"decode"``; result as for
    :func:`encode_tree_ray` (the worker codes GPU_BATCH files per call on a GPU backend, one on the CPU)."""
    t0 = time.perf_counter()
    pairs, ignored = plan(os.fspath(src), os.fspath(dst), op)
    summary = _new_summary(pairs, ignored)
    if pairs:
        worker = CodecWorker(op, device, model, force)
        rows = worker({"src": [s for s, _, _ in pairs], "dst": [d for _, d, _ in pairs],
                       "error": [e for _, _, e in pairs]})
        for row in zip(rows["src"], rows["error"], rows["bytes_in"], rows["bytes_out"]):
            _add_row(summary, *row)
    summary["seconds"] = time.perf_counter() - t0
    return summary
