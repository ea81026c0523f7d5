"""Research: where tricodec's files are larger than JPEG-XL's, plane by plane (issue 13).

    python tools/research_colour_gap.py ../shared/data/kodak [--limit N] [--effort 7]

Each RGB image is split into single planes: G, R - G and B - G (the differences offset by 256 into 9-bit
samples), and Y, Co, Cg of the reversible YCoCg-R; each plane is coded as a grey image by tricodec (the
default model; the 9-bit planes through its 16-bit depth split) and by JPEG-XL lossless at ``--effort``
(libjxl through imagecodecs, uint16 input, bare codestream); the whole RGB image by both too.  Printed:
bytes summed over the images, and tricodec / JPEG-XL per plane.  A plane where the ratio is far above 1
is where JPEG-XL's modelling knows more than tricodec's; for kodak that is the colour differences, not G.

Research only: nothing here is a codec path.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import imagecodecs
import numpy as np
from PIL import Image

import tricodec

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "perf"))
from bench_deep import jxl_codestream  # noqa: E402  (perf/ is no package)


def jxl_size(arr: np.ndarray, effort: int) -> int:
    """Bytes of JPEG-XL lossless of ``arr`` (its codestream only, as perf/bench_deep.py counts it)."""
    return len(jxl_codestream(imagecodecs.jpegxl_encode(arr, lossless=True, effort=effort, numthreads=2)))


def planes(rgb: np.ndarray) -> dict:
    """The single planes compared: name -> uint8 (H, W) or uint16 (H, W) of 9-bit samples."""
    r, g, b = (rgb[:, :, i].astype(np.int32) for i in range(3))
    co = r - b
    t = b + (co >> 1)
    cg = g - t
    y = t + (cg >> 1)
    return {"G": g.astype(np.uint8), "R-G": (r - g + 256).astype(np.uint16), "B-G": (b - g + 256).astype(np.uint16),
            "Y": y.astype(np.uint8), "Co": (co + 256).astype(np.uint16), "Cg": (cg + 256).astype(np.uint16)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("folder", type=Path, help="a folder of RGB photos (e.g. ../shared/data/kodak)")
    ap.add_argument("--limit", type=int, default=None, help="first N images")
    ap.add_argument("--effort", type=int, default=7, help="JPEG-XL effort")
    a = ap.parse_args()
    files = sorted(p for p in a.folder.iterdir() if p.suffix.lower() in (".png", ".ppm", ".tif", ".tiff"))[:a.limit]
    tot: dict = {}
    for f in files:
        rgb = np.asarray(Image.open(f).convert("RGB"))
        parts = {"RGB (whole image)": rgb, **planes(rgb)}
        for name, arr in parts.items():
            t, j = tot.setdefault(name, [0, 0])
            tot[name] = [t + len(tricodec.encode(arr)), j + jxl_size(arr, a.effort)]
    print(f"{a.folder} ({len(files)} images): bytes, tricodec {tricodec.__version__} (default model) vs "
          f"JPEG-XL e{a.effort} ({imagecodecs.jpegxl_version()})")
    print("| plane | tricodec | jxl | tricodec / jxl |\n|---|---|---|---|")
    for name, (t, j) in tot.items():
        print(f"| {name} | {t:,} | {j:,} | {t / j:.3f} |")


if __name__ == "__main__":
    main()
