"""Every kernel compiles for real GPUs (sm_80, sm_90) down to a cubin, even on a machine without one.

The interpreter accepts constructs the GPU compiler refuses (DESIGN.md section 8), so the interpreter
tests alone do not prove a kernel builds.  This compiles each kernel ahead of time with Triton's bundled
NVIDIA toolchain (ptxas included), in a subprocess without TRITON_INTERPRET, twice: with every integer
argument generic, and with every integer argument specialised to the constant 1 (Triton turns an int
argument equal to 1 into a constexpr at launch: unit strides, one lane, one plane, H or W of 1 ...).

The signatures mirror the wrappers' launches; keep them in step when a kernel's arguments change.
"""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tricodec import context_ref as cr

_CONTEXT_CONSTS = {**{k: getattr(cr, k) for k in ("NC_A", "NC_B", "N_KINDS", "N_TOKENS", "Q_ADAPT", "ACT_MAX", "NB_B")},
                   "RANS_L": 65536, "TOK": "TOK"}

_WF_STATE = ("ta_ptr", "tb_ptr", "ha_ptr", "hb_ptr", "sa_ptr", "sb_ptr", "ua_ptr", "ub_ptr", "fa_ptr", "fb_ptr",
             "la_ptr", "lb_ptr", "ring_ptr")
_WF_CONSTS = {**{k: v for k, v in _CONTEXT_CONSTS.items() if k != "TOK"}, "MIX_BITS": 15, "RING": 8,
              "BLOCK_K": "BLOCK_K", "BLOCK_U": "BLOCK_U"}

