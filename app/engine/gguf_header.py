"""Reading a GGUF file's header before llama.cpp ever sees the file.

Written here rather than with ``gguf.GGUFReader``: that reader turns every
entry of the vocabulary into numpy views and took 22 s on the default model's
262,144-token vocabulary; this walk skips arrays it does not need and takes a
fraction of a second. The type tables (value types, quantisation block sizes,
file types) still come from the ``gguf`` package.
"""

from __future__ import annotations

import mmap
import struct
from dataclasses import dataclass
from pathlib import Path

from gguf import GGML_QUANT_SIZES, GGMLQuantizationType, GGUFValueType, LlamaFileType

from app.errors import ModelFileError

MAGIC = b"GGUF"
_SCALAR = {
    GGUFValueType.UINT8: "<B",
    GGUFValueType.INT8: "<b",
    GGUFValueType.UINT16: "<H",
    GGUFValueType.INT16: "<h",
    GGUFValueType.UINT32: "<I",
    GGUFValueType.INT32: "<i",
    GGUFValueType.FLOAT32: "<f",
    GGUFValueType.BOOL: "<?",
    GGUFValueType.UINT64: "<Q",
    GGUFValueType.INT64: "<q",
    GGUFValueType.FLOAT64: "<d",
}
_WANTED_ARRAYS = {"general.tags"}


@dataclass(frozen=True)
class GGUFInfo:
    path: Path
    version: int
    architecture: str
    name: str
    context_length: int | None
    quantisation: str
    parameters: int
    file_size: int
    data_end: int
    has_chat_template: bool
    metadata: dict

    @property
    def looks_instruct(self) -> bool:
        """Instruction-tuned models carry a chat template or say so in their name."""
        label = f"{self.name} {self.path.name}".lower()
        words = ("instruct", "-it", "_it", "chat", "rlhf", "sft")
        return self.has_chat_template or any(w in label for w in words)


class _Cursor:
    """Bounds-checked little-endian reads over a memory map."""

    def __init__(self, data: mmap.mmap | bytes) -> None:
        self.data = data
        self.pos = 0
        self.items = 0

    def count_items(self, count: int) -> None:
        """Array items read so far; past the limit the header is taken for a crafted one."""
        self.items += count
        if self.items > MAX_ARRAY_ITEMS:
            raise ValueError("more array items than any model has")

    def unpack(self, fmt: str):
        size = struct.calcsize(fmt)
        self.need(size)
        (value,) = struct.unpack_from(fmt, self.data, self.pos)
        self.pos += size
        return value

    def string(self) -> str:
        length = self.unpack("<Q")
        self.need(length)
        raw = self.data[self.pos : self.pos + length]
        self.pos += length
        return raw.decode("utf-8", errors="replace")

    def skip_strings(self, count: int) -> None:
        for _ in range(count):
            length = self.unpack("<Q")
            self.pos += length
        self.need(0)

    def need(self, size: int) -> None:
        if self.pos + size > len(self.data):
            raise _Truncated


class _Truncated(Exception):
    pass


def has_chat_template(prefix: bytes) -> bool | None:
    """From the first bytes of a GGUF file (a ranged download): True if its metadata holds a
    chat template (an instruction-tuned model), False if all of it was read without one, None
    if the bytes ran out first or are not GGUF."""
    if prefix[:4] != MAGIC:
        return None
    cur = _Cursor(prefix)
    try:
        cur.pos = 4
        if cur.unpack("<I") not in (2, 3):
            return None
        _n_tensors, n_kv = cur.unpack("<Q"), cur.unpack("<Q")
        for _ in range(min(n_kv, 1_000_000)):
            if _read_kv(cur)[0] == "tokenizer.chat_template":
                return True
    except (_Truncated, ValueError, struct.error):
        return None
    return False


def read_gguf_header(path: str | Path) -> GGUFInfo:
    """Parse magic, metadata and tensor table; raise ModelFileError with one line if unsound."""
    path = Path(path)
    _check_file(path)
    with path.open("rb") as handle, mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ) as data:
        if data[:4] != MAGIC:
            raise ModelFileError(f"{path.name} is not a GGUF model file.")
        try:
            return _parse(path, _Cursor(data))
        except (_Truncated, ValueError, OverflowError, struct.error):
            raise ModelFileError(
                f"{path.name} is damaged or truncated (its GGUF header does not parse)."
            ) from None


def require_complete(info: GGUFInfo) -> None:
    """The tensor data the header promises is all there (a cut download is caught here)."""
    if info.data_end > info.file_size:
        raise ModelFileError(f"{info.path.name} is truncated: its tensor data is incomplete.")


