"""Measurement: ``basechat bench``, ``basechat eval``, the packaged app's self-test, and the bare
llama.cpp loops they compare against. It sits above every other layer (it may drive the engine,
the window and the store alike) and nothing in the app imports it."""
