"""Golden files: every .tric in tests/golden/ must keep decoding to its .png, on every backend we test.

Never regenerate a golden file to make this pass: a failure here means old files would be lost."""
from pathlib import Path

import pytest
from PIL import Image

import tricodec

from helpers import same_image

GOLDEN = Path(__file__).resolve().parent / "golden"
FILES = sorted(GOLDEN.glob("*.tric"))


def test_golden_files_exist():
    assert len(FILES) >= 13
    assert {tricodec.read_header(p.read_bytes()).model_name for p in FILES} >= {"tric-bs1", "tric-bs2", "tric-cx1",
                                                                               "tric-wf1", "tric-wf2", "tric-wf3", ""}


def test_context_golden_has_several_lanes():
    from tricodec import container, context_model
    data = (GOLDEN / "v1_cx1_wide_4096x70.tric").read_bytes()
    header, sections = container.unpack(data)
    assert context_model.unpack_side(sections[container.SEC_SIDE], header.height, header.width) == 64


def test_wavefront_golden_has_strips_and_states():
    """The wide wavefront golden pins two strips of 35 rows with 32 rANS states each."""
    from tricodec import container, wavefront_model
    data = (GOLDEN / "v1_wf1_wide_4096x70.tric").read_bytes()
    header, sections = container.unpack(data)
    lane_rows = wavefront_model.unpack_side(sections[container.SEC_SIDE], header.height, header.width)
    counts, _ = wavefront_model.unpack_lanes(sections[container.SEC_LANES], (1, 70, 4096), lane_rows)
    assert lane_rows == 35 and counts[:, 2].tolist() == [5, 5]


def test_blend_golden_pins_its_predictor_choices():
    """The wf2 RGB golden pins the blend on every plane, R referring to G and B to (G + R) / 2."""
    from tricodec import container, wavefront_model
    header, sections = container.unpack((GOLDEN / "v1_wf2_rgb_41x34.tric").read_bytes())
    params = wavefront_model.unpack_params(sections[container.SEC_SIDE], 3)
    assert params.tolist() == [[1, -1, 0, -1, 0], [1, 0, 4, -1, 0], [1, 0, 2, 1, 2]]


def test_fused_golden_pins_strips_and_a_mix_with_table_c():
    """The wide wf3 golden pins two strips, a mix that reads table C and a bias table; the RGB one, each
    plane kind's mix (and no bias: too small to pay for one)."""
    from tricodec import container, fused_model, wavefront_model
    header, sections = container.unpack((GOLDEN / "v1_wf3_wide_4096x70.tric").read_bytes())
    lane_rows, params, mix, rep, bias = fused_model.unpack_side(sections[container.SEC_SIDE], (1, 70, 4096))
    assert lane_rows == 35 and mix[0, 2] > 0 and params[0, 0] == 1 and bias[0].any()
    header, sections = container.unpack((GOLDEN / "v1_wf3_rgb_41x34.tric").read_bytes())
    _, params, mix, rep, bias = fused_model.unpack_side(sections[container.SEC_SIDE], (3, 34, 41))
    assert mix.sum(axis=1).tolist() == [16, 16, 16] and (mix[:, 2] > 0).any()
    assert (params[:, 0] == 1).any() and not bias.any() and rep == (1, 1)
    header, sections = container.unpack((GOLDEN / "v1_wf3_rgb_x2x3_122x67.tric").read_bytes())
    assert fused_model.unpack_side(sections[container.SEC_SIDE], (3, 67, 122))[3] == (2, 3)


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.name)
def test_golden_decodes(path):
    expected = Image.open(path.with_suffix(".png"))
    expected.load()
    assert same_image(tricodec.decode(path.read_bytes(), device="cpu"), expected)


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.name)
def test_encoder_still_writes_golden_bytes(path):
    """The v1 encoder is deterministic; a change here is a format or encoder change to review. Each file
    is re-encoded with the model it names (fallback files need none)."""
    data = path.read_bytes()
    model = tricodec.read_header(data).model_name or None
    assert tricodec.encode(Image.open(path.with_suffix(".png")), device="cpu", model=model) == data
