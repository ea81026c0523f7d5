"""What every kind of model shares: its name and weights identity (which files record), which planes it
codes in which order, and the interface through which the codec core codes with it (so ``codec.py`` never
asks which kind a model is).

A model kind implements::

    encode_residuals(res, backend) -> [(section tag, payload), ...]      # res: uint8 (P, H, W) on the backend
    decode_residuals(sections, (P, H, W), backend) -> uint8 (P, H, W) residuals on the backend
    prefers_gpu: bool                  # device="auto" runs it on a GPU where there is one

and may override the whole-image steps (``encode_image``/``decode_image``, e.g. to code big images in
bands on the CPU), the batch hooks (``encode_residuals_batch``/``decode_residuals_batch``, e.g. to put
several images through the same kernel launches) and the predictor around them
(``encode_planes_batch``/``decode_planes_batch``: planes in, sections out and back; by default the MED
predictor of ``predictor_ref``, a kind with its own predictor records its parameters in its sections)."""
from __future__ import annotations

import numpy as np


class NamedWeights:
    """Mixin of the model dataclasses (fields ``sha256``, ``rgb_order``, ``rgb_refs``).

    ``sha256`` is the hex digest whose first 8 bytes files written with the model record: the content
    digest of its weights (``tricodec/model_id.py``), or, for a shipped model that predates content
    identities, its frozen legacy zip sha256 (so its files keep their bytes). A model loaded by
    ``tricodec.model`` also carries its :class:`tricodec.model_id.Identity` (content digest and every
    prefix a file may record to name it)."""

    prefers_gpu = True

    @property
    def hash_prefix(self) -> bytes:
        """The first 8 bytes of the weights digest, as recorded in every file the model codes."""
        return bytes.fromhex(self.sha256)[:8]

    @property
    def identity(self):
        """The model's :class:`tricodec.model_id.Identity`; a model built by hand (not loaded from weights,
        e.g. ``dataclasses.replace`` of a loaded one) is known by its ``sha256`` alone."""
        ident = self.__dict__.get("_identity")
        if ident is None:
            from .model_id import Identity
            ident = Identity(content=self.sha256, record=self.sha256, accepted=frozenset({self.hash_prefix}))
        return ident

    @property
    def content_sha256(self) -> str:
        """Hex digest of the weights' content (arrays and config), whatever zip holds them."""
        return self.identity.content

    def accepts(self, hash_prefix: bytes) -> bool:
        """Whether a file recording ``hash_prefix`` names these weights: the content digest's prefix, the
        prefix new files record, or a legacy zip-sha256 prefix of the same content."""
        return bytes(hash_prefix) == self.hash_prefix or self.identity.accepts(hash_prefix)

    def plane_layout(self, channels: int):
        """(order, refs) of the coded planes for an image with ``channels`` colour channels (1 or 3)."""
        if channels == 1:
            return (0,), (-1,)
        if channels == 3:
            return self.rgb_order, self.rgb_refs
        raise ValueError("the model codes 1 or 3 channels")

    # ---- the coding interface; kinds implement encode_residuals / decode_residuals ----

    def encode_image(self, arr: np.ndarray, order: tuple, refs: tuple, backend) -> list:
        """uint8 (H, W, C) pixels -> the model's sections."""
        planes = np.ascontiguousarray(arr.transpose(2, 0, 1)[list(order)])
        return self.encode_planes_batch([planes], [refs], backend)[0]

    def decode_image(self, sections: dict, arr: np.ndarray, order: tuple, refs: tuple, backend) -> None:
        """The model's sections -> the pixels, written into uint8 (H, W, C) ``arr``."""
        h, w = arr.shape[:2]
        planes = backend.download(self.decode_planes_batch([sections], [(len(order), h, w)], [refs], backend)[0])
        arr[:, :, list(order)] = planes.transpose(1, 2, 0)

    def encode_planes_batch(self, planes_list: list, refs_list: list, backend) -> list:
        """Host uint8 (P, H, W) planes in coding order, one array per image -> each image's sections."""
        res = [backend.compute_residuals(backend.upload(p), r) for p, r in zip(planes_list, refs_list)]
        return self.encode_residuals_batch(res, backend)

    def decode_planes_batch(self, sections_list: list, shapes: list, refs_list: list, backend) -> list:
        """Each image's sections -> its uint8 (P, H, W) planes on the backend (all queued before any wait)."""
        res = self.decode_residuals_batch(sections_list, shapes, backend)
        return [backend.reconstruct(r, refs) for r, refs in zip(res, refs_list)]

    def encode_residuals_batch(self, res_list: list, backend) -> list:
        return [self.encode_residuals(r, backend) for r in res_list]

    def decode_residuals_batch(self, sections_list: list, shapes: list, backend) -> list:
        return [self.decode_residuals(s, sh, backend) for s, sh in zip(sections_list, shapes)]
