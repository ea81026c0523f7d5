"""tricodec command line: encode, decode, info, verify.

Exit codes: 0 every file succeeded; 1 at least one file failed (each failure is one line on stderr,
and the other files are still processed); 2 usage error (bad option, missing path, unknown device).
"""
from __future__ import annotations

import fnmatch
import io
import itertools
import json
import os
import sys
import tempfile
import time
import warnings
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, List, Optional

import numpy as np
import typer
from PIL import Image

from tricodec import codec
from tricodec import deep
from tricodec import frames as tframes
from tricodec.backend import DEVICES, get_backend, image_workers
from tricodec.errors import EncodeError, TricodecError, WriteError
from tricodec.model import load_model
from tricodec.pixels import (DEFAULT_PNG_LEVEL, IMAGE_SUFFIXES, OUTPUT_FORMATS, TRIC_SUFFIX, check_writable,
                             decoded_name, describe, normalize, output_suffix, pixel_bytes, write_image)

EXAMPLES = """
Examples:

  tricodec encode photos/ packed/            # mirror a tree: photos/a/b.jpg -> packed/a/b.jpg.tric
  tricodec decode packed/ restored/          # PNG out (TIFF for modes PNG cannot hold)
  tricodec verify packed/ photos/            # decode, check CRCs, compare with the originals
  tricodec encode photo.png - > photo.tric   # '-' is stdin/stdout for single files
  tricodec info photo.tric --json

Exit codes: 0 all files succeeded, 1 some file failed, 2 usage error.
"""

app = typer.Typer(add_completion=False, no_args_is_help=True, rich_markup_mode=None,
                  help="tricodec: lossless image compression.\n" + EXAMPLES)

SUFFIX = TRIC_SUFFIX
STDIO = Path("-")

DeviceOpt = typer.Option("auto", "--device", help=f"backend: {', '.join(DEVICES)}")
ForceOpt = typer.Option(False, "--force", help="overwrite existing outputs (never a source)")
JobsOpt = typer.Option(2, "--jobs", "-j", min=1, help="reader/writer threads")
WorkersOpt = typer.Option(0, "--workers", min=0, help="images coded at once (0: automatic, up to 4 on the "
                                                        "CPU backend, 1 on a GPU)")
QuietOpt = typer.Option(False, "--quiet", "-q", help="no progress bar or summary; errors only")
JsonOpt = typer.Option(False, "--json", help="print the summary as JSON on stdout")
IncludeOpt = typer.Option(None, "--include", help="only files whose path (relative to SRC) matches this glob; repeatable")
ExcludeOpt = typer.Option(None, "--exclude", help="skip files whose relative path matches this glob; repeatable")


def _fail(msg: str) -> None:
    typer.echo(f"error: {msg}", err=True)


def _usage(msg: str) -> None:
    _fail(msg)
    raise typer.Exit(2)


def _check_device(device: str) -> None:
    try:
        get_backend(device)
    except TricodecError as e:
        _usage(str(e))


def write_atomic(path: Path, write: Callable[[Path], None], force: bool) -> None:
    """Write through a temporary file in the target folder, then move it into place in one step: without
    ``force`` an exclusive create (``os.link`` fails if the name exists), so two writers of one name
    cannot both succeed and an existing file is never replaced; with ``force`` a rename."""
    if path.exists() and not force:   # cheap early refusal; the real guard is the exclusive create below
        raise FileExistsError(f"{path} exists (use --force to overwrite)")
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part", dir=path.parent)
    os.close(fd)
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes 0600; outputs get the usual permissions
    try:
        write(Path(tmp))
        if force:
            os.replace(tmp, path)
        else:
            _create_exclusive(Path(tmp), path)
    finally:
        Path(tmp).unlink(missing_ok=True)


def _create_exclusive(tmp: Path, path: Path) -> None:
    """Give ``tmp``'s content the name ``path`` only if no file has that name; FileExistsError otherwise."""
    try:
        os.link(tmp, path)   # atomic: fails with EEXIST when the name is taken, even by a racing writer
        return
    except FileExistsError:
        raise FileExistsError(f"{path} exists (use --force to overwrite)") from None
    except OSError:
        pass                 # a file system without hard links: reserve the name, then rename onto it
    try:
        os.close(os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o666))
    except FileExistsError:
        raise FileExistsError(f"{path} exists (use --force to overwrite)") from None
    os.replace(tmp, path)


def _matches(rel: str, include: Optional[List[str]], exclude: Optional[List[str]]) -> bool:
    if include and not any(fnmatch.fnmatch(rel, g) for g in include):
        return False
    return not (exclude and any(fnmatch.fnmatch(rel, g) for g in exclude))


