"""What every kind of model shares: its name and weights identity (which files record), and which planes
it codes in which order."""
from __future__ import annotations


class NamedWeights:
    """Mixin of the model dataclasses (fields ``sha256``, ``rgb_order``, ``rgb_refs``).

    ``sha256`` is the hex digest whose first 8 bytes files written with the model record: the content
    digest of its weights (``tricodec/model_id.py``), or, for a shipped model that predates content
    identities, its frozen legacy zip sha256 (so its files keep their bytes). A model loaded by
    ``tricodec.model`` also carries its :class:`tricodec.model_id.Identity` (content digest and every
    prefix a file may record to name it)."""

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
