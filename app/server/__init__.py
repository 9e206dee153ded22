"""Basechat as a local API server: the loaded base model for any OpenAI or KoboldCpp client.

``/v1/completions`` continues raw text (with log-probabilities, ``n`` alternatives decoded together
and ``echo`` scoring of the prompt's own tokens); ``/v1/chat/completions`` renders the messages
through Basechat's transcript scaffold, so a chat client talking to a base model gets an answer,
not a continuation; ``/api/...`` is the subset of KoboldCpp's API that SillyTavern's text
completion mode and Kobold Lite use. One request is served at a time (``hub.Hub``); the others
wait their turn. The routes are Starlette's, served by uvicorn (``app.cli.serve``).
"""