def _pairs(src: Path, dst: Path, why_not, out_name, include=None, exclude=None):
    """([(input, output)], [(ignored file, reason)]): a file to a file (or into an existing folder), or a
    tree mirrored. ``why_not(path)`` says why a file of a folder is no input (None: it is one); files left
    out by --include/--exclude are not listed, every other file of the tree is either an input or ignored."""
    if src == STDIO:
        return [(src, dst)], []
    if not src.exists():
        _usage(f"{src} does not exist")
    if src.is_dir():
        pairs, ignored = [], []
        for p in sorted(p for p in src.rglob("*") if p.is_file()
                        and _matches(p.relative_to(src).as_posix(), include, exclude)):
            reason = why_not(p)
            if reason is None:
                pairs.append((p, dst / p.relative_to(src).parent / out_name(p)))
            else:
                ignored.append((p, reason))
        return pairs, ignored
    if dst != STDIO and (dst.is_dir() or str(dst).endswith(os.sep)):
        return [(src, dst / out_name(src))], []
    return [(src, dst)], []


def _readable_suffixes() -> set[str]:
    """Suffixes of the formats Pillow can open (not write-only ones such as .pdf, nor stubs that need a
    handler installed, such as .h5), plus those of tricodec's own full-depth readers; never .tric."""
    from PIL import ImageFile

    def opens(fmt: str) -> bool:
        factory = Image.OPEN.get(fmt, (None,))[0]
        return factory is not None and not (isinstance(factory, type) and issubclass(factory, ImageFile.StubImageFile))

    return ({ext for ext, fmt in Image.registered_extensions().items() if opens(fmt)} | IMAGE_SUFFIXES) - {SUFFIX}


def _not_an_image(path: Path, suffixes: set[str]) -> Optional[str]:
    """Why a file of a folder is not encoded (None: it is). A known suffix is enough (a file that then
    cannot be read is a failure, not a skip); any other file is tried with Pillow, which reads its header."""
    if path.name.endswith(SUFFIX):
        return "already a .tric file"
    if path.suffix.lower() in suffixes:
        return None
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            with Image.open(path):
                return None
    except Exception as e:  # Pillow raises many types for what it cannot identify
        return f"not an image Pillow can open ({type(e).__name__})"


def _not_tric(path: Path) -> Optional[str]:
    return None if path.name.endswith(SUFFIX) else "not a .tric file"


@dataclass
class Summary:
    files: int = 0
    ok: int = 0
    skipped: int = 0
    failed: list = field(default_factory=list)
    raw_bytes: int = 0       # pixel bytes (H x W x C x bytes per sample)
    coded_bytes: int = 0     # .tric bytes
    seconds: float = 0.0
    ignored: list = field(default_factory=list)   # (file, reason): files of the tree that are no input

    def as_dict(self) -> dict:
        return {"files": self.files, "ok": self.ok, "skipped": self.skipped, "failed": len(self.failed),
                "failures": [{"file": f, "error": m} for f, m in self.failed],
                "ignored": [{"file": f, "reason": r} for f, r in self.ignored], "raw_bytes": self.raw_bytes,
                "coded_bytes": self.coded_bytes,
                "ratio": round(self.raw_bytes / self.coded_bytes, 4) if self.coded_bytes else None,
                "mb_per_s": round(self.raw_bytes / 1e6 / self.seconds, 3) if self.seconds else None,
                "seconds": round(self.seconds, 3)}


def _progress(total: int, quiet: bool, verb: str):
    if quiet or total <= 1 or not sys.stderr.isatty():
        return None
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    return Progress(TextColumn(verb), BarColumn(), MofNCompleteColumn(), TextColumn("{task.fields[rate]}"),
                    TimeRemainingColumn(), console=Console(stderr=True), transient=True)


IN_FLIGHT_BYTES = 64 << 20  # raw pixel bytes coded at once by a directory run (one bigger image always runs)


def run_pipeline(pairs, load, compute, store, *, jobs: int, quiet: bool, as_json: bool, verb: str,
                 writes_outputs: bool = True, workers: int = 1, weight=None, compute_batch=None,
                 batch: int = 1, ignored=()) -> None:
    """Files flow through three stages: ``load`` (reader threads) -> ``compute`` (``workers`` codec
    threads; the codec also runs its lanes in parallel) -> ``store`` (writer threads). At most ``2 * jobs``
    files wait to be computed and to be written, and ``workers`` are computed at once, so memory stays
    flat whatever the number of files; ``weight(item)`` (raw pixel bytes) keeps big images from being
    coded side by side (at most IN_FLIGHT_BYTES at once, or one image). With ``compute_batch`` and
    ``batch`` > 1 (GPU backends) up to ``batch`` files are coded in one call, their lanes sharing kernel
    launches; if that call fails, the files are coded one by one so each failure is its own. A failing
    file is reported and skipped. ``ignored``: (file, reason) of the files the walk left out, reported.

    load(src, dst) -> item | None (None: nothing to do, counted as skipped)
    compute(src, item) -> (result, raw_bytes, coded_bytes)
    store(src, dst, result) -> None
    compute_batch(srcs, items) -> [(result, raw_bytes, coded_bytes) or an exception, per item]
    """
    stages = _Stages(load, compute, store, compute_batch, weight)
    run = _Pipeline(stages, len(pairs), jobs=jobs, workers=max(1, workers), batch=max(1, batch),
                    writes_outputs=writes_outputs, quiet=quiet, verb=verb)
    run.summary.ignored = [(str(f), r) for f, r in ignored]
    run.run(pairs)
    _report(run.summary, verb, quiet, as_json)
    if run.summary.failed:
        raise typer.Exit(1)


