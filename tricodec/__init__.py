"""tricodec: a learned lossless image codec. Its critical path (the default model's wavefront context coder
and the predictor scan) runs as Triton kernels on a GPU (``device="auto"`` picks one when torch sees it)
and as numba twins, which write the same bytes, on the CPU.

    import tricodec
    data = tricodec.encode(image)          # PIL image or numpy array -> bytes
    image = tricodec.decode(data)          # -> PIL image, identical pixels and mode
"""
import os as _os

# numba's OpenMP workers keep spinning after each parallel region (the coder's strips) and then compete for
# the cores with the predictor scan's plane threads that follow: passive waiting decodes a kodak image ~7%
# faster on 2 cores (perf/RESULTS.md). Only a default: set OMP_WAIT_POLICY before importing tricodec to
# choose otherwise (it also applies to OpenMP runtimes started later in the process).
_os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

from .codec import (decode, decode_any, decode_array, decode_batch, encode, encode_batch, read_header,  # noqa: E402
                    read_metadata)
from .container import HEADER_SIZE, VERSION
from .frames import decode_frames, encode_frames
from .errors import BackendError, DecodeError, EncodeError, ModelError, TricodecError, WriteError
from .model import load_model
from . import pil_plugin as _pil_plugin

_pil_plugin.register()  # Image.open / img.save handle .tric once tricodec is imported
from . import imageio_plugin as _imageio_plugin

_imageio_plugin.register()  # imageio.v3.imread / imwrite handle .tric too, when imageio is installed


def __getattr__(name):
    if name == "TricDataset":  # imports torch, so only when asked for
        from .torch_data import TricDataset
        return TricDataset
    raise AttributeError(f"module 'tricodec' has no attribute {name!r}")


__version__ = "0.1.0"
__all__ = ["encode", "decode", "encode_batch", "decode_batch", "decode_array", "decode_any", "read_header", "read_metadata", "encode_frames", "decode_frames", "load_model", "TricodecError",
           "DecodeError", "EncodeError", "WriteError", "BackendError", "ModelError", "HEADER_SIZE", "VERSION",
           "TricDataset"]
