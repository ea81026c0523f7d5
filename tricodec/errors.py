"""Typed errors: every failure a user can cause surfaces as one of these, with a one-line message."""


class TricodecError(Exception):
    """Base class of every error tricodec raises on purpose."""


class DecodeError(TricodecError):
    """A .tric stream is truncated, corrupted, hostile, from a future version or needs other weights."""


class EncodeError(TricodecError):
    """An input image cannot be encoded (unreadable, unsupported, too large)."""


class BackendError(TricodecError):
    """The asked backend (device) is not available on this machine."""


class ModelError(TricodecError):
    """A weights file is missing, malformed or does not match its recorded sha256."""


class WriteError(TricodecError):
    """A decoded image cannot be written in the asked file format (e.g. a mode that format cannot hold)."""