@dataclass
class _Stages:
    """The caller's work, one function per stage (see run_pipeline)."""
    load: Callable
    compute: Callable
    store: Callable
    compute_batch: Optional[Callable]
    weight: Optional[Callable]


class _Pipeline:
    """One run of run_pipeline: reads are submitted ahead in a window, loaded files are grouped into
    batches, batches go to the coders, results to the writers; every file ends in ``summary`` as ok,
    skipped or failed, in the order of ``pairs``."""

    def __init__(self, stages: _Stages, total: int, *, jobs: int, workers: int, batch: int,
                 writes_outputs: bool, quiet: bool, verb: str):
        self.stages, self.jobs, self.workers, self.batch = stages, jobs, workers, batch
        self.writes_outputs = writes_outputs
        self.window = 2 * jobs
        self.summary = Summary(files=total)
        self.bar = _progress(total, quiet, verb)
        self.task = self.bar.add_task(verb, total=total, rate="") if self.bar else None
        self.computes: deque = deque()   # (group of (src, dst, item), future of its results, raw bytes)
        self.writes: deque = deque()     # (src, future of its store, raw bytes, coded bytes)
        self.t0 = time.perf_counter()

    # ---- the summary and the progress bar ----

    def advance(self) -> None:
        if self.bar:
            rate = self.summary.raw_bytes / 1e6 / max(time.perf_counter() - self.t0, 1e-9)
            self.bar.update(self.task, advance=1, rate=f"{rate:.1f} MB/s")

    def failed(self, src, e: BaseException) -> None:
        msg = str(e) if isinstance(e, (TricodecError, OSError)) else f"internal error ({type(e).__name__}: {e})"
        msg = msg if msg.startswith(str(src)) else f"{src}: {msg}"
        self.summary.failed.append((str(src), msg))
        if self.bar:
            self.bar.console.print(f"error: {msg}", style="red", markup=False, highlight=False)
        else:
            _fail(msg)
        self.advance()

    # ---- stage 3: writes, settled in order ----

    def settle(self, keep: int) -> None:
        """Wait for the oldest writes until at most ``keep`` are in flight."""
        while len(self.writes) > keep:
            src, fut, raw, coded = self.writes.popleft()
            try:
                fut.result()
            except Exception as e:
                self.failed(src, e)
                continue
            self.summary.ok += 1
            self.summary.raw_bytes += raw
            self.summary.coded_bytes += coded
            self.advance()

    # ---- stage 2: coding ----

    def code_group(self, group) -> list:
        """Results of a group of loaded files: one batch call, or one call per file (also when the batch
        call fails, so that each failure is the file's own)."""
        if self.stages.compute_batch is not None and len(group) > 1:
            try:
                return self.stages.compute_batch([g[0] for g in group], [g[2] for g in group])
            except Exception:
                pass
        out = []
        for src, _, item in group:
            try:
                out.append(self.stages.compute(src, item))
            except Exception as e:
                out.append(e)
        return out

    def finish(self, keep: int, room: int = 0) -> None:
        """Hand finished groups to the writers until at most ``keep`` are coding and, with ``room`` more
        bytes to come, at most IN_FLIGHT_BYTES of raw pixels are in flight (one group always may)."""
        while len(self.computes) > keep or (self.computes and
                                            sum(c[2] for c in self.computes) + room > IN_FLIGHT_BYTES):
            group, fut, _ = self.computes.popleft()
            for (src, dst, _), r in zip(group, fut.result()):
                if isinstance(r, BaseException):
                    self.failed(src, r)
                    continue
                result, raw, coded = r
                self.writes.append((src, self.writers.submit(self.stages.store, src, dst, result), raw, coded))
                self.settle(self.window)

    def submit(self, group, size: int) -> None:
        self.finish(self.workers - 1, size)
        self.computes.append((group, self.coders.submit(self.code_group, group), size))

    # ---- stage 1: reads, in order, a window ahead ----

    def loaded(self, src, dst, fut):
        """The loaded item of a file, or None when it is skipped or failed (counted either way)."""
        try:
            if self.writes_outputs and src != STDIO and dst != STDIO and dst.resolve() == src.resolve():
                raise FileExistsError("output would overwrite the source")
            item = fut.result()
        except Exception as e:
            self.failed(src, e)
            return None
        if item is None:
            self.summary.skipped += 1
            self.advance()
        return item

    def run(self, pairs) -> None:
        with ThreadPoolExecutor(self.jobs, thread_name_prefix="read") as readers, \
                ThreadPoolExecutor(self.workers, thread_name_prefix="code") as self.coders, \
                ThreadPoolExecutor(self.jobs, thread_name_prefix="write") as self.writers:
            if self.bar:
                self.bar.start()
            todo = iter(pairs)
            loads = deque((pair, readers.submit(self.stages.load, *pair))
                          for pair in itertools.islice(todo, self.window))
            pending, pending_size = [], 0   # loaded files waiting to fill a batch
            while loads:
                (src, dst), fut = loads.popleft()
                nxt = next(todo, None)
                if nxt is not None:
                    loads.append((nxt, readers.submit(self.stages.load, *nxt)))
                item = self.loaded(src, dst, fut)
                if item is None:
                    continue
                pending.append((src, dst, item))
                pending_size += self.stages.weight(item) if self.stages.weight else 0
                del item, fut
                if len(pending) >= self.batch or pending_size >= IN_FLIGHT_BYTES:
                    self.submit(pending, pending_size)
                    pending, pending_size = [], 0
            if pending:
                self.submit(pending, pending_size)
            self.finish(0)
            self.settle(0)
            if self.bar:
                self.bar.stop()
        self.summary.seconds = time.perf_counter() - self.t0


