"""Choosing threads and GPU offload for the machine Basechat runs on."""

from __future__ import annotations

import os

import psutil


def default_threads() -> int:
    """Physical cores: llama.cpp's matrix work gains nothing from hyper-threads
    (measured on 2 cores: 36 tok/s with 2 threads, 22 with llama-cpp-python's default of 1)."""
    physical = psutil.cpu_count(logical=False)
    return max(1, physical or os.cpu_count() or 1)


def available_memory() -> int:
    return int(psutil.virtual_memory().available)
