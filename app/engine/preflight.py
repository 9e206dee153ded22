"""Checks a model file must pass before llama.cpp is allowed to open it.

llama.cpp may crash or hang on a file that is not what it claims to be; these
checks turn every case we can foresee into a ModelFileError with one line.
"""

from __future__ import annotations

from pathlib import Path

from app.engine.device import available_memory
from app.engine.gguf_header import GGUFInfo, read_gguf_header, require_complete
from app.errors import ModelFileError

GIB = 1024**3


def kv_cache_bytes(info: GGUFInfo, n_ctx: int) -> int:
    """f16 K and V for every layer and context position."""
    meta, arch = info.metadata, info.architecture
    layers = int(meta.get(f"{arch}.block_count", 0) or 0)
    heads = int(meta.get(f"{arch}.attention.head_count", 1) or 1)
    kv_heads = int(meta.get(f"{arch}.attention.head_count_kv", heads) or heads)
    width = int(meta.get(f"{arch}.embedding_length", 0) or 0)
    key = int(meta.get(f"{arch}.attention.key_length", width // heads) or 0)
    value = int(meta.get(f"{arch}.attention.value_length", width // heads) or 0)
    return n_ctx * layers * kv_heads * (key + value) * 2


def check_model_file(path: str | Path, n_ctx: int, free_bytes: int | None = None) -> GGUFInfo:
    """Header sound, data complete, and enough free memory for weights plus KV cache."""
    info = read_gguf_header(path)
    require_complete(info)
    need = info.file_size + kv_cache_bytes(info, n_ctx)
    free = available_memory() if free_bytes is None else free_bytes
    if need > free:
        raise ModelFileError(
            f"{info.path.name} needs about {need / GIB:.1f} GB of memory and only "
            f"{free / GIB:.1f} GB is free. Close other programs or choose a smaller model."
        )
    return info
