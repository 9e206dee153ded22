"""Small real GGUF files written with gguf-py, shared by the tests that need one."""

from __future__ import annotations

from pathlib import Path

import gguf
import numpy as np


def write_gguf(
    path: Path, arch: str = "llama", *, name: str | None = None, context: int | None = None,
    shape: tuple[int, int] = (8, 4), seed: int | None = None, big_endian: bool = False,
    metadata: dict[str, int] | None = None, strings: dict[str, str] | None = None,
) -> Path:  # fmt: skip
    """One tensor, zeros or (with ``seed``) random, so a corrupted byte changes the hash."""
    endian = gguf.GGUFEndian.BIG if big_endian else gguf.GGUFEndian.LITTLE
    writer = gguf.GGUFWriter(path, arch, endianess=endian)
    if name:
        writer.add_name(name)
    if context:
        writer.add_context_length(context)
    for key, value in (metadata or {}).items():
        writer.add_uint32(key, value)
    for key, text in (strings or {}).items():
        writer.add_string(key, text)
    weights = np.zeros(shape, dtype=np.float32)
    if seed is not None:
        weights = np.random.default_rng(seed).standard_normal(shape).astype(np.float32)
    writer.add_tensor("token_embd.weight", weights)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path
