"""Write a big photo-like test image (smooth random field + noise) for the memory measurements.

    python perf/make_big_image.py /tmp/big100mp.png --size 10000

Then: /usr/bin/time -v tricodec encode /tmp/big100mp.png /tmp/big.tric --force   (peak RSS: "Maximum resident")
"""
import argparse

import numpy as np
from PIL import Image


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("out")
    p.add_argument("--size", type=int, default=10000, help="width and height in pixels")
    p.add_argument("--seed", type=int, default=0)
    a = p.parse_args()
    rng = np.random.default_rng(a.seed)
    small = rng.integers(0, 256, (a.size // 16, a.size // 16, 3), dtype=np.uint8)
    arr = np.asarray(Image.fromarray(small).resize((a.size, a.size), Image.BILINEAR))
    arr = np.clip(arr.astype(np.int16) + rng.integers(-4, 5, arr.shape, dtype=np.int16), 0, 255).astype(np.uint8)
    Image.fromarray(arr).save(a.out, compress_level=1)


if __name__ == "__main__":
    main()