def _report(summary: Summary, verb: str, quiet: bool, as_json: bool) -> None:
    if as_json:
        typer.echo(json.dumps(summary.as_dict()))
    elif not quiet:
        d = summary.as_dict()
        ratio = f", ratio {d['ratio']:.3f}" if d["ratio"] else ""
        speed = f", {d['mb_per_s']:.1f} MB/s" if d["mb_per_s"] else ""
        skipped = f", {summary.skipped} skipped" if summary.skipped else ""
        typer.echo(f"{verb} {summary.ok}/{summary.files} files{skipped}, {summary.raw_bytes} pixel bytes <-> "
                   f"{summary.coded_bytes} coded bytes{ratio} in {summary.seconds:.2f} s{speed}; "
                   f"{len(summary.failed)} failed{_ignored_line(summary.ignored)}", err=True)


IGNORED_SHOWN = 10  # ignored files named in the text summary (--json lists them all)


def _ignored_line(ignored: list) -> str:
    """'; N ignored: file (reason), ...' for the text summary; every file and reason is in --json."""
    if not ignored:
        return ""
    shown = ", ".join(f"{f} ({r})" for f, r in ignored[:IGNORED_SHOWN])
    more = f", and {len(ignored) - IGNORED_SHOWN} more (--json lists them)" if len(ignored) > IGNORED_SHOWN else ""
    return f"; {len(ignored)} ignored: {shown}{more}"


def _read_stdin() -> bytes:
    return sys.stdin.buffer.read()


def _write_out(dst: Path, data: bytes, force: bool) -> None:
    if dst == STDIO:
        sys.stdout.buffer.write(data)
        sys.stdout.buffer.flush()
    else:
        write_atomic(dst, lambda p: p.write_bytes(data), force)


RayOpt = typer.Option(False, "--ray", help="run as a Ray Data pipeline (local Ray, or the cluster at --address)")
AddressOpt = typer.Option(None, "--address", help="Ray cluster address, e.g. auto or ray://host:10001")


def _elsewhere(op, src: str, dst: str, device, model, force, use_ray, address, quiet, as_json) -> bool:
    """Run on Ray (``--ray``) or through fsspec (a URL source or destination); False: run locally here."""
    from tricodec import remote

    if not (use_ray or remote.is_url(src) or remote.is_url(dst)):
        return False
    if "-" in (src, dst):
        _usage("'-' (stdin/stdout) cannot be combined with --ray or URLs")
    from tricodec import ray_pipeline

    try:
        if use_ray:
            run = ray_pipeline.encode_tree_ray if op == "encode" else ray_pipeline.decode_tree_ray
            s = run(src, dst, device=device, model=model, force=force, address=address)
        else:
            s = ray_pipeline.code_tree_local(op, src, dst, device=device, model=model, force=force)
    except (TricodecError, FileNotFoundError) as e:
        _usage(str(e))
    summary = Summary(files=s["files"], ok=s["ok"], failed=s["failed"], seconds=s["seconds"],
                      raw_bytes=s["bytes_in"] if op == "encode" else s["bytes_out"],
                      coded_bytes=s["bytes_out"] if op == "encode" else s["bytes_in"],
                      ignored=[(str(f), r) for f, r in s.get("ignored", [])])
    for _, msg in summary.failed:
        _fail(msg)
    _report(summary, op + "d", quiet, as_json)
    if summary.failed:
        raise typer.Exit(1)
    return True


GPU_BATCH = 16  # files coded per call on a GPU backend (their lanes share the kernel launches)


def _gpu_batch(backend) -> int:
    """Files per codec call: GPU_BATCH on a GPU backend, 1 on the CPU (there images run side by side)."""
    return 1 if backend is None or backend.name == "cpu" else GPU_BATCH


def _image_weight(image) -> int:
    if isinstance(image, tframes.Frames):
        return sum(_image_weight(f.image) for f in image)
    if isinstance(image, np.ndarray):
        return int(image.nbytes)
    w, h = image.size
    return w * h * len(image.getbands())


def _tric_weight(data: bytes) -> int:
    try:
        header = codec.read_header(data)
    except TricodecError:
        return 0   # the decode reports it
    return header.width * header.height * max(1, header.channels)


def _same_pixels(a, b) -> bool:
    if isinstance(a, tframes.Frames) or isinstance(b, tframes.Frames):
        return isinstance(a, tframes.Frames) and isinstance(b, tframes.Frames) and tframes.same_frames(a, b)
    return describe(a)[:3] == describe(b)[:3] and pixel_bytes(a) == pixel_bytes(b)


