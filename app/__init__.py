"""Basechat: offline chat with base language models."""

__version__ = "0.1.0"
