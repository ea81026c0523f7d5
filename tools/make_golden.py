"""Write the golden files in tests/golden/: small images and their .tric encodings.

    python tools/make_golden.py

Golden .tric files must keep decoding forever: never regenerate one to make a failing decode pass.
Run this only to add new golden files (for a new format version, add files; keep the old ones).
"""
from pathlib import Path

import numpy as np
from PIL import Image

import tricodec

GOLDEN = Path(__file__).resolve().parents[1] / "tests" / "golden"
FIXTURES = Path(__file__).resolve().parents[1] / "tests" / "fixtures"


def images():
    rgb = Image.open(FIXTURES / "photo_rgb_41x34.png").convert("RGB")
    yield "v1_rgb_41x34", rgb
    yield "v1_gray_37x29", Image.open(FIXTURES / "photo_gray_37x29.png").convert("L")
    rgba = rgb.copy()
    rgba.putalpha(Image.linear_gradient("L").resize(rgb.size))
    yield "v1_rgba_41x34", rgba
    yield "v1_p_41x34", rgb.quantize(16)
    rng = np.random.default_rng(7)
    yield "v1_noise_9x5", Image.fromarray(rng.integers(0, 256, (5, 9, 3), dtype=np.uint8), "RGB")
    yield "v1_1x1", Image.new("RGB", (1, 1), (200, 10, 33))
    # Context and wavefront models: wide enough (lanes of ~2^18 pixels: 64 rows here) for two lanes.
    yy, xx = np.mgrid[0:70, 0:4096]
    wide = ((xx // 16 + 2 * yy) % 256 + rng.integers(-1, 2, xx.shape)).clip(0, 255).astype(np.uint8)
    yield "v1_wide_4096x70", Image.fromarray(wide, "L")


def main():
    GOLDEN.mkdir(parents=True, exist_ok=True)
    model = tricodec.load_model()
    for name, im in images():
        if name == "v1_wide_4096x70" and model.kind not in ("context", "wavefront"):
            continue
        if model.name != "tric-bs1":  # files of later models carry the model in their name
            if name not in ("v1_rgb_41x34", "v1_gray_37x29", "v1_rgba_41x34", "v1_wide_4096x70"):
                continue
            name = name.replace("v1_", f"v1_{model.name.replace('tric-', '')}_")
        src = GOLDEN / f"{name}.png"
        tric = GOLDEN / f"{name}.tric"
        if tric.exists():
            print("keep", tric.name)
            continue
        im.save(src)
        tric.write_bytes(tricodec.encode(Image.open(src), device="cpu", model=model))
        print("wrote", tric.name, tric.stat().st_size, "bytes")


if __name__ == "__main__":
    main()