# an input file as Frames (a multi-frame file) or one image, and its pixel bytes: as the Ray/URL pipeline
_raw_bytes = tframes.raw_size
_read_source = tframes.read_source


def _encode_any(image, device: str, model) -> bytes:
    return tframes.encode_source(image, device=device, model=model)


def _decode_any(data, device: str, model):
    """A single image, or the Frames of a multi-frame file."""
    return tframes.decode_source(data, device=device, model=model)


def _check_writable(image) -> None:
    """WriteError when ``tricodec decode`` could not write this input back whole (a multi-frame file: a
    full dry run of its writer, which reads its output back)."""
    if isinstance(image, tframes.Frames):
        tframes.write_frames(image, io.BytesIO(), png_level=DEFAULT_PNG_LEVEL)
    else:
        check_writable(image)


@app.command()
def encode(src: str = typer.Argument(..., help="image file, folder, fsspec URL, or - for stdin"),
           dst: str = typer.Argument(..., help="output .tric file, folder, fsspec URL, or - for stdout"),
           device: str = DeviceOpt, force: bool = ForceOpt, jobs: int = JobsOpt, workers: int = WorkersOpt,
           quiet: bool = QuietOpt, as_json: bool = JsonOpt, include: Optional[List[str]] = IncludeOpt,
           exclude: Optional[List[str]] = ExcludeOpt,
           model: Optional[Path] = typer.Option(None, "--model", help="weights file (default: shipped model)"),
           verify_output: bool = typer.Option(False, "--verify", help="decode each output and compare it with "
                                              "its source before writing it"),
           resume: bool = typer.Option(False, "--resume", help="skip outputs that exist and verify against "
                                       "their source; re-encode the others"),
           use_ray: bool = RayOpt, address: Optional[str] = AddressOpt):
    """Encode images losslessly. Folders are mirrored: photos/a/b.png -> packed/a/b.png.tric"""
    _check_device(device)
    if _elsewhere("encode", src, dst, device, model, force, use_ray, address, quiet, as_json):
        return
    src, dst = Path(src), Path(dst)
    try:
        m = load_model(model)
    except TricodecError as e:
        _usage(str(e))

    def load(s: Path, d: Path):
        if s == STDIO:
            from PIL import Image
            try:
                raw = _read_stdin()
                image = tframes.read_frames(raw) if tframes.is_multi_frame_file(io.BytesIO(raw)) else \
                    normalize(Image.open(io.BytesIO(raw)))
            except TricodecError:
                raise
            except Exception as e:
                raise EncodeError(f"stdin: cannot read image ({type(e).__name__}: {e})") from None
        else:
            image = _read_source(s)
        try:
            _check_writable(image)   # a file the CLI encodes, the CLI decodes whole
        except WriteError as e:
            raise EncodeError(f"{s}: tricodec decode could not write it back whole: {e}") from None
        if resume and d != STDIO and d.exists():
            try:
                if _same_pixels(_decode_any(d.read_bytes(), "cpu", m), image):
                    return None
            except TricodecError:
                pass  # a broken output of an interrupted run: encode again
        return image

    def compute(s: Path, image):
        data = _encode_any(image, device, m)
        if verify_output and not _same_pixels(_decode_any(data, device, m), image):
            raise TricodecError(f"{s}: verification failed, nothing written")
        return data, _raw_bytes(image), len(data)

    def compute_batch(srcs, images):
        if any(isinstance(im, tframes.Frames) for im in images):
            raise TypeError("multi-frame files are coded one by one")   # run_pipeline falls back to compute
        datas = codec.encode_batch(images, device=device, model=m)
        backs = codec.decode_batch(datas, device=device, model=m) if verify_output else None
        return [TricodecError(f"{s}: verification failed, nothing written")
                if backs is not None and not _same_pixels(backs[i], image)
                else (data, len(pixel_bytes(image)), len(data))
                for i, (s, image, data) in enumerate(zip(srcs, images, datas))]

    def store(s: Path, d: Path, data: bytes):
        _write_out(d, data, force or resume)

    suffixes = _readable_suffixes()
    pairs, ignored = _pairs(src, dst, lambda p: _not_an_image(p, suffixes), lambda p: p.name + SUFFIX,
                            include, exclude)
    run_pipeline(pairs, load, compute, store, jobs=jobs, quiet=quiet or dst == STDIO, as_json=as_json,
                 verb="encoded", workers=workers or image_workers(device), weight=_image_weight,
                 compute_batch=compute_batch, batch=_gpu_batch(codec.backend_for(device, m)), ignored=ignored)


def _header_mode(path: Path) -> Optional[str]:
    """The image mode a .tric file's header names (bytes 18-26, see tricodec/container.py), or None when
    the file is no .tric (its decode then fails and writes nothing)."""
    try:
        with open(path, "rb") as f:
            head = f.read(26)
        if len(head) < 26 or head[:4] != b"TRIC":
            return None
        return head[18:26].rstrip(b"\0").decode("ascii")
    except (OSError, UnicodeDecodeError):
        return None


