"""Shared test helpers."""
import numpy as np
from PIL import Image


def same_image(a, b) -> bool:
    """Identical pixels and mode (and palette for palette images)."""
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        return isinstance(a, np.ndarray) and isinstance(b, np.ndarray) and a.dtype == b.dtype \
            and np.array_equal(a, b)
    if a.mode != b.mode or a.size != b.size or a.tobytes() != b.tobytes():
        return False
    if a.mode in ("P", "PA"):
        return a.getpalette() == b.getpalette()
    return True


def photo_like(h: int, w: int, channels: int = 3, seed: int = 0) -> np.ndarray:
    """A smooth random field plus noise: compresses like a photo, unlike pure noise."""
    rng = np.random.default_rng(seed)
    small = rng.integers(0, 256, (max(2, h // 8), max(2, w // 8), channels)).astype(np.uint8)
    big = np.asarray(Image.fromarray(small.squeeze() if channels == 1 else small).resize((w, h), Image.BILINEAR))
    noise = rng.integers(-3, 4, big.shape)
    return np.clip(big.astype(int) + noise, 0, 255).astype(np.uint8)


def photo_crop(h: int, w: int, channels: int = 3, seed: int = 0) -> np.ndarray:
    """An h x w crop of a shipped photo (samples/kodim05_crop.png; channels 1: its G, 4: B as alpha), placed
    by ``seed``: real content the model codes smaller than any fallback from about 6x8 RGB / 10x12 grey
    (``photo_like`` is smooth enough that a tuned PNG wins on small sizes)."""
    from pathlib import Path
    k = np.asarray(Image.open(Path(__file__).resolve().parents[1] / "samples" / "kodim05_crop.png").convert("RGB"))
    y, x = 40 + (seed * 37) % (k.shape[0] - h - 40), 60 + (seed * 53) % (k.shape[1] - w - 60)
    a = k[y:y + h, x:x + w]
    if channels == 1:
        return np.ascontiguousarray(a[:, :, 1])
    if channels == 4:
        return np.ascontiguousarray(np.dstack([a, a[:, :, 2]]))
    return np.ascontiguousarray(a)


def photo_residuals(h: int, w: int, planes: int, seed: int = 0) -> np.ndarray:
    """uint8 (P, H, W) predictor residuals of a photo-like image (colour planes refer to the first, alpha
    to none), as the codec would code them."""
    from tricodec.backend import CPU

    arr = np.ascontiguousarray(photo_like(h, w, planes, seed=seed).reshape(h, w, planes).transpose(2, 0, 1))
    return CPU.compute_residuals(arr, (-1, 0, 0, -1)[:planes])
