"""Triton kernels (installed as ``tricodec.kernels``), one per file, each with its host wrapper and an
exact CPU twin in ``tricodec``:

* ``rans_encode.encode_lanes`` (+ ``lane_compact``) / ``rans_decode.decode_lanes``: ``tricodec.rans_ref``;
* ``predictor_residual.compute_residuals`` / ``predictor_scan.reconstruct``: ``tricodec.predictor_ref``;
* ``table_ids.block_table_ids``: ``tricodec.model.block_table_ids``.

Wrappers take torch tensors on any device and return tensors on it.  Nothing is imported here, so
``import tricodec`` never needs a working Triton; to run the kernels without a GPU set
``TRITON_INTERPRET=1`` before importing any kernel module.
"""