def _clashes(pairs) -> dict:
    """{source: why} for every source whose output name another source of the run also gets (the one
    clash ``decoded_name`` allows: ``x.tric`` and ``x.png.tric``): writing both would lose one, so each
    of them fails instead (no arbitrary winner)."""
    by_output: dict = {}
    for s, d in pairs:
        if d != STDIO:
            by_output.setdefault(os.path.normcase(os.path.abspath(d)), (d, []))[1].append(s)
    out = {}
    for d, srcs in by_output.values():
        for s in srcs if len(srcs) > 1 else ():
            others = ", ".join(str(o) for o in srcs if o != s)
            out[s] = f"{s}: output {d} would also be written from {others}; decode it alone to another name"
    return out


@app.command()
def decode(src: str = typer.Argument(..., help=".tric file, folder, fsspec URL, or - for stdin"),
           dst: str = typer.Argument(..., help="output image file, folder, fsspec URL, or - for stdout"),
           device: str = DeviceOpt, force: bool = ForceOpt, jobs: int = JobsOpt, workers: int = WorkersOpt,
           quiet: bool = QuietOpt, as_json: bool = JsonOpt, include: Optional[List[str]] = IncludeOpt,
           exclude: Optional[List[str]] = ExcludeOpt,
           model: Optional[Path] = typer.Option(None, "--model", help="weights file the .tric files need"),
           out_format: Optional[str] = typer.Option(None, "--format", help="output format: png, tiff, ppm or npy "
                                                    "(default: the output file's suffix; for folders PNG, TIFF "
                                                    "for modes PNG cannot hold); a format that cannot hold an "
                                                    "image's pixels, mode or metadata is refused for that file"),
           png_level: int = typer.Option(DEFAULT_PNG_LEVEL, "--png-level", min=0, max=9,
                                         help="zlib level of PNG outputs: 0-9 (1: fast; 6 or 9: smaller files)"),
           use_ray: bool = RayOpt, address: Optional[str] = AddressOpt):
    """Decode .tric files. Images are written as PNG (TIFF for modes PNG cannot hold, or --format), named
    after their source: a.jpg.tric -> a.jpg.png, a.png.tric -> a.png; two sources never share an output."""
    _check_device(device)
    if out_format is not None and out_format.lower() not in OUTPUT_FORMATS:
        _usage(f"--format must be one of {', '.join(OUTPUT_FORMATS)}, not {out_format!r}")
    fmt_suffix = OUTPUT_FORMATS[out_format.lower()] if out_format else None
    from tricodec import remote
    if (use_ray or remote.is_url(src) or remote.is_url(dst)) and (out_format or png_level != DEFAULT_PNG_LEVEL):
        _usage("--format and --png-level are not supported with --ray or URLs (they write PNG, TIFF for modes "
               "PNG cannot hold)")
    if _elsewhere("decode", src, dst, device, model, force, use_ray, address, quiet, as_json):
        return
    src, dst = Path(src), Path(dst)
    try:
        m = load_model(model) if model is not None else None
    except TricodecError as e:
        _usage(str(e))

    def load(s: Path, d: Path):
        if s in clashes:
            raise FileExistsError(clashes[s])
        return _read_stdin() if s == STDIO else s.read_bytes()

    def compute(s: Path, data: bytes):
        image = _decode_any(data, device, m)
        return image, _raw_bytes(image), len(data)

    def compute_batch(srcs, datas):
        if any(tframes.is_frames(d) for d in datas):
            raise TypeError("multi-frame files are decoded one by one")   # run_pipeline falls back to compute
        images = codec.decode_batch(datas, device=device, model=m)
        return [(image, len(pixel_bytes(image)), len(data)) for image, data in zip(images, datas)]

    def store(s: Path, d: Path, image):
        if isinstance(image, tframes.Frames):
            _store_frames(d, image)
            return
        if d == STDIO:
            buf = io.BytesIO()
            write_image(image, buf, fmt_suffix or output_suffix(image), png_level=png_level)
            _write_out(d, buf.getvalue(), force)
            return
        write_atomic(d, lambda p: write_image(image, p, fmt_suffix or d.suffix, png_level=png_level), force)

    def _store_frames(d: Path, fr):
        """A multi-frame file is written back as a file of its kind (APNG, multi-page TIFF), nothing else."""
        tframes.check_output_suffix(fr, fmt_suffix or (d.suffix if d != STDIO and d.suffix else fr.suffix))
        if d == STDIO:
            buf = io.BytesIO()
            tframes.write_frames(fr, buf, png_level=png_level)
            _write_out(d, buf.getvalue(), force)
        else:
            write_atomic(d, lambda p: tframes.write_frames(fr, p, png_level=png_level), force)

    def out_name(p: Path) -> str:
        kind = tframes.kind_of_tric(p)
        if kind is not None:
            return decoded_name(p.name, None, fmt_suffix or tframes.KINDS[kind])
        return decoded_name(p.name, _header_mode(p), fmt_suffix)

    if fmt_suffix and dst != STDIO and not dst.is_dir() and not str(dst).endswith(os.sep) and not \
            Path(str(src)).is_dir() and dst.suffix and dst.suffix.lower() != fmt_suffix and \
            Image.registered_extensions().get(dst.suffix.lower()) != Image.registered_extensions().get(fmt_suffix):
        _usage(f"--format {out_format} but the output {dst} names another format")
    pairs, ignored = _pairs(src, dst, _not_tric, out_name, include, exclude)
    clashes = _clashes(pairs)
    run_pipeline(pairs, load, compute, store, jobs=jobs, quiet=quiet or dst == STDIO, as_json=as_json,
                 verb="decoded", workers=workers or image_workers(device), weight=_tric_weight,
                 compute_batch=compute_batch, batch=_gpu_batch(get_backend(device)),
                 ignored=ignored)