SIGNATURES = {  # module: (kernel, {arg: type}, {constexpr: value})
    "rans_encode": ("_rans_encode_kernel",
                    {"sym_ptr": "*u8", "tid_ptr": "*i32", "cdf_ptr": "*i32", "scratch_ptr": "*u16",
                     "count_ptr": "*i32", "status_ptr": "*i32", "n_symbols": "i32", "n_lanes": "i32",
                     "lane_size": "i32", "n_steps": "i32", "n_tables": "i32", "n_alpha": "i32",
                     "stride_cdf_t": "i32"},
                    {"RANS_L": 65536, "BLOCK": "BLOCK"}),
    "rans_decode": ("_rans_decode_kernel",
                    {"count_ptr": "*i64", "offset_ptr": "*i64", "word_ptr": "*u16", "tid_ptr": "*i32",
                     "cdf_ptr": "*i32", "out_ptr": "*u8", "status_ptr": "*i32", "n_symbols": "i32",
                     "n_lanes": "i32", "lane_size": "i32", "n_steps": "i32", "n_alpha": "i32",
                     "stride_cdf_t": "i32"},
                    {"N_SEARCH": 8, "RANS_L": 65536, "PREC_TOTAL": 65536, "BLOCK": "BLOCK"}),
    "lane_compact": ("_lane_compact_kernel",
                     {"scratch_ptr": "*u16", "count_ptr": "*i32", "offset_ptr": "*i64", "out_ptr": "*u16",
                      "stride_lane": "i32"},
                     {"BLOCK": "BLOCK"}),
    "predictor_residual": ("_predictor_residual_kernel",
                           {"x_ptr": "*u8", "ref_ptr": "*i32", "out_ptr": "*u8", "H": "i32", "W": "i32",
                            "bits": "i32", "stride_xp": "i32", "stride_xh": "i32", "stride_xw": "i32",
                            "stride_op": "i32", "stride_oh": "i32", "stride_ow": "i32"},
                           {"BLOCK_H": "BLOCK_H", "BLOCK_W": "BLOCK_W"}),
    "predictor_scan": ("_predictor_scan_kernel",
                       {"res_ptr": "*u8", "ref_ptr": "*i32", "out_ptr": "*u8", "P": "i32", "H": "i32",
                        "W": "i32", "bits": "i32", "stride_rp": "i32", "stride_rh": "i32", "stride_rw": "i32"},
                       {"BLOCK_H": "BLOCK_H", "MAX_PLANES": "MAX_PLANES"}),
    "table_ids": ("_table_ids_kernel",
                  {"side_ptr": "*u8", "out_ptr": "*i32", "H": "i32", "W": "i32", "block_log2": "i32",
                   "stride_sp": "i32", "stride_sh": "i32", "stride_sw": "i32",
                   "stride_op": "i32", "stride_oh": "i32", "stride_ow": "i32"},
                  {"BLOCK_H": "BLOCK_H", "BLOCK_W": "BLOCK_W"}),
    "block_scales": ("_block_scales_kernel",
                     {"res_ptr": "*u8", "cost_ptr": "*i32", "out_ptr": "*u8", "H": "i32", "W": "i32",
                      "n_tables": "i32", "n_bx": "i32", "stride_rp": "i32", "stride_rh": "i32",
                      "stride_rw": "i32", "stride_ct": "i32", "stride_op": "i32", "stride_oh": "i32",
                      "stride_ow": "i32"},
                     {"BS_LOG2": 3, "BLOCK_B": "BLOCK_B"}),
    "context_encode": ("_context_encode_kernel",
                       {"desc_ptr": "*i64", "flat_ptr": "*u8", "kind_ptr": "*i32", "ta_ptr": "*i32",
                        "tb_ptr": "*i32", "na_ptr": "*i32", "nb_ptr": "*i32", "bin_a_ptr": "*i32",
                        "bin_b_ptr": "*i32", "rate_ptr": "*i32", "start_ptr": "*i32", "freq_ptr": "*i32",
                        "extra_ptr": "*i32", "scratch_ptr": "*u16", "count_ptr": "*i32", "n_rate": "i32",
                        "lane_symbols": "i32", "stride_lane": "i32", "first_lane": "i32"},
                       _CONTEXT_CONSTS),
    "context_decode": ("_context_decode_kernel",
                       {"desc_ptr": "*i64", "count_ptr": "*i64", "offset_ptr": "*i64", "word_ptr": "*u16",
                        "kind_ptr": "*i32", "ta_ptr": "*i32", "tb_ptr": "*i32", "na_ptr": "*i32",
                        "nb_ptr": "*i32", "bin_a_ptr": "*i32", "bin_b_ptr": "*i32", "rate_ptr": "*i32",
                        "out_ptr": "*u8", "status_ptr": "*i32", "n_rate": "i32", "first_lane": "i32"},
                       _CONTEXT_CONSTS),
    "wavefront_encode": ("_wavefront_encode_kernel",
                         {**{k: "*i32" for k in _WF_STATE}, "desc_ptr": "*i64", "res_flat_ptr": "*u8",
                          "kind_ptr": "*i32", "bin_a_ptr": "*i32", "bin_b_ptr": "*i32", "weight_ptr": "*i32",
                          "start_ptr": "*i32", "freq_ptr": "*i32", "raw_ptr": "*i32", "scratch_ptr": "*i32",
                          "count_ptr": "*i64", "n_weight": "i32", "update_steps": "i32", "list_cap": "i32",
                          "ring_rows": "i32", "strip_symbols": "i32", "stride_raw": "i32", "stride_words": "i32",
                          "force_log2k": "i32", "first_strip": "i32"},
                         {**_WF_CONSTS, "MAX_STATES": 128, "SYMBOLS_PER_STATE": 4096, "STATE_BUDGET": 300}),
    "wavefront_decode": ("_wavefront_decode_kernel",
                         {**{k: "*i32" for k in _WF_STATE}, "desc_ptr": "*i64", "word_ptr": "*u16",
                          "kind_ptr": "*i32", "bin_a_ptr": "*i32", "bin_b_ptr": "*i32", "weight_ptr": "*i32",
                          "out_ptr": "*u8", "status_ptr": "*i32", "stats_ptr": "*i64", "n_weight": "i32",
                          "update_steps": "i32", "list_cap": "i32", "ring_rows": "i32", "first_strip": "i32"},
                         _WF_CONSTS),
    "blend_residual": ("_blend_residual_kernel",
                       {"x_ptr": "*u8", "prm_ptr": "*i32", "err_ptr": "*i16", "lut_ptr": "*i32", "out_ptr": "*u8",
                        "H": "i32", "W": "i32", "bits": "i32", "stride_xp": "i32", "stride_xh": "i32", "stride_xw": "i32",
                        "stride_op": "i32", "stride_oh": "i32", "stride_ow": "i32"},
                       {"BLOCK_H": "BLOCK_H", "BLOCK_W": "BLOCK_W"}),
    "blend_residual:errors": ("_blend_errors_kernel",
                              {"x_ptr": "*u8", "prm_ptr": "*i32", "err_ptr": "*i16", "H": "i32", "W": "i32",
                               "bits": "i32", "stride_xp": "i32", "stride_xh": "i32", "stride_xw": "i32"},
                              {"BLOCK_H": "BLOCK_H", "BLOCK_W": "BLOCK_W"}),
    "blend_scan": ("_blend_scan_kernel",
                   {"res_ptr": "*u8", "prm_ptr": "*i32", "lut_ptr": "*i32", "out_ptr": "*u8", "vring_ptr": "*i32",
                    "ering_ptr": "*i32", "P": "i32", "H": "i32", "W": "i32", "bits": "i32", "stride_rp": "i32",
                    "stride_rh": "i32", "stride_rw": "i32"},
                   {"BLOCK_H": "BLOCK_H", "MAX_PLANES": "MAX_PLANES", "RING": "RING", "N_SUB": "N_SUB"}),
    "fused_decode": ("_fused_decode_kernel",
                     {**{k: "*i32" for k in _WF_STATE + ("tc_ptr", "hc_ptr", "sc_ptr", "uc_ptr", "fc_ptr", "lc_ptr",
                                                         "vring_ptr", "ering_ptr")},
                      "desc_ptr": "*i64", "word_ptr": "*i32", "kind_ptr": "*i32", "prm_ptr": "*i32", "mix_ptr": "*i32",
                      "bias_ptr": "*i32", "bin_a_ptr": "*i32", "bin_b_ptr": "*i32", "bin_s_ptr": "*i32",
                      "bin_g_ptr": "*i32", "lut_ptr": "*i32", "weight_ptr": "*i32", "out_ptr": "*u8",
                      "status_ptr": "*i32", "n_weight": "i32", "n_bin_s": "i32", "n_bin_g": "i32",
                      "update_steps": "i32", "list_cap": "i32", "ring_rows": "i32", "max_width": "i32",
                      "first_strip": "i32"},
                     {**_WF_CONSTS, "NC_C": 4000, "N_BIAS": 64, "N_SUB": 6, "MAX_PLANES": 4}),
    "fused_encode": ("_fused_encode_kernel",
                     {**{k: "*i32" for k in _WF_STATE + ("tc_ptr", "hc_ptr", "sc_ptr", "uc_ptr", "fc_ptr", "lc_ptr")},
                      "desc_ptr": "*i64", "res_flat_ptr": "*u8", "ctx_flat_ptr": "*i16", "kind_ptr": "*i32",
                      "mix_ptr": "*i32", "bin_a_ptr": "*i32", "bin_b_ptr": "*i32", "weight_ptr": "*i32",
                      "start_ptr": "*i32", "freq_ptr": "*i32", "raw_ptr": "*i32", "scratch_ptr": "*i32",
                      "count_ptr": "*i64", "n_weight": "i32", "update_steps": "i32", "list_cap": "i32",
                      "ring_rows": "i32", "strip_symbols": "i32", "stride_raw": "i32", "stride_words": "i32",
                      "force_log2k": "i32", "first_strip": "i32"},
                     {**_WF_CONSTS, "NC_C": 4000, "MAX_STATES": 128, "SYMBOLS_PER_STATE": 4096,
                      "STATE_BUDGET": 300}),
    "fused_encode:errors": ("_fused_errors_kernel",
                            {"x_ptr": "*u8", "prm_ptr": "*i32", "err_ptr": "*i16", "H": "i32", "W": "i32",
                             "lane_rows": "i32", "stride_xp": "i32", "stride_xh": "i32", "stride_xw": "i32"},
                            {"BLOCK_H": "BLOCK_H", "BLOCK_W": "BLOCK_W"}),
    "fused_encode:symbols": ("_fused_symbols_kernel",
                             {"x_ptr": "*u8", "prm_ptr": "*i32", "err_ptr": "*i16", "lut_ptr": "*i32",
                              "bias_ptr": "*i32", "bin_s_ptr": "*i32", "bin_g_ptr": "*i32", "res_ptr": "*u8",
                              "ctx_ptr": "*i16", "bctx_ptr": "*i8", "e4_ptr": "*i16", "H": "i32", "W": "i32",
                              "lane_rows": "i32", "n_bin_s": "i32", "n_bin_g": "i32", "stride_xp": "i32",
                              "stride_xh": "i32", "stride_xw": "i32"},
                             {"N_BIAS": 64, "BLOCK_H": "BLOCK_H", "BLOCK_W": "BLOCK_W"}),
}
# The predictor kernels (MED and blend) also run on uint16 planes (9..16-bit samples; bits is a runtime
# argument, so this is the only other variant).
for _name, _ptrs in (("predictor_residual", ("x_ptr", "out_ptr")), ("predictor_scan", ("res_ptr", "out_ptr")),
                     ("blend_residual", ("x_ptr", "out_ptr")), ("blend_residual:errors", ("x_ptr",)),
                     ("blend_scan", ("res_ptr", "out_ptr"))):
    SIGNATURES[_name + ":u16"] = (SIGNATURES[_name][0], {**SIGNATURES[_name][1], **{k: "*u16" for k in _ptrs}},
                                  SIGNATURES[_name][2])
