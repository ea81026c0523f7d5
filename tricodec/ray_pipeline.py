"""Encode or decode a tree of images on a Ray cluster (or a local Ray), with the CLI's per-file codec.

    from tricodec.ray_pipeline import encode_tree_ray, decode_tree_ray
    summary = encode_tree_ray("s3://bucket/photos", "s3://bucket/packed")         # local Ray
    summary = decode_tree_ray("packed/", "restored/", address="ray://head:10001")  # a cluster

The pipeline is a Ray Data dataset of (input, output) pairs (``ray.data.from_items``) mapped by a pool
of actors (``map_batches`` with a callable class): each actor loads the weights once, then for every
pair reads the input (:mod:`tricodec.remote`: local paths or fsspec URLs), encodes or decodes it and
writes the output atomically. Actors take one GPU each (``num_gpus=1``) when ``device`` resolves to
CUDA on the cluster, one CPU each otherwise.

Outputs are named as the CLI names them: a folder is mirrored, ``a/b.png`` -> ``a/b.png.tric`` when
encoding; ``a/b.png.tric`` -> ``a/b.png`` (PNG, or ``a/b.tiff`` for modes PNG cannot hold) when
decoding. A single input file goes to ``dst`` itself, or into ``dst`` when that is a folder or ends
with "/".

Both functions return ``{"files", "ok", "failed": [(input, message)], "bytes_in", "bytes_out",
"seconds"}`` (bytes as the CLI counts them: raw pixel bytes and ``.tric`` bytes); a file that fails is
reported there and never stops the others.

Ray is an optional dependency (``pip install 'tricodec[ray]'``), imported only when a function here
runs. On a cluster, every node needs tricodec installed, and the paths must be readable from every
node: URLs (``s3://``, ``gs://`` ...) or a shared filesystem.
"""
from __future__ import annotations

import os
import posixpath
import tempfile
import time
from pathlib import Path

from . import remote
from .errors import TricodecError
from .pixels import IMAGE_SUFFIXES, TRIC_SUFFIX

_BATCH_SIZE = 1  # images are large and uneven: one per call balances the actors best


def _ray():
    try:
        import ray
        import ray.data  # noqa: F401
    except ImportError:
        raise TricodecError("Ray is not installed: pip install 'tricodec[ray]'") from None
    return ray


# ---- output names, as the CLI's ----

def _suffix(name: str) -> str:
    return posixpath.splitext(name)[1].lower()


def is_image_name(path: str) -> bool:
    return _suffix(path) in IMAGE_SUFFIXES


def is_tric_name(path: str) -> bool:
    return path.endswith(TRIC_SUFFIX)


def encoded_name(name: str) -> str:
    return name + TRIC_SUFFIX


def decoded_name(name: str, image) -> str:
    """``b.png.tric`` -> ``b.png`` (or ``b.tiff``, after the decoded image); ``b.tric`` -> ``b.png``."""
    from .pixels import output_suffix

    stem = name[:-len(TRIC_SUFFIX)] if name.endswith(TRIC_SUFFIX) else name
    base, ext = posixpath.splitext(stem)
    return (base if ext.lower() in IMAGE_SUFFIXES else stem) + output_suffix(image)


def _is_dir_target(dst: str) -> bool:
    return dst.endswith("/") or dst.endswith(os.sep) or (remote.exists(dst) and remote.isdir(dst))


def plan(src: str, dst: str, op: str) -> list[tuple[str, str, bool]]:
    """``[(input, output, rename)]`` as the CLI pairs them; ``rename``: the output's name is decided
    after decoding (its suffix follows the decoded image). Raises FileNotFoundError for a missing src."""
    src, dst = os.fspath(src), os.fspath(dst)
    encode = op == "encode"
    accept = is_image_name if encode else is_tric_name
    src_is_dir = remote.isdir(src)
    inputs = remote.list_inputs(src, accept)
    if src_is_dir:
        out = []
        for full, rel in inputs:
            folder, name = posixpath.split(rel)
            out_rel = posixpath.join(folder, encoded_name(name) if encode else name)
            out.append((full, remote.join(dst, out_rel), not encode))
        return out
    (full, name), = inputs
    if _is_dir_target(dst):
        return [(full, remote.join(dst.rstrip("/" + os.sep) or dst, encoded_name(name) if encode else name),
                 not encode)]
    return [(full, dst, False)]


def _same_path(a: str, b: str) -> bool:
    la, lb = remote.local_path(a), remote.local_path(b)
    if la is not None and lb is not None:
        return os.path.realpath(la) == os.path.realpath(lb)
    return a.rstrip("/") == b.rstrip("/")


