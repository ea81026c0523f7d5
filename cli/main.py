"""tricodec command line: encode, decode, info, verify.

Exit codes: 0 every file succeeded; 1 at least one file failed (each failure is one line on stderr,
and the other files are still processed); 2 usage error (bad option, missing path, unknown device).
"""
from __future__ import annotations

import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Optional

import typer

from tricodec import codec
from tricodec.backend import DEVICES, get_backend
from tricodec.errors import TricodecError
from tricodec.model import load_model
from tricodec.pixels import describe, output_suffix, pixel_bytes, read_image, write_image

app = typer.Typer(add_completion=False, no_args_is_help=True,
                  help="tricodec: lossless image compression. `tricodec encode photos/ packed/`, "
                       "`tricodec decode packed/ restored/`.")

SUFFIX = ".tric"
IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".gif", ".webp", ".ppm", ".pgm", ".pbm",
                  ".pnm", ".tga", ".jxl", ".qoi", ".ico", ".im", ".pcx", ".sgi", ".dib"}

DeviceOpt = typer.Option("auto", "--device", help=f"backend: {', '.join(DEVICES)}")
ForceOpt = typer.Option(False, "--force", help="overwrite existing outputs")


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


def write_atomic(path: Path, write, force: bool) -> None:
    """Write through a temporary file in the target folder and rename it into place."""
    if path.exists() and not force:
        raise FileExistsError(f"{path} exists (use --force to overwrite)")
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part", dir=path.parent)
    os.close(fd)
    try:
        write(Path(tmp))
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _pairs(src: Path, dst: Path, is_input, out_name) -> list[tuple[Path, Path]]:
    """(input, output) pairs: a file to a file (or into an existing folder), or a tree mirrored."""
    if not src.exists():
        _usage(f"{src} does not exist")
    if src.is_dir():
        files = sorted(p for p in src.rglob("*") if p.is_file() and is_input(p))
        return [(p, dst / p.relative_to(src).parent / out_name(p)) for p in files]
    if dst.is_dir() or str(dst).endswith(os.sep):
        return [(src, dst / out_name(src))]
    return [(src, dst)]


def _run(pairs, work, verb: str) -> None:
    failed = 0
    t0 = time.perf_counter()
    n_in = n_out = 0
    for src, dst in pairs:
        try:
            if dst.resolve() == src.resolve():
                raise FileExistsError("output would overwrite the source")
            a, b = work(src, dst)
            n_in += a
            n_out += b
        except (TricodecError, OSError) as e:
            failed += 1
            msg = str(e)
            _fail(msg if msg.startswith(str(src)) else f"{src}: {msg}")
        except Exception as e:  # a bug must not stop the other files; it is still reported as a failure
            failed += 1
            _fail(f"{src}: internal error ({type(e).__name__}: {e})")
    dt = time.perf_counter() - t0
    ok = len(pairs) - failed
    typer.echo(f"{verb} {ok}/{len(pairs)} files, {n_in} -> {n_out} bytes in {dt:.2f} s", err=True)
    if failed:
        raise typer.Exit(1)


@app.command()
def encode(src: Path = typer.Argument(..., help="image file or folder"),
           dst: Path = typer.Argument(..., help="output .tric file or folder"),
           device: str = DeviceOpt, force: bool = ForceOpt,
           model: Optional[Path] = typer.Option(None, "--model", help="weights file (default: shipped model)"),
           verify_output: bool = typer.Option(False, "--verify", help="decode each output and compare it with "
                                              "its source before writing it"),
           resume: bool = typer.Option(False, "--resume", help="skip outputs that exist and verify against "
                                       "their source; re-encode the others")):
    """Encode images losslessly. Folders are mirrored: photos/a/b.png -> packed/a/b.png.tric"""
    _check_device(device)
    try:
        m = load_model(model)
    except TricodecError as e:
        _usage(str(e))

    def work(s: Path, d: Path):
        image = read_image(s)
        if resume and d.exists():
            try:
                if _same_pixels(codec.decode_any(d.read_bytes(), device=device, model=m), image):
                    return 0, 0
            except TricodecError:
                pass  # a broken output of an interrupted run: encode again
        data = codec.encode(image, device=device, model=m)
        if verify_output and not _same_pixels(codec.decode_any(data, device=device, model=m), image):
            raise TricodecError(f"{s}: verification failed, nothing written")
        write_atomic(d, lambda p: p.write_bytes(data), force or resume)
        return len(pixel_bytes(image)), len(data)

    _run(_pairs(src, dst, lambda p: p.suffix.lower() in IMAGE_SUFFIXES, lambda p: p.name + SUFFIX), work, "encoded")


