"""Ablation of the context model: what each component adds, in real coded bytes.

    python perf/ablation_context.py [DIR ...]        # default: ../shared/data/kodak and ../shared/data/dev
    python perf/ablation_context.py --lane-sizes     # size against lane size (parallelism), shipped tables

Every row trains its starting tables on ../shared/data/train (never on the evaluated folders) and codes
each image's residuals (MED on colour planes G, R-G, B-G) with the production coder (context_ref, the CPU
twin); bpsp = 8 x (lane words + lane table + 4-byte SIDE + 48-byte header and section headers) / samples,
mean per image.  The last row is the shipped tric-cx1 through the real encoder (metadata included).
"""
from __future__ import annotations

import argparse
import dataclasses
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tricodec import context_model as cm  # noqa: E402
from tricodec import context_ref as cr  # noqa: E402
from tricodec.model import load_model, model_from_bytes  # noqa: E402
from tricodec.train import evaluate, image_files  # noqa: E402
from tricodec.train_context import _planes, _refs, train_context  # noqa: E402
from tricodec.pixels import read_image  # noqa: E402
from tricodec.predictor_ref import compute_residuals  # noqa: E402

SHARED = ROOT.parent / "shared" / "data"
FIXED_OVERHEAD = 48 + 2 * 5 + 4   # header, two section entries, SIDE


def coded_bpsp(model, folder: Path) -> float:
    out = []
    for path in image_files(folder):
        planes = _planes(read_image(path))
        if planes is None:
            continue
        res = compute_residuals(planes, _refs(planes.shape[0]))
        p, h, w = res.shape
        counts, words = cr.encode_context_lanes(res, cm.plane_kinds(p), *model.arrays, model.lane_rows(w, h))
        out.append(8 * (2 * words.size + 4 * counts.size + FIXED_OVERHEAD) / res.size)
    return float(np.mean(out))


def lane_sizes(dirs) -> None:
    """The cost of smaller lanes (more of them: more parallel decoding) with the shipped tables."""
    shipped = load_model("tric-cx1")
    print("| pixels per lane | " + " | ".join(f"{d.name} bpsp | lanes per image" for d in dirs) + " |")
    print("|---|" + "---|---|" * len(dirs))
    for log2 in (14, 16, 18, 20):
        model = dataclasses.replace(shipped, lane_pixels=1 << log2)
        cells = []
        for d in dirs:
            lanes = [-(-read_image(p).size[1] // model.lane_rows(*read_image(p).size)) for p in image_files(d)]
            cells.append(f"{coded_bpsp(model, d):.4f} | {np.mean(lanes):.0f}")
        print(f"| 2^{log2} | " + " | ".join(cells) + " |", flush=True)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("dirs", nargs="*", type=Path, default=[SHARED / "kodak", SHARED / "dev"])
    ap.add_argument("--train", type=Path, default=SHARED / "train")
    ap.add_argument("--lane-sizes", action="store_true", help="only the lane-size table")
    a = ap.parse_args()
    if a.lane_sizes:
        lane_sizes(a.dirs)
        return 0
    zeros = np.zeros(cr.ACT_MAX + 1, np.int32)
    frozen = np.array([15], np.int32)      # a shift of 15 moves a table by at most one unit in 65512
    bin_a, bin_b = cm.default_bins()
    rows = [
        ("sign contexts only, static tables", dict(bins=(zeros, zeros), rate_lut=frozen)),
        ("+ activity contexts (neighbours, earlier planes), static", dict(rate_lut=frozen)),
        ("sign contexts only, adaptive", dict(bins=(zeros, zeros))),
        ("full contexts + per-lane adaptation (no grain)", dict()),
        ("full contexts + adaptation, grain 1.0 in training (= tric-cx1)", dict(grain=1.0)),
    ]
    print("| variant | " + " | ".join(d.name for d in a.dirs) + " |")
    print("|---|" + "---|" * len(a.dirs))
    for label, kw in rows:
        t = time.time()
        model = model_from_bytes(train_context(a.train, name="ablate", **kw))
        vals = [coded_bpsp(model, d) for d in a.dirs]
        print(f"| {label} | " + " | ".join(f"{v:.4f}" for v in vals) + f" |   <!-- {time.time() - t:.0f} s -->",
              flush=True)
    shipped = load_model("tric-cx1")
    print("| tric-cx1 through the real encoder (.tric files, metadata included) | "
          + " | ".join(f"{evaluate(shipped, d):.4f}" for d in a.dirs) + " |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