# ---- the per-file work, in the actors ----

def read_input_image(path: str):
    """An input image as ``tricodec.pixels.read_image`` reads it (16-bit PNG, TIFF, PPM, SGI at full depth,
    what cannot be kept whole refused ...). A URL is fetched to a temporary file first, so that the same
    checks apply."""
    from .pixels import read_image

    local = remote.local_path(path)
    if local is not None:
        return read_image(Path(local))
    data = remote.read_bytes(path)
    with tempfile.TemporaryDirectory(prefix="tricodec-") as d:
        tmp = Path(d) / ("input" + _suffix(path))
        tmp.write_bytes(data)
        try:
            return read_image(tmp)
        except TricodecError as e:
            raise type(e)(str(e).replace(str(tmp), path)) from None


def _image_bytes(image, suffix: str) -> bytes:
    """A decoded image as the CLI writes it, in the format ``suffix`` names."""
    from .pixels import write_image

    with tempfile.TemporaryDirectory(prefix="tricodec-") as d:
        tmp = Path(d) / ("output" + suffix)
        write_image(image, tmp, suffix)
        return tmp.read_bytes()


class CodecWorker:
    """Ray Data callable class: one per actor; loads the weights once, then codes batches of pairs."""

    def __init__(self, op: str, device: str, model, force: bool):
        from . import codec  # noqa: F401  (import and, for GPUs, backend set-up once per actor)
        from .backend import get_backend
        from .model import load_model

        self.op, self.device, self.force = op, device, force
        get_backend(device)
        self.model = load_model(model) if (model is not None or op == "encode") else None

    def _encode(self, src: str, dst: str, rename: bool):
        from . import codec
        from .pixels import pixel_bytes

        if not self.force and remote.exists(dst):  # before the work, not after it
            raise FileExistsError(f"{dst} exists (use --force to overwrite)")
        image = read_input_image(src)
        data = codec.encode(image, device=self.device, model=self.model)
        remote.write_bytes_atomic(dst, data, self.force)
        return dst, len(pixel_bytes(image)), len(data)

    def _decode(self, src: str, dst: str, rename: bool):
        from . import codec
        from .pixels import pixel_bytes

        data = remote.read_bytes(src)
        image = codec.decode_any(data, device=self.device, model=self.model)
        if rename:
            folder = dst[:len(dst) - len(posixpath.basename(dst))]
            dst = folder + decoded_name(posixpath.basename(dst), image)
        out = _image_bytes(image, _suffix(dst))
        if _same_path(src, dst):
            raise FileExistsError("output would overwrite the source")
        remote.write_bytes_atomic(dst, out, self.force)
        return dst, len(data), len(pixel_bytes(image))

    def __call__(self, batch):
        work = self._encode if self.op == "encode" else self._decode
        rows = {"src": [], "dst": [], "error": [], "bytes_in": [], "bytes_out": []}
        for src, dst, rename in zip(batch["src"], batch["dst"], batch["rename"]):
            src, dst = str(src), str(dst)
            err, n_in, n_out = "", 0, 0
            try:
                if _same_path(src, dst):
                    raise FileExistsError("output would overwrite the source")
                dst, n_in, n_out = work(src, dst, bool(rename))
            except (TricodecError, OSError) as e:
                msg = str(e) or type(e).__name__
                err = msg if msg.startswith(src) else f"{src}: {msg}"
            except Exception as e:  # a bug must not stop the other files; it is still reported
                err = f"{src}: internal error ({type(e).__name__}: {e})"
            rows["src"].append(src)
            rows["dst"].append(dst)
            rows["error"].append(err)
            rows["bytes_in"].append(n_in)
            rows["bytes_out"].append(n_out)
        return rows


# ---- the pipeline ----

def _actors(device: str, ray, num_actors: int | None, n_files: int) -> tuple[str, dict, int]:
    """(device for the actors, their resource request, pool size)."""
    resources = ray.cluster_resources()
    gpus, cpus = int(resources.get("GPU", 0)), max(1, int(resources.get("CPU", 1)))
    if device == "cuda" and gpus == 0:
        raise TricodecError("device 'cuda' asked for, but the Ray cluster has no GPU")
    use_gpu = gpus > 0 and device in ("auto", "cuda", "triton")
    actor_device = ("cuda" if device == "auto" else device) if use_gpu else ("cpu" if device == "auto" else device)
    request = {"num_gpus": 1} if use_gpu else {"num_cpus": 1}
    size = num_actors or (gpus if use_gpu else cpus)
    return actor_device, request, max(1, min(size, n_files))


