"""The engine layer: loading models and streaming their continuations."""

from app.engine.base import Backend, Completion, Generation, SamplingParams, Usage

__all__ = ["Backend", "Completion", "Generation", "SamplingParams", "Usage"]