def _check_file(path: Path) -> None:
    if not path.exists():
        raise ModelFileError(f"Model file not found: {path}")
    if not path.is_file():
        raise ModelFileError(f"{path} is not a file.")
    if path.stat().st_size == 0:
        raise ModelFileError(f"{path.name} is empty (0 bytes).")
    if path.stat().st_size < 24:
        raise ModelFileError(f"{path.name} is too small to be a GGUF model file.")


def _parse(path: Path, cur: _Cursor) -> GGUFInfo:
    cur.pos = 4
    version = cur.unpack("<I")
    if version not in (2, 3) and struct.unpack(">I", struct.pack("<I", version))[0] in (2, 3):
        raise ModelFileError(
            f"{path.name} is a big-endian GGUF file; llama.cpp here reads little-endian ones."
        )
    if version not in (2, 3):
        raise ModelFileError(f"{path.name} uses GGUF version {version}, which is not supported.")
    n_tensors, n_kv = cur.unpack("<Q"), cur.unpack("<Q")
    if n_tensors > 1_000_000 or n_kv > 1_000_000:
        raise ValueError("absurd counts")
    meta = dict(_read_kv(cur) for _ in range(n_kv))
    alignment = meta.get("general.alignment", 32)
    if not isinstance(alignment, int) or alignment <= 0 or alignment & (alignment - 1):
        raise ModelFileError(f"{path.name} has an invalid general.alignment ({alignment!r}).")
    params, data_end = _read_tensors(cur, n_tensors, alignment)
    arch = str(meta.get("general.architecture", ""))
    if not arch:
        raise ModelFileError(f"{path.name} does not name its model architecture.")
    return GGUFInfo(
        path=path,
        version=version,
        architecture=arch,
        name=str(meta.get("general.name", path.stem)),
        context_length=_int_or_none(meta.get(f"{arch}.context_length")),
        quantisation=_file_type_name(meta.get("general.file_type")),
        parameters=params,
        file_size=len(cur.data),
        data_end=data_end,
        has_chat_template="tokenizer.chat_template" in meta,
        metadata=meta,
    )


def _read_kv(cur: _Cursor) -> tuple[str, object]:
    key = cur.string()
    vtype = GGUFValueType(cur.unpack("<I"))
    return key, _read_value(cur, vtype, keep=key in _WANTED_ARRAYS)


MAX_ARRAY_DEPTH = 4  # real files nest no arrays; a crafted one must not exhaust the stack
MAX_ARRAY_ITEMS = 20_000_000  # all arrays of one header together (a 262k vocabulary is ~800k)


def _read_value(cur: _Cursor, vtype: GGUFValueType, keep: bool = False, depth: int = 0) -> object:
    """One metadata value. Arrays inside arrays are walked to at most ``MAX_ARRAY_DEPTH`` levels
    and ``MAX_ARRAY_ITEMS`` items in all, so no file can recurse without end or loop for ever."""
    if vtype == GGUFValueType.STRING:
        return cur.string()
    if vtype != GGUFValueType.ARRAY:
        return cur.unpack(_SCALAR[vtype])
    if depth >= MAX_ARRAY_DEPTH:
        raise ValueError("arrays nested too deeply")
    item_type = GGUFValueType(cur.unpack("<I"))
    count = cur.unpack("<Q")
    cur.count_items(count)
    if keep or item_type == GGUFValueType.ARRAY:
        items = [_read_value(cur, item_type, keep, depth + 1) for _ in range(count)]
        return items if keep else f"<array of {count}>"
    if item_type == GGUFValueType.STRING:
        cur.skip_strings(count)
    else:
        cur.pos += struct.calcsize(_SCALAR[item_type]) * count
        cur.need(0)
    return f"<array of {count}>"


def _read_tensors(cur: _Cursor, count: int, alignment: int) -> tuple[int, int]:
    """Total parameters, and where the last tensor's data ends."""
    params, ends = 0, []
    for _ in range(count):
        cur.string()
        n_dims = cur.unpack("<I")
        if n_dims > 8:
            raise ValueError("too many dimensions")
        shape = [cur.unpack("<Q") for _ in range(n_dims)]
        qtype = GGMLQuantizationType(cur.unpack("<I"))
        offset = cur.unpack("<Q")
        elements = 1
        for dim in shape:
            elements *= dim
        block, type_size = GGML_QUANT_SIZES[qtype]
        params += elements
        ends.append(offset + elements // block * type_size)
    data_start = -(-cur.pos // alignment) * alignment
    return params, data_start + max(ends, default=0)


def _int_or_none(value: object) -> int | None:
    return int(value) if isinstance(value, int) else None


def _file_type_name(value: object) -> str:
    try:
        return LlamaFileType(int(value)).name.removeprefix("MOSTLY_")  # type: ignore[call-overload]
    except (TypeError, ValueError):
        return "unknown"
