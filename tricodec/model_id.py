"""A model's identity is its content, not the bytes of its zip.

A weights file is an ``.npz`` (a zip): re-zipping the same arrays (other timestamps, compression or
member order) changes the file's sha256 but not one prediction or probability. The identity a
``.tric`` file records is therefore a digest of the content:

``content_digest`` = sha256 over, in this order (every integer a u64 little-endian, every string UTF-8
prefixed by its byte length)::

    b"tricodec-model-content/1"
    the config as canonical JSON (keys sorted, no spaces, ASCII escapes)
    the number of arrays
    for each array, by name (sorted by its UTF-8 bytes):
        name | dtype as a little-endian numpy type string ("<u2", "|u1", "<f8") | ndim | each dimension |
        the bytes, C order, little-endian

Shipped models predate content identities: the files they wrote record the first 8 bytes of their zip's
sha256. ``MODELS.json`` keeps those zip digests (``legacy_sha256``); a decoder accepts a file that
records either the content prefix or any legacy prefix of the model, so every file ever written keeps
decoding. New files written with a shipped model whose entry says ``"records": "legacy"`` keep recording
its (frozen) first legacy digest, so the encoder still writes the bytes of the golden files; every other
model (trained, loaded from a path) records its content digest.
"""
from __future__ import annotations

import hashlib
import json
import struct
from dataclasses import dataclass

import numpy as np

DOMAIN = b"tricodec-model-content/1"


def _u64(n: int) -> bytes:
    return struct.pack("<Q", n)


def _text(s: str) -> bytes:
    b = s.encode("utf-8")
    return _u64(len(b)) + b


def canonical_config(config: dict) -> str:
    """The config as canonical JSON: what the content digest covers."""
    return json.dumps(config, sort_keys=True, separators=(",", ":"), ensure_ascii=True, allow_nan=False)


def _le_array(a: np.ndarray) -> tuple[str, np.ndarray]:
    a = np.asarray(a)
    if a.dtype.hasobject:
        raise ValueError("object arrays have no content digest")
    le = a.dtype.newbyteorder("<") if a.dtype.byteorder in ("=", ">") else a.dtype   # "|": no byte order
    return le.str, np.ascontiguousarray(a, dtype=le)


def content_digest(config: dict, arrays: dict) -> str:
    """Hex sha256 of a model's content: its config and its named arrays (see the module docstring)."""
    h = hashlib.sha256(DOMAIN)
    h.update(_text(canonical_config(config)))
    names = sorted(arrays, key=lambda k: str(k).encode("utf-8"))
    h.update(_u64(len(names)))
    for name in names:
        dtype, a = _le_array(arrays[name])
        h.update(_text(str(name)))
        h.update(_text(dtype))
        h.update(_u64(a.ndim))
        for n in a.shape:
            h.update(_u64(n))
        h.update(a.tobytes(order="C"))
    return h.hexdigest()


@dataclass(frozen=True)
class Identity:
    """Who a loaded model is: ``content`` (hex content digest), ``record`` (the hex digest whose first 8
    bytes new files record) and ``accepted`` (every 8-byte prefix a file may record to name it)."""
    content: str
    record: str
    accepted: frozenset

    def accepts(self, prefix: bytes) -> bool:
        return bytes(prefix) in self.accepted


def identify(name: str, content: str, zip_sha256: str | None, registry: dict) -> Identity:
    """The identity of weights named ``name`` with content digest ``content`` (``zip_sha256``: the
    sha256 of the file they were read from, if any). A shipped model (same name and same content
    digest in ``registry``) is also known by its legacy digests and records what its entry says."""
    digests = [content] + ([zip_sha256] if zip_sha256 else [])
    record = content
    entry = registry.get(name)
    if isinstance(entry, dict) and entry.get("content_sha256") == content:
        legacy = list(entry.get("legacy_sha256", []))
        digests += legacy
        if entry.get("records") == "legacy" and legacy:
            record = legacy[0]
    return Identity(content=content, record=record,
                    accepted=frozenset(bytes.fromhex(d)[:8] for d in digests))
