"""Triton kernels (installed as ``tricodec.kernels``), one per file, each with its host wrapper and an
exact CPU twin in ``tricodec``:

* ``wavefront_encode.encode_wavefront_lanes`` / ``wavefront_decode.decode_wavefront_lanes`` (+ ``_batch``;
  helpers in ``_wavefront_jit``): ``tricodec.wavefront_ref`` (the default model's coder);
* ``context_encode.encode_context_lanes`` / ``context_decode.decode_context_lanes`` (+ ``_batch``;
  helpers in ``_context_jit``): ``tricodec.context_ref``;
* ``rans_encode.encode_lanes`` (+ ``lane_compact``) / ``rans_decode.decode_lanes``: ``tricodec.rans_ref``;
* ``predictor_residual.compute_residuals`` / ``predictor_scan.reconstruct``: ``tricodec.predictor_ref``;
* ``blend_residual.compute_blend_residuals`` / ``blend_scan.reconstruct_blend`` (helpers in ``_blend_jit``):
  ``tricodec.blend_ref`` (the self-correcting predictor of ``tric-wf2``);
* ``block_scales.choose_block_scales`` / ``table_ids.block_table_ids``: ``tricodec.model.choose_block_scales``
  / ``tricodec.model.block_table_ids``.

Wrappers take torch tensors on any device and return tensors on it.  Nothing is imported here, so
``import tricodec`` never needs a working Triton; to run the kernels without a GPU set
``TRITON_INTERPRET=1`` before importing any kernel module.
"""