def _same_pixels(a, b) -> bool:
    return describe(a)[:3] == describe(b)[:3] and pixel_bytes(a) == pixel_bytes(b)


def _decoded_name(p: Path, image) -> str:
    stem = p.name[:-len(SUFFIX)] if p.name.endswith(SUFFIX) else p.name
    base = Path(stem)
    return (base.stem if base.suffix.lower() in IMAGE_SUFFIXES else stem) + output_suffix(image)


@app.command()
def decode(src: Path = typer.Argument(..., help=".tric file or folder"),
           dst: Path = typer.Argument(..., help="output image file or folder"),
           device: str = DeviceOpt, force: bool = ForceOpt,
           model: Optional[Path] = typer.Option(None, "--model", help="weights file the .tric files need")):
    """Decode .tric files. Images are written as PNG (TIFF for modes PNG cannot hold)."""
    _check_device(device)
    try:
        m = load_model(model) if model is not None else None
    except TricodecError as e:
        _usage(str(e))
    dir_mode = src.is_dir() or dst.is_dir() or str(dst).endswith(os.sep)

    def work(s: Path, d: Path):
        data = s.read_bytes()
        image = codec.decode_any(data, device=device, model=m)
        if dir_mode:
            d = d.with_name(_decoded_name(s, image))
        write_atomic(d, lambda p: write_image(image, p, d.suffix), force)
        return len(data), len(pixel_bytes(image))

    _run(_pairs(src, dst, lambda p: p.name.endswith(SUFFIX), lambda p: p.name), work, "decoded")


@app.command()
def info(file: Path = typer.Argument(..., help=".tric file"),
         as_json: bool = typer.Option(False, "--json", help="print JSON")):
    """Print a .tric file's header."""
    try:
        data = file.read_bytes()
        header = codec.read_header(data)
        meta = codec.read_metadata(data)
    except (TricodecError, OSError) as e:
        _fail(f"{file}: {e}")
        raise typer.Exit(1)
    d = {"file": str(file), "bytes": len(data), "width": header.width, "height": header.height,
         "mode": header.mode, "channels": header.channels, "bit_depth": header.bit_depth,
         "coding": "fallback" if header.is_fallback else "model", "model": header.model_name or None,
         "model_hash": header.model_hash.hex() if not header.is_fallback else None,
         "pixel_crc32": f"{header.pixel_crc32:08x}",
         "bpsp": round(8 * len(data) / (header.width * header.height * header.channels), 4),
         "metadata": {k: len(v) for k, v in meta.items()}}
    if as_json:
        typer.echo(json.dumps(d))
    else:
        for k, v in d.items():
            typer.echo(f"{k:12s} {v}")


@app.command()
def verify(src: Path = typer.Argument(..., help=".tric file or folder"),
           originals: Optional[Path] = typer.Argument(None, help="original image or folder to compare pixels with"),
           device: str = DeviceOpt):
    """Decode and check CRCs; with ORIGINALS also compare pixels and mode with the originals."""
    _check_device(device)

    def work(s: Path, orig: Path):
        data = s.read_bytes()
        image = codec.decode_any(data, device=device)
        if originals is not None:
            if not orig.exists():
                raise FileNotFoundError(f"no original {orig}")
            if not _same_pixels(read_image(orig), image):
                raise TricodecError(f"{s}: pixels differ from {orig}")
        return len(data), len(pixel_bytes(image))

    def orig_name(p: Path):
        return p.name[:-len(SUFFIX)] if p.name.endswith(SUFFIX) else p.name

    target = originals if originals is not None else src
    pairs = _pairs(src, target, lambda p: p.name.endswith(SUFFIX), orig_name)
    if originals is None:
        pairs = [(s, s.with_name(s.name + ".orig-not-compared")) for s, _ in pairs]
    _run(pairs, work, "verified")


def main() -> None:  # pragma: no cover
    app()


if __name__ == "__main__":  # pragma: no cover
    sys.exit(app())
