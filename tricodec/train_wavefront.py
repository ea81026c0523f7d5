"""Training a wavefront model (``tricodec train --kind wavefront``, the kind of ``tric-wf2``).

Its contexts and strips are those of the context model, so its starting tables are fitted exactly as
``train_context`` fits them (token counts under the coder's own contexts, resumable, deterministic);
what the wavefront model adds is its adaptation between steps: ``weight_lut`` (the weight of a context's
past after u uses) and ``update_steps``, chosen on the training side only (perf/RESULTS.md: the sweep).
"""
from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np

from . import wavefront_model as wm
from .model import load_model, model_to_bytes
from .train_context import train_context

W0, W_MAX = 16, 512     # weight_lut = min(u + W0, W_MAX)
UPDATE_STEPS = 16       # tables move after every 16th step: +0.07% bytes against every step, 40% less CPU
UPDATE_STEPS_BLEND = 32  # with the blend (tric-wf2), whose scan costs CPU too: +0.04% bytes, ~5% faster decode


def wavefront_from_context(context_weights: bytes, *, w0: int = W0, w_max: int = W_MAX,
                           update_steps: int = UPDATE_STEPS, predictor: str = "med") -> bytes:
    """A context model's weights file -> a wavefront model's (same name, tables, bins and strips)."""
    with np.load(io.BytesIO(context_weights), allow_pickle=False) as z:
        config = json.loads(str(z["config"]))
        arrays = {k: np.asarray(z[k]) for k in ("init_a", "init_b", "bin_a", "bin_b")}
    if predictor != "med":          # (tric-wf1's config has no such key: its content digest stays)
        config["predictor"] = predictor
    config = {**config, "kind": "wavefront", "update_steps": update_steps,
              "training": config.get("training", "") + f"; weights min(u + {w0}, {w_max}), update every "
                                                         f"{update_steps} step(s)"}
    return model_to_bytes(config, weight_lut=wm.weight_schedule(w0, w_max).astype(np.uint16), **arrays)


def train_wavefront(data: Path, *, name: str, base=None, base_weight: float = 0.0, predictor: str | None = None,
                    **options) -> bytes:
    """Fit a wavefront model to the RGB/grey images of folder ``data``; returns a weights file's bytes.
    ``base`` (a wavefront or context model) fine-tunes its starting tables; ``predictor`` ("med" or
    "blend"; default: the base's, else "blend") is the one its tables are fitted to and it codes with;
    ``options`` are :func:`tricodec.train_context.train_context`'s (seed, grain, checkpoint, progress ...)."""
    if base is not None:
        b = load_model(base)
        if b.kind not in ("wavefront", "context"):
            raise ValueError("fine-tuning starts from a wavefront or context model")
        if predictor is None:
            predictor = getattr(b, "predictor", "med")
        base = _as_context(b) if b.kind == "wavefront" else b
    predictor = "blend" if predictor is None else predictor
    update_steps = options.pop("update_steps", UPDATE_STEPS_BLEND if predictor == "blend" else UPDATE_STEPS)
    return wavefront_from_context(train_context(data, name=name, base=base, base_weight=base_weight,
                                                predictor=predictor, **options), predictor=predictor,
                                  update_steps=update_steps)


def _as_context(model):
    """The context-model view of a wavefront model's tables (what train_context fine-tunes from)."""
    from .context_model import ContextModel, rate_schedule
    return ContextModel(name=model.name, sha256=model.sha256, init_a=model.init_a, init_b=model.init_b,
                        bin_a=model.bin_a, bin_b=model.bin_b, rate_lut=rate_schedule(), lane_pixels=model.lane_pixels,
                        rgb_order=model.rgb_order, rgb_refs=model.rgb_refs)