@app.command()
def info(file: Path = typer.Argument(..., help=".tric file"),
         as_json: bool = typer.Option(False, "--json", help="print JSON")):
    """Print a .tric file's header and the metadata it keeps."""
    try:
        data = file.read_bytes()
        frames = None
        if tframes.is_frames(data):
            header, kind, _, frames = tframes.read_frames_info(data)
            first = frames[0][1]
            meta = codec.read_metadata(first)
            first_header = codec.read_header(first)
        else:
            header = first_header = codec.read_header(data)
            meta = codec.read_metadata(data)
    except (TricodecError, OSError) as e:
        _fail(f"{file}: {e}")
        raise typer.Exit(1)
    d = {"file": str(file), "bytes": len(data)}
    if frames is not None:   # the first frame's header; every frame is a .tric file of its own
        d.update({"frames": len(frames), "kind": kind})
        header = first_header
    samples = header.width * header.height * header.channels
    if frames is not None:
        samples = sum(h.width * h.height * h.channels for h in (codec.read_header(one) for _, one in frames))
    d.update({"width": header.width, "height": header.height,
         "mode": header.mode, "channels": header.channels, "bit_depth": header.bit_depth,
         "coding": "fallback" if header.is_fallback else "model", "model": header.model_name or None,
         "model_hash": header.model_hash.hex() if not header.is_fallback else None,
         "crc32": f"{header.crc32:08x}",
         "bpsp": round(8 * len(data) / samples, 4),
         "metadata": {k: len(v) for k, v in meta.items()}})
    if frames is None and not header.is_fallback and header.bit_depth == 16:
        try:
            d["depth_split"] = deep.summary(data)
        except TricodecError as e:
            _fail(f"{file}: {e}")
            raise typer.Exit(1)
    if as_json:
        typer.echo(json.dumps(d))
    else:
        for k, v in d.items():
            typer.echo(f"{k:12s} {v}")


@app.command()
def verify(src: Path = typer.Argument(..., help=".tric file or folder"),
           originals: Optional[Path] = typer.Argument(None, help="original image or folder to compare pixels with"),
           device: str = DeviceOpt, jobs: int = JobsOpt, workers: int = WorkersOpt, quiet: bool = QuietOpt,
           as_json: bool = JsonOpt,
           model: Optional[Path] = typer.Option(None, "--model", help="weights file the .tric files need")):
    """Decode and check CRCs; with ORIGINALS also compare pixels and mode with the originals."""
    _check_device(device)
    try:
        m = load_model(model) if model is not None else None
    except TricodecError as e:
        _usage(str(e))

    def load(s: Path, orig: Path):
        return s.read_bytes(), (_read_source(orig) if originals is not None else None)

    def compute(s: Path, item):
        data, ref = item
        image = _decode_any(data, device, m)
        if ref is not None and not _same_pixels(ref, image):
            raise TricodecError(f"{s}: pixels differ from the original")
        return None, _raw_bytes(image), len(data)

    def orig_name(p: Path):
        return p.name[:-len(SUFFIX)] if p.name.endswith(SUFFIX) else p.name

    if originals is not None and not originals.exists():
        _usage(f"{originals} does not exist")
    pairs, ignored = _pairs(src, originals if originals is not None else src, _not_tric, orig_name)
    if originals is None:
        pairs = [(s, s) for s, _ in pairs]
    run_pipeline(pairs, load, compute, lambda s, d, r: None, jobs=jobs, quiet=quiet, as_json=as_json,
                 verb="verified", writes_outputs=False, workers=workers or image_workers(device),
                 weight=lambda item: _tric_weight(item[0]), ignored=ignored)


@app.command()
def bench(dirs: Optional[List[Path]] = typer.Argument(None, help="image folders (default: ../shared/data/dev "
                                                      "beside a checkout)"),
          repeat: int = typer.Option(3, "--repeat", min=1, help="timed runs per codec and image after a warm-up"),
          csv: Optional[Path] = typer.Option(None, "--csv", help="write per-image rows"),
          plot: Optional[Path] = typer.Option(None, "--plot", help="write a bpsp-vs-speed PNG (needs matplotlib)"),
          jxl_efforts: str = typer.Option("1,3,7", "--jxl-efforts", help="JPEG-XL efforts to run")):
    """Compare tricodec with PNG, WebP-lossless and JPEG-XL-lossless on the same images (the perf/ benchmark):
    bpsp, encode and decode MB/s, ratios to JPEG-XL e7. JPEG-XL needs pillow-jxl-plugin."""
    from tricodec.bench import main as bench_main

    argv = [str(d) for d in dirs or []] + ["--repeat", str(repeat), "--jxl-efforts", jxl_efforts]
    argv += ["--csv", str(csv)] if csv else []
    argv += ["--plot", str(plot)] if plot else []
    raise typer.Exit(bench_main(argv))


