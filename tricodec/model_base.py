"""What every kind of model shares: its name and weights hash (which files record), and which planes it
codes in which order."""
from __future__ import annotations


class NamedWeights:
    """Mixin of the model dataclasses (fields ``sha256``, ``rgb_order``, ``rgb_refs``)."""

    @property
    def hash_prefix(self) -> bytes:
        """The first 8 bytes of the weights file's sha256, as recorded in every file the model codes."""
        return bytes.fromhex(self.sha256)[:8]

    def plane_layout(self, channels: int):
        """(order, refs) of the coded planes for an image with ``channels`` colour channels (1 or 3)."""
        if channels == 1:
            return (0,), (-1,)
        if channels == 3:
            return self.rgb_order, self.rgb_refs
        raise ValueError("the model codes 1 or 3 channels")