# The wavefront decoder also reads int32 words (several images' streams, or the kernel encoder's output).
SIGNATURES["wavefront_decode:i32 words"] = (SIGNATURES["wavefront_decode"][0],
                                            {**SIGNATURES["wavefront_decode"][1], "word_ptr": "*i32"},
                                            SIGNATURES["wavefront_decode"][2])

SCRIPT = r"""
import importlib, json, sys
import triton
from triton.backends.compiler import GPUTarget
from triton.compiler import ASTSource

table, archs = json.loads(sys.argv[1]), json.loads(sys.argv[2])
for name, (kernel, sig, consts) in table.items():
    mod_name = name.split(":")[0]          # "module:variant" entries: another pointer dtype of one kernel
    mod = importlib.import_module("tricodec.kernels." + mod_name)
    fn = getattr(mod, kernel)
    # constexprs named after a module constant take the pinned value the wrapper launches with
    consts = {k: getattr(mod, v) if isinstance(v, str) else v for k, v in consts.items()}
    ones = {k: 1 for k, v in sig.items() if v in ("i32", "i64")}
    for variant, extra in (("generic", {}), ("ints=1", ones)):
        c = {**consts, **extra}
        s = {k: ("constexpr" if k in c else v) for k, v in sig.items()}
        s.update({k: "constexpr" for k in consts})
        for arch in archs:
            k = triton.compile(ASTSource(fn, s, c), target=GPUTarget("cuda", arch, 32),
                               options={"num_warps": getattr(mod, "NUM_WARPS", 4)})
            assert len(k.asm["cubin"]) > 0
            print(f"{name} {variant} sm_{arch}: ok")
"""


def test_kernels_compile_for_gpus():
    try:
        import triton
    except Exception as e:  # pragma: no cover
        pytest.skip(f"triton not importable: {e}")
    ptxas = Path(triton.__file__).parent / "backends" / "nvidia" / "bin" / "ptxas"
    if not ptxas.exists():
        pytest.skip("Triton's bundled ptxas is missing: cannot compile ahead of time here")
    env = {k: v for k, v in os.environ.items() if k != "TRITON_INTERPRET"}
    env.setdefault("TRITON_DEFAULT_FP_FUSION", "1")   # silences a 3.9 warning; no float math in these kernels
    proc = subprocess.run([sys.executable, "-c", SCRIPT, json.dumps(SIGNATURES), json.dumps([80, 90])],
                          env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-6000:]
    assert proc.stdout.count(": ok") == len(SIGNATURES) * 2 * 2
