"""The command line's grammar: every command, its options and their help."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from app.engine.presets import PRESETS


class Parser(argparse.ArgumentParser):
    """argparse, but a bad argument is one line, not a usage block."""

    def error(self, message: str) -> None:  # type: ignore[override]
        sys.stderr.write(f"basechat: error: {message} (see 'basechat --help')\n")
        raise SystemExit(2)


def _model_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", help="catalog id or path to a .gguf file (default: gemma3-270m)")
    parser.add_argument("--template", help="template name or .toml path (default: chat)")
    parser.add_argument("--history", type=Path, help='JSON list of {"role", "text"} turns')
    parser.add_argument("--raw", action="store_true", help="send the text with no transcript")
    parser.add_argument("--max-tokens", type=int, help="reply length limit (default 256)")
    frame_options(parser)
    sampling_options(parser)
    parser.add_argument("--ctx", type=int, help="context size in tokens (default 4096)")
    parser.add_argument("--threads", type=int, help="CPU threads (default: physical cores)")
    parser.add_argument("--gpu-layers", type=int, help="layers to offload (default: all on Metal)")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--draft", metavar="lookup|MODEL|off",
                        help="speed up replies: drafts from the text (lookup, the default), "
                             "a draft model of the same vocabulary, or off")  # fmt: skip
    server_options(parser)


def frame_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--persona", metavar="TEXT", help="who you are, put in the frame ({{user}} is your name)"
    )
    parser.add_argument(
        "--memory",
        metavar="TEXT|FILE",
        help="what the model keeps in mind in this chat, a line each (in the frame)",
    )
    parser.add_argument("--user-name", metavar="NAME", help="your speaker name (default: the template's)")
    parser.add_argument(
        "--authors-note", metavar="TEXT", help="a note put --note-depth messages from the end"
    )
    parser.add_argument(
        "--note-depth", type=int, help="messages from the end the author's note goes (default 4)"
    )
    parser.add_argument("--no-lorebook", action="store_true", help="leave the template's lorebook out")


def _group_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--group", metavar="A,B,…",
                        help="a group chat of these characters: template or card names, Name=description, "
                             "or bare names")  # fmt: skip
    parser.add_argument("--as", dest="speaker", metavar="NAME", help="in a group: who answers")
    parser.add_argument("--next-speaker", choices=["model", "addressed", "in_turn"], default="model",
                        help="in a group: who speaks next — the model's choice (default), the member "
                             "named in the message, or each in turn")  # fmt: skip
    if parser.prog.split()[-1] != "prompt":
        parser.add_argument("--turns", type=int, default=0, metavar="N",
                            help="in a group: the members talk on N more turns by themselves")  # fmt: skip


def sampling_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--temperature", type=float, help="0 = greedy (default 0.3)")
    parser.add_argument("--top-k", type=int, help="keep the K likeliest tokens (default 40; 0 = all)")
    parser.add_argument("--top-p", type=float, help="nucleus sampling (default 0.9)")
    parser.add_argument(
        "--min-p", type=float, help="drop tokens below this share of the top one (default 0.1)"
    )
    parser.add_argument(
        "--repeat-penalty", type=float, help="penalise repeated tokens (default 1.1; 1 = off)"
    )
    parser.add_argument("--repeat-last-n", type=int, help="tokens the repeat penalty looks back over (64)")
    parser.add_argument(
        "--penalty-scope",
        choices=["prompt", "reply"],
        help="the repeat penalty and DRY look back over the prompt too, or the reply only",
    )
    parser.add_argument("--dry-multiplier", type=float, help="DRY repetition penalty strength (0 = off)")
    parser.add_argument("--dry-base", type=float, help="DRY: how fast the penalty grows with a repeat")
    parser.add_argument("--dry-allowed-length", type=int, help="DRY: repeats this long are free (2)")
    parser.add_argument("--dry-last-n", type=int, help="DRY: tokens looked back over (2048; -1 = all)")
    parser.add_argument(
        "--xtc-probability", type=float, help="XTC: chance of excluding top choices (0 = off)"
    )
    parser.add_argument("--xtc-threshold", type=float, help="XTC: the probability a top choice needs (0.1)")
    parser.add_argument(
        "--best-of", type=int,
        help="draw a short answer this many times at once and keep the likeliest (default 4; 1 = off)",
    )  # fmt: skip
    parser.add_argument("--preset", choices=sorted(PRESETS), help="a sampling preset the flags go on top of")
    parser.add_argument("--seed", type=int, help="random seed for sampling")
    parser.add_argument("--ignore-eos", action="store_true",
                        help="keep writing past the model's end of text (benchmarks, tests)")  # fmt: skip


def server_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--server", metavar="URL", help="use the model of an inference server (env BASECHAT_SERVER)"
    )
    kinds = "llama = llama-server's API, openai = /v1/completions (default: detect)"
    parser.add_argument("--server-kind", choices=["auto", "llama", "openai"], default="auto", help=kinds)
    parser.add_argument("--api-key-env", metavar="NAME", help="read the server's API key from this variable")
    wait = "seconds a silent server is waited for (default 60)"
    parser.add_argument("--server-timeout", type=float, default=60.0, help=wait)


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(prog="basechat", description="Offline chat with base language models.")
    parser.add_argument("--version", action="version", version=_version())
    parser.add_argument("--data-dir", type=Path, help="Basechat's data folder (chats, models)")
    sub = parser.add_subparsers(dest="command", parser_class=Parser)
    ask = sub.add_parser("ask", help="one reply to MESSAGE")
    _model_options(ask)
    ask.add_argument(
        "--resume", type=int, metavar="ID", help="continue a stored conversation (and store this turn)"
    )
    ask.add_argument("--n", type=int, default=1, metavar="N",
                     help="N alternative replies decoded together (1-8; needs temperature > 0)")  # fmt: skip
    ask.add_argument("--logprobs", type=int, default=0, metavar="K",
                     help="record each token's K likeliest candidates (shown with --json)")  # fmt: skip
    ask.add_argument("message")
    prompt = sub.add_parser("prompt", help="print the exact text that would be sent")
    _model_options(prompt)
    prompt.add_argument("message")
    chat = sub.add_parser("chat", help="a conversation in the terminal")
    _model_options(chat)
    chat.add_argument("--resume", type=int, metavar="ID", help="continue a stored conversation")
    for command in (ask, chat, prompt):
        _group_options(command)
    gui = sub.add_parser("gui", help="open the Basechat window (the default with a display)")
    gui.add_argument("--model", help="catalog id or .gguf path to load first")
    _chats_options(sub.add_parser("chats", help="stored conversations"))
    _models_options(sub.add_parser("models", help="the model catalog and downloads"))
    _templates_options(sub.add_parser("templates", help="conversation frames: list, import, export"))
    bench = sub.add_parser("bench", help="measure speed and responsiveness against llama.cpp itself")
    bench.add_argument("--model", help="catalog id or .gguf path (default: gemma3-270m)")
    bench.add_argument("--json", action="store_true", help="print one JSON object")
    server_options(bench)
    bench.add_argument("--quick", action="store_true", help="figures 1, 3, 4 and 5, reduced (under a minute)")
    bench.add_argument(
        "--smoke", action="store_true", help="tiny inputs: checks every figure is made (seconds)"
    )
    bench.add_argument(
        "--plot", type=Path, help="also draw TTFT and tokens/s per turn (PNG; needs matplotlib)"
    )
    _eval_options(sub.add_parser("eval", help="measure how well the scaffold makes the model chat"))
    _serve_options(sub.add_parser("serve", help="the model as a local OpenAI and KoboldCpp API server"))
    return parser


def _serve_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--host", default="127.0.0.1", help="address to listen on (default: this computer only)"
    )
    parser.add_argument("--port", type=int, default=8080, help="port (default 8080)")
    parser.add_argument("--model", help="catalog id or path to a .gguf file (default: gemma3-270m)")
    parser.add_argument("--template", help="the chat endpoint's template when a request names none (chat)")
    parser.add_argument("--api-key-env", metavar="NAME", help="clients must send the key in this variable")
    parser.add_argument(
        "--keep-chats",
        action="store_true",
        help="keep chats through /v1/chat/completions in the history (the window opens them)",
    )
    parser.add_argument("--max-tokens", type=int, help="a chat reply's length limit (default 256)")
    sampling_options(parser)
    parser.add_argument("--ctx", type=int, help="context size in tokens (default 4096)")
    parser.add_argument("--threads", type=int, help="CPU threads (default: physical cores)")
    parser.add_argument("--gpu-layers", type=int, help="layers to offload (default: all on Metal)")


def _chats_options(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="chats_command", required=True, parser_class=Parser)
    listing = sub.add_parser("list", help="conversations, newest first")
    listing.add_argument("--json", action="store_true")
    show = sub.add_parser("show", help="one conversation")
    show.add_argument("id", type=int)
    show.add_argument("--json", action="store_true")
    export = sub.add_parser("export", help="to Markdown or JSON")
    export.add_argument("id", nargs="?", type=int, help="omit with --all")
    export.add_argument("--all", action="store_true", help="every conversation (JSON)")
    export.add_argument("--format", choices=["md", "json", "prompt", "sillytavern"], default="md",
                        help="prompt: the exact text the model reads before the next message")  # fmt: skip
    export.add_argument("-o", "--output", type=Path, help="file to write (default: stdout)")
    sub.add_parser("import", help="a Basechat JSON export or a SillyTavern chat log (.jsonl)").add_argument(
        "file", type=Path
    )
    sub.add_parser("delete", help="delete a conversation").add_argument("id", type=int)
    sub.add_parser("search", help="find conversations by text").add_argument("query")


def _models_options(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="models_command", required=True, parser_class=Parser)
    sub.add_parser("list", help="installed and available models").add_argument("--json", action="store_true")
    sub.add_parser("download", help="download a catalog model").add_argument("id")
    sub.add_parser("verify", help="check a model file's sha256").add_argument("id")
    sub.add_parser("remove", help="delete a downloaded model").add_argument("id")
    sub.add_parser("add", help="use a .gguf file from disk").add_argument("path", type=Path)
    search = sub.add_parser("search", help="GGUF files on the Hugging Face Hub, base models first")
    search.add_argument("query")
    search.add_argument("--limit", type=int, default=10, help="repositories to look at (default 10)")
    search.add_argument("--json", action="store_true")
    get = sub.add_parser("get", help="download one file found by 'models search'")
    get.add_argument("repo", help="owner/name")
    get.add_argument("file", help="the .gguf file's name")


def _templates_options(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="templates_command", required=True, parser_class=Parser)
    sub.add_parser("list", help="shipped and your own templates").add_argument("--json", action="store_true")
    sub.add_parser("show", help="a template as TOML").add_argument("name")
    importing = sub.add_parser("import", help="a character card (JSON/PNG), preset, prompt file, YAML, TOML")
    importing.add_argument("file", type=Path, nargs="+",
                           help="one file, or a preset and a system-prompt preset to combine")  # fmt: skip
    lore = sub.add_parser("lore", help="add a lorebook (World Info, a card's book, Kobold world info)")
    lore.add_argument("name", help="one of your templates (a shipped one is copied under its name)")
    lore.add_argument("file", type=Path)
    export = sub.add_parser("export", help="a template as TOML or as a Character Card V2")
    export.add_argument("name")
    export.add_argument("-o", "--output", type=Path, help="file to write (default: stdout)")
    export.add_argument("--format", choices=["toml", "card"], default="toml")
    sub.add_parser("delete", help="delete one of your own templates").add_argument("name")


def _eval_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("files", nargs="+", type=Path, help="JSONL question files")
    parser.add_argument("--model", help="catalog id or path to a .gguf file")
    parser.add_argument("--template", help="template name or .toml path (default: chat)")
    parser.add_argument("--raw", action="store_true", help="ask the bare model, no transcript")
    parser.add_argument("--all-templates", action="store_true", help="every template and raw")
    parser.add_argument("--max-tokens", type=int, help="reply length (64; with --sampling app the app's)")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    parser.add_argument("--half", choices=["tune", "held"], help="only the items of one half")
    parser.add_argument("--replies", type=Path, help="write every question and reply to this JSONL file")
    parser.add_argument("--sampling", choices=["greedy", "app"], default="greedy",
                        help="greedy (repeatable; the default) or app: what a new chat in the window "
                             "samples with, over several seeds")  # fmt: skip
    parser.add_argument("--seeds", type=int, default=3, help="with --sampling app: runs, seeds 0..N-1")
    parser.add_argument("--ctx", type=int, help="context size (default 4096; overflow items pass it)")
    parser.add_argument("--draft", metavar="lookup|MODEL|off", default="off",
                        help="drafting while evaluating (default off: a draft's batch sizes follow the "
                             "clock, and sampled runs would then differ from run to run)")  # fmt: skip
    sampling_options(parser)  # on top of --sampling
    server_options(parser)


def _version() -> str:
    from app import __version__

    return f"basechat {__version__}"
