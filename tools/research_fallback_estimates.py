"""Research: what the fallback check's sample estimates cost and decide, against the real sizes (issue 13).

    python tools/research_fallback_estimates.py DIR [DIR ...] [--every N] [--synthetic]

For every image (8-bit, big enough to be estimated on samples): the model's size (the default model's
sections), the real sizes of the two fallback candidates (Pillow's plain PNG, xz of the pixels), and the
estimates of ``fallback.estimate_fallbacks``' method under several settings (sample sizes, xz preset).  Printed per
setting: the estimates' CPU time, their error (estimate / real size) on photos and on the rest, and what a
win margin decides: full runs made for a candidate that then loses (time wasted) and candidates that would
have won but were not run (bytes lost: their real size against the model's).  ``--synthetic`` adds
generated graphics (drawings, gradients, posterised and tiled photos, noise), where a fallback can win.

Research only: nothing here is a codec path.
"""
from __future__ import annotations

import argparse
import lzma
import time
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from tricodec import codec
from tricodec import fallback as fb
from tricodec.model import load_model

PNG_TODAY = lambda n: fb._sample_bytes(n, fb.PNG_SAMPLE_SHARE, fb.SAMPLE_BYTES // 2)  # noqa: E731
XZ_TODAY = lambda n: fb._sample_bytes(n, fb.XZ_SAMPLE_SHARE, fb.SAMPLE_BYTES // 4)  # noqa: E731
SETTINGS = {  # name: (PNG sample bytes, xz sample bytes, both as functions of the raw size; xz preset,
    #         negative: one sample only, its fixed cost the candidate's size on a 1x1 image)
    "32K, 32K p6 (before)": (lambda n: 32 << 10, lambda n: 32 << 10, 6),
    "32K, 32K p1": (lambda n: 32 << 10, lambda n: 32 << 10, 1),
    "32K, raw/16 in 8K..32K p6": (lambda n: 32 << 10, XZ_TODAY, 6),
    "raw/8 in 16K..32K, raw/16 in 8K..32K p6 (today)": (PNG_TODAY, XZ_TODAY, 6),
    "raw/16 in 8K..32K both, p6": (XZ_TODAY, XZ_TODAY, 6),
    "raw/8 in 16K..32K, raw/32 in 8K..32K p6": (PNG_TODAY, lambda n: fb._sample_bytes(n, 32, 8 << 10), 6),
    "raw/8 in 16K..32K, raw/32 in 4K..32K p6": (PNG_TODAY, lambda n: fb._sample_bytes(n, 32, 4 << 10), 6),
    "16K, 16K p6": (lambda n: 16 << 10, lambda n: 16 << 10, 6),
    "one sample each, fixed cost from a 1x1 image (today's sizes)": (PNG_TODAY, XZ_TODAY, -6),
}
MARGINS = ((1.1, 1.1), (1.05, 1.1), (1.05, 1.05), (1.03, 1.1))   # (PNG, xz)


def synthetic(photo: Image.Image) -> dict:
    rng = np.random.default_rng(1)
    out = {}
    x = np.arange(640)[None, :].repeat(480, 0)
    out["gradient-L"] = Image.fromarray((x % 256).astype(np.uint8))
    out["gradient-RGB"] = Image.fromarray(np.stack([x % 256, x * 2 % 256, x // 3 % 256], -1).astype(np.uint8))
    im = Image.new("RGB", (800, 600), "white")
    d = ImageDraw.Draw(im)
    for i in range(60):
        d.text((int(rng.integers(0, 700)), int(rng.integers(0, 580))), f"text {i}",
               fill=tuple(int(v) for v in rng.integers(0, 256, 3)))
    for _ in range(30):
        a, b = sorted(rng.integers(0, 800, 2)), sorted(rng.integers(0, 600, 2))
        d.rectangle([int(a[0]), int(b[0]), int(a[1]), int(b[1])], outline=tuple(int(v) for v in rng.integers(0, 256, 3)))
    out["drawing-RGB"], out["drawing-L"] = im, im.convert("L")
    out["noise-L"] = Image.fromarray(rng.integers(0, 256, (400, 400), dtype=np.uint8))
    out["noise-4-levels-RGB"] = Image.fromarray((rng.integers(0, 4, (400, 400, 3)) * 60).astype(np.uint8))
    rgb = photo.convert("RGB")
    out["tiled-photo"] = Image.fromarray(np.tile(np.asarray(rgb)[:64, :64], (8, 10, 1)))
    out["dithered-L"] = rgb.convert("1").convert("L")
    out["posterised-RGB"] = rgb.quantize(16).convert("RGB")
    out["upscaled-4x"] = rgb.resize((rgb.width // 4, rgb.height // 4)).resize(rgb.size, Image.NEAREST)
    out["palette-200"] = rgb.quantize(200)
    return out


def xz_size(image, preset: int) -> int:
    filters = fb._xz_filters(image, sample=True)
    filters[-1] = dict(filters[-1], preset=preset)
    return len(lzma.compress(fb.pixel_bytes(image), format=lzma.FORMAT_XZ, filters=filters))


def estimates(image, n_raw: int, png_bytes: int, xz_bytes: int, preset: int) -> tuple:
    """(PNG estimate, xz estimate, seconds) with ``fallback``'s method at these settings."""
    t0 = time.perf_counter()
    xz = lambda im: b"." * xz_size(im, abs(preset))  # noqa: E731
    if preset < 0:
        return (_one_sample(fb._pillow_png, fb._Samples(image, png_bytes), n_raw),
                _one_sample(xz, fb._Samples(image, xz_bytes), n_raw), time.perf_counter() - t0)
    png = _estimate(fb._pillow_png, fb._Samples(image, png_bytes), n_raw)
    return png, _estimate(xz, fb._Samples(image, xz_bytes), n_raw), time.perf_counter() - t0


def _one_sample(encode, samples, n_raw: int) -> float | None:
    big = samples.get(fb.SAMPLE_ROWS)
    out = encode(big)
    if out is None:
        return None
    tiny = big.crop((0, 0, 1, 1)) if isinstance(big, Image.Image) else big[:1, :1]
    fixed = len(encode(tiny))
    return fixed + (len(out) - fixed) * n_raw / len(fb.pixel_bytes(big))


def _estimate(encode, samples, n_raw: int) -> float | None:
    return fb._extrapolate([encode(samples.get(r)) for r in (fb.SAMPLE_ROWS // 2, fb.SAMPLE_ROWS)], samples, n_raw)


def real_sizes(image, model) -> dict:
    job = codec._encode_prepare(image, model, 1 << 40)
    if job.arr is None:  # a mode the model does not code (palette): the limit is the stored size
        size = len(job.raw)
    else:
        size = sum(len(p) for _, p in codec.encode_model(job.arr, job.order, job.refs, model, codec.CPU))
    return {"raw": len(job.raw), "model": size,
            "png": len(fb._pillow_png(image)), "xz": len(fb.encode_raw(image, compress=True, data=job.raw))}


def load(dirs: list[str], every: int, with_synthetic: bool) -> dict:
    images = {}
    for d in dirs:
        for path in sorted(Path(d).glob("*.png"))[::every]:
            im = Image.open(path)
            im.load()
            images[f"{Path(d).name}/{path.name}"] = ("photo", im)
    if with_synthetic and images:
        for name, im in synthetic(next(iter(images.values()))[1]).items():
            images[name] = ("graphics", im)
    return images


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("dirs", nargs="+")
    ap.add_argument("--every", type=int, default=1, help="every N-th image of each folder")
    ap.add_argument("--synthetic", action="store_true")
    args = ap.parse_args()
    model = load_model(None)
    rows = []
    for name, (kind, im) in load(args.dirs, args.every, args.synthetic).items():
        if im.mode not in ("L", "RGB", "RGBA", "LA", "P") or len(fb.pixel_bytes(im)) <= fb.SAMPLE_ABOVE:
            continue
        real = real_sizes(im, model)
        est = {s: estimates(im, real["raw"], fp(real["raw"]), fx(real["raw"]), p)
               for s, (fp, fx, p) in SETTINGS.items()}
        rows.append((name, kind, real, est))
    print(f"{len(rows)} images: {sum(k == 'photo' for _, k, _, _ in rows)} photos, "
          f"{sum(k == 'graphics' for _, k, _, _ in rows)} graphics")
    for s in SETTINGS:
        print(f"\n## {s}: estimates {1e3 * sum(e[s][2] for *_, e in rows):.0f} ms CPU in all")
        for kind in ("photo", "graphics"):
            for i, cand in enumerate(("png", "xz")):
                r = [e[s][i] / real[cand] for _, k, real, e in rows if k == kind]
                if r:
                    print(f"  {kind:8s} {cand:3s} estimate / real: {min(r):.3f} .. {max(r):.3f}, "
                          f"median {float(np.median(r)):.3f}")
        for margins in MARGINS:
            wasted = missed = 0
            lost = []
            for name, kind, real, e in rows:
                limit = min(real["model"], real["raw"])
                for i, cand in enumerate(("png", "xz")):
                    run = e[s][i] < margins[i] * limit
                    wasted += run and real[cand] >= limit
                    if not run and real[cand] < limit:
                        missed += 1
                        lost.append(f"{name} {cand} {real[cand] / limit:.3f}")
            print(f"  margins PNG {margins[0]}, xz {margins[1]}: {wasted} full runs that lose; {missed} winners "
                  f"not run (size / model: {', '.join(lost) or '-'})")
    print("\nper image (real bytes; model / best fallback):")
    for name, kind, real, e in rows:
        best = min(real["png"], real["xz"])
        print(f"  {name:44s} model {real['model']:8d} png {real['png']:8d} xz {real['xz']:8d}  "
              f"{real['model'] / best:.3f}")


if __name__ == "__main__":
    main()