@app.command()
def train(data: Path = typer.Argument(..., help="folder of training images (RGB or grey; PNG, BMP, TIFF, PPM)"),
          out: Path = typer.Option(..., "--out", help="weights file to write (.npz)"),
          name: str = typer.Option("custom", "--name", help="model name stored in every file it encodes (1-8 ASCII)"),
          kind: str = typer.Option("wavefront", "--kind",
                                   help="wavefront: tric-wf2's kind (GPU-shaped context model); context: the "
                                        "per-symbol adaptive context model (tric-cx1's kind); block-scale: "
                                        "per-block table choice (the oldest kind: faster, ~5% larger); fused: "
                                        "a wavefront model's tables plus a table on the predictor's state "
                                        "(the default tric-wf3's kind: smaller files, slower to encode)"),
          base: Optional[str] = typer.Option(None, "--base",
                                             help="wavefront/context kinds: fine-tune from this model (name or "
                                                  "file; default tric-wf2 / tric-cx1); 'none' trains from your "
                                                  "images alone; fused: the wavefront model whose tables A, B "
                                                  "it keeps (default tric-wf2)"),
          base_weight: float = typer.Option(256.0, "--base-weight", min=0,
                                            help="the base model's tables count as this many symbols per context"),
          grain: float = typer.Option(0.0, "--grain", min=0, help="wavefront/context: also count a copy of each image "
                                                                  "with Gaussian grain of this many levels"),
          checkpoint: Optional[Path] = typer.Option(None, "--checkpoint",
                                                    help="wavefront/context: resumable counts file (resumed if present)"),
          tables: int = typer.Option(32, "--tables", min=2, max=256, help="block-scale kind: number of tables"),
          iterations: int = typer.Option(10, "--iterations", min=1, help="block-scale kind: Lloyd iterations"),
          crops: int = typer.Option(200, "--crops", min=1, help="block-scale kind: images sampled from DATA"),
          seed: int = typer.Option(0, "--seed"),
          val: Optional[Path] = typer.Option(None, "--val", help="held-out folder: report its bpsp before and after"),
          quiet: bool = QuietOpt,
          force: bool = ForceOpt):
    """Train a model on your own images; then `tricodec encode --model OUT ...` (and `tricodec decode
    --model OUT ...`: files name the weights they need)."""
    from tricodec.train import evaluate, image_files, train_tables
    from tricodec.train_context import train_context
    from tricodec.train_fused import train_fused
    from tricodec.train_wavefront import train_wavefront

    if not data.is_dir():
        _usage(f"{data} is not a folder")
    if kind not in ("wavefront", "context", "block-scale", "fused"):
        _usage(f"--kind must be wavefront, context, block-scale or fused, not {kind!r}")
    if out.exists() and not force:
        _usage(f"{out} exists (use --force to replace it)")
    reference = None        # what --val compares with: the model training started from, else the shipped default
    try:
        if kind in ("wavefront", "context"):
            fit = train_wavefront if kind == "wavefront" else train_context
            base = {"wavefront": "tric-wf2", "context": "tric-cx1"}[kind] if base is None else base
            reference = None if base == "none" else base
            n_files = len(image_files(data))
            bar = _progress(n_files, quiet, "counting")
            task = bar.add_task("counting", total=n_files, rate="") if bar else None
            if bar:
                bar.start()
            try:
                weights = fit(
                    data, name=name, seed=seed, grain=grain, checkpoint=checkpoint,
                    base=None if base in (None, "none") else base, base_weight=base_weight,
                    progress=(lambda i, n: bar.update(task, completed=i)) if bar else None)
            finally:
                if bar:
                    bar.stop()
        elif kind == "fused":
            n_files = len(image_files(data))
            bar = _progress(n_files, quiet, "counting")
            task = bar.add_task("counting", total=n_files, rate="") if bar else None
            if bar:
                bar.start()
            try:
                weights = train_fused(data, name=name, base="tric-wf2" if base in (None, "none") else base,
                                      progress=(lambda i, n: bar.update(task, completed=i)) if bar else None)
            finally:
                if bar:
                    bar.stop()
        else:
            weights = train_tables(data, name=name, tables=tables, crops=crops, iterations=iterations, seed=seed,
                                   progress=None if quiet else lambda it, bits: typer.echo(
                                       f"iteration {it}: {bits:.4f} bits per symbol (training images)", err=True))
    except (ValueError, OSError, TricodecError) as e:
        _usage(str(e))
    write_atomic(out, lambda p: p.write_bytes(weights), force)
    typer.echo(f"wrote {out}", err=True)
    if val is not None:
        typer.echo(f"validation bpsp on {val}: {reference or 'shipped default'} {evaluate(reference, val):.4f}, "
                   f"trained {evaluate(weights, val):.4f}", err=True)


def main() -> None:  # pragma: no cover
    app()


if __name__ == "__main__":  # pragma: no cover
    sys.exit(app())
