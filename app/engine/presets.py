"""Sampling presets, as KoboldCpp and SillyTavern users expect: a few named starting points, each
a set of ``SamplingParams`` values that the chat's own settings and the command line's flags go
on top of. The values come from ``basechat eval --sampling app`` on the tune half (docs/eval.md)."""

from __future__ import annotations

from dataclasses import replace

from app.engine.base import SamplingParams

PRESETS: dict[str, dict] = {
    # The default: cool enough that a small model keeps what it was told (memory recall 0.67 on the
    # tune half against 0.28 at temperature 0.7), penalties over the reply only, DRY against loops.
    "precise": {"temperature": 0.3, "top_k": 40, "top_p": 0.9, "min_p": 0.1, "repeat_penalty": 1.1,
                "penalize_prompt": False, "dry_multiplier": 0.8, "xtc_probability": 0.0},
    # Livelier chat at the usual temperature, the same guards.
    "balanced": {"temperature": 0.7, "top_k": 40, "top_p": 0.95, "min_p": 0.05, "repeat_penalty": 1.1,
                 "penalize_prompt": False, "dry_multiplier": 0.8, "xtc_probability": 0.0},
    # Stories: hotter, and XTC now and then sets the most obvious choices aside.
    "creative": {"temperature": 1.0, "top_k": 100, "top_p": 1.0, "min_p": 0.05, "repeat_penalty": 1.1,
                 "penalize_prompt": False, "dry_multiplier": 0.8, "xtc_probability": 0.5,
                 "xtc_threshold": 0.1},
}  # fmt: skip


def preset_params(name: str, base: SamplingParams | None = None) -> SamplingParams:
    """``base`` (the defaults) with the preset's values; an unknown name raises KeyError."""
    return replace(base or SamplingParams(), **PRESETS[name])


def preset_of(params: SamplingParams) -> str:
    """The preset ``params`` match (its values, whatever else differs), or "" for none."""
    for name, values in PRESETS.items():
        if all(getattr(params, key) == value for key, value in values.items()):
            return name
    return ""