def _run(op: str, src, dst, *, device: str, model, force: bool, address, num_actors: int | None) -> dict:
    from .backend import DEVICES

    if device not in DEVICES:
        raise TricodecError(f"unknown device {device!r} (one of {', '.join(DEVICES)})")
    t0 = time.perf_counter()
    src, dst = os.fspath(src), os.fspath(dst)
    pairs = plan(src, dst, op)
    summary = {"files": len(pairs), "ok": 0, "failed": [], "bytes_in": 0, "bytes_out": 0, "seconds": 0.0}
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
        actor_device, request, size = _actors(device, ray, num_actors, len(pairs))
        items = [{"src": s, "dst": d, "rename": r} for s, d, r in pairs]
        ds = ray.data.from_items(items, override_num_blocks=min(len(items), 4 * size))
        ds = ds.map_batches(CodecWorker, batch_size=_BATCH_SIZE, compute=ray.data.ActorPoolStrategy(size=size),
                            fn_constructor_kwargs={"op": op, "device": actor_device, "model": model,
                                                   "force": force},
                            **request)
        for row in ds.iter_rows():
            if row["error"]:
                summary["failed"].append((row["src"], row["error"]))
            else:
                summary["ok"] += 1
                summary["bytes_in"] += int(row["bytes_in"])
                summary["bytes_out"] += int(row["bytes_out"])
        summary["failed"].sort()
    summary["seconds"] = time.perf_counter() - t0
    return summary


def encode_tree_ray(src, dst, *, device: str = "auto", model=None, force: bool = False, address: str | None = None,
                    num_actors: int | None = None) -> dict:
    """Encode an image file or a folder tree (local or URL) into ``.tric`` files, on Ray.

    Args:
        src, dst: local paths or fsspec URLs; a folder is mirrored (``a/b.png`` -> ``a/b.png.tric``).
        device: ``"auto"`` (GPU actors when the cluster has GPUs, else CPU actors), ``"cpu"``, ``"cuda"``.
        model: as for :func:`tricodec.encode`; loaded on the driver and shipped to the actors.
        force: overwrite existing outputs.
        address: None for a local Ray (started, or the one already running), ``"auto"``, or
            ``"ray://host:10001"``.
        num_actors: pool size (default: one per GPU, or per CPU, of the cluster; at most one per file).

    Returns:
        ``{"files", "ok", "failed": [(input, message)], "bytes_in", "bytes_out", "seconds"}``.

    Raises:
        TricodecError: Ray missing, bad device or weights. FileNotFoundError: ``src`` does not exist.
    """
    return _run("encode", src, dst, device=device, model=model, force=force, address=address,
                num_actors=num_actors)


def decode_tree_ray(src, dst, *, device: str = "auto", model=None, force: bool = False, address: str | None = None,
                    num_actors: int | None = None) -> dict:
    """Decode a ``.tric`` file or a folder tree of them (local or URL) into images, on Ray.

    Images are written as the CLI writes them: PNG, TIFF for modes PNG cannot hold, 16-bit PNG for
    16-bit colour. Arguments and result as for :func:`encode_tree_ray` (``model``: the weights the files
    need when they are not shipped ones)."""
    return _run("decode", src, dst, device=device, model=model, force=force, address=address,
                num_actors=num_actors)


def code_tree_local(op: str, src, dst, *, device: str = "auto", model=None, force: bool = False) -> dict:
    """The same per-file work as the Ray pipeline, in this process, without Ray: what the CLI runs for
    fsspec URLs when ``--ray`` is not asked for. ``op`` is ``"encode"`` or ``"decode"``; result as for
    :func:`encode_tree_ray`."""
    t0 = time.perf_counter()
    pairs = plan(os.fspath(src), os.fspath(dst), op)
    summary = {"files": len(pairs), "ok": 0, "failed": [], "bytes_in": 0, "bytes_out": 0, "seconds": 0.0}
    if pairs:
        worker = CodecWorker(op, device, model, force)
        rows = worker({"src": [s for s, _, _ in pairs], "dst": [d for _, d, _ in pairs],
                       "rename": [r for _, _, r in pairs]})
        for src_, err, n_in, n_out in zip(rows["src"], rows["error"], rows["bytes_in"], rows["bytes_out"]):
            if err:
                summary["failed"].append((src_, err))
            else:
                summary["ok"] += 1
                summary["bytes_in"] += n_in
                summary["bytes_out"] += n_out
    summary["seconds"] = time.perf_counter() - t0
    return summary
