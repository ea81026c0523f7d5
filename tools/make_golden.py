"""Write the golden files in tests/golden/: small images and their .tric encodings.

    python tools/make_golden.py [--model NAME]      # the default model's files, or another shipped model's

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


def frames_source() -> bytes:
    """A 4-frame APNG of the 41x34 photo: the photo, the photo with a mirrored patch (Pillow's writer keeps
    only the changed rectangle: a partial frame with an offset, blended over), upside down, its green as
    grey; durations 50-200 ms, disposal none/none/background/previous, loop 3."""
    import io
    rgb = Image.open(FIXTURES / "photo_rgb_41x34.png").convert("RGBA")
    patch = rgb.crop((0, 0, 20, 12)).transpose(Image.Transpose.FLIP_LEFT_RIGHT)
    second = rgb.copy()
    second.paste(patch, (7, 9))
    third = rgb.transpose(Image.Transpose.FLIP_TOP_BOTTOM)
    fourth = Image.merge("RGBA", [rgb.getchannel("G")] * 3 + [rgb.getchannel("A")])
    buf = io.BytesIO()
    rgb.save(buf, format="PNG", save_all=True, append_images=[second, third, fourth], duration=[50, 100, 150, 200],
             loop=3, disposal=[0, 0, 2, 1], blend=[0, 1, 0, 1])
    return buf.getvalue()


def frames_main(model):
    """Multi-frame goldens (tests/golden/frames/, since 2026-11-30): the source file and its .tric."""
    from tricodec import frames
    folder = GOLDEN / "frames"
    folder.mkdir(exist_ok=True)
    src, tric = folder / "v1_apng_4f.png", folder / "v1_apng_4f.tric"
    if tric.exists():
        print("keep", tric.name)
        return
    src.write_bytes(frames_source())
    tric.write_bytes(frames.encode_frames(src, device="cpu", model=model))
    print("wrote", tric.name, tric.stat().st_size, "bytes")


def main():
    import argparse
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", default=None, help="a shipped model's name (default: the default model)")
    GOLDEN.mkdir(parents=True, exist_ok=True)
    model = tricodec.load_model(p.parse_args().model)
    for name, im in images():
        if name == "v1_wide_4096x70" and model.kind not in ("context", "wavefront", "fused"):
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
    frames_main(model)


if __name__ == "__main__":
    main()
