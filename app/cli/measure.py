"""``basechat eval`` and ``basechat bench``: the terminal side of the measurement package."""

from __future__ import annotations

import argparse
import json
import sys
from contextlib import closing
from dataclasses import replace

from app.cli.common import open_engine, progress, sampling_from, server_config
from app.errors import InputError


def cmd_eval(args: argparse.Namespace) -> int:
    from app.measure.evaluate import GREEDY, load_items, markdown_table
    from app.measure.group_eval import looks_like_scenes
    from app.scaffold import DEFAULT_TEMPLATE, available_templates, load_template

    if all(looks_like_scenes(path) for path in args.files):
        return _eval_scenes(args)
    if args.max_tokens is None:  # a short answer's room; the app's own reply length with --sampling app
        args.max_tokens = eval_sampling(args).max_tokens if args.sampling == "app" else GREEDY.max_tokens
    if args.max_tokens < 1:
        raise InputError("--max-tokens must be at least 1.")
    items = [i for i in load_items(args.files) if args.half in (None, i.half)]
    if args.all_templates:
        modes = [*available_templates(), None]
    else:
        modes = [None] if args.raw else [args.template or DEFAULT_TEMPLATE]
    templates = [load_template(m) if m else None for m in modes]
    if args.sampling == "app" and args.seeds < 1:
        raise InputError("--seeds must be at least 1.")
    _, engine = open_engine(args)
    with closing(engine):
        summaries = [_eval_template(engine, template, items, args) for template in templates]
    if args.json:
        print(json.dumps(summaries if args.all_templates else summaries[0]))
    elif args.all_templates:
        print(markdown_table(summaries))
    else:
        for key, value in summaries[0].items():
            print(f"{key:>24}: {value}")
    return 0


def _eval_scenes(args: argparse.Namespace) -> int:
    """Group scenes (``tests/data/group/scenes.jsonl``): who is chosen to speak, each voice kept,
    and a scene let run by itself; greedy, or the app's sampling over ``--seeds`` seeds."""
    from app.measure.evaluate import across_seeds
    from app.measure.group_eval import load_scenes, run_group_eval

    scenes = [s for s in load_scenes(args.files) if args.half in (None, s.half)]
    seeds = range(args.seeds) if args.sampling == "app" else [args.seed]
    _, engine = open_engine(args)
    summaries = []
    with closing(engine):
        for seed in seeds:
            with progress(len(scenes), f"group scenes seed {seed}") as tick:
                params = replace(eval_sampling(args), seed=seed)
                summaries.append(run_group_eval(engine, scenes, params, tick))
    summary = across_seeds(summaries) if args.sampling == "app" else summaries[0]
    if args.json:
        print(json.dumps(summary))
    else:
        for key, value in summary.items():
            print(f"{key:>26}: {value}")
    return 0


def _eval_template(engine, template, items, args: argparse.Namespace) -> dict:
    """One template's figures: one greedy run, or with ``--sampling app`` one run per seed,
    summed up as each figure's mean and range."""
    from app.measure.evaluate import across_seeds, run_eval

    seeds = range(args.seeds) if args.sampling == "app" else [args.seed]
    summaries = []
    for seed in seeds:
        label = (template.name if template else "raw") + (f" seed {seed}" if args.sampling == "app" else "")
        with progress(len(items), label) as tick:
            sampling = replace(eval_sampling(args), seed=seed)
            report = run_eval(engine, template, items, args.max_tokens, tick, sampling)
        summaries.append(report.summary() | {"sampling": args.sampling})
        if args.replies:
            report.write_replies(args.replies)
    return across_seeds(summaries) if args.sampling == "app" else summaries[0]


def eval_sampling(args: argparse.Namespace):
    """``--sampling greedy``: greedy, no penalty (runs repeat); ``app``: exactly what a new chat
    in the window samples with. Sampling flags given go on top of either."""
    from app.engine.base import SamplingParams
    from app.measure.evaluate import GREEDY

    base = SamplingParams() if args.sampling == "app" else GREEDY
    return sampling_from(args, base)


def cmd_bench(args: argparse.Namespace) -> int:
    from app.measure.bench import run_bench
    from app.models.catalog import resolve_model

    server = server_config(args)
    if server is not None:
        from app.measure.bench import run_remote_bench

        return _print_figures(run_remote_bench(server, args.quick, _bench_progress), args.json)
    model_id, path = resolve_model(args.model)
    if args.plot:
        try:
            from app.measure.plot import plot
        except ImportError:
            raise InputError("--plot needs matplotlib: pip install -e '.[bench]'") from None
        plot(path, args.plot)
    return _print_figures(run_bench(path, model_id, args.quick, _bench_progress, args.smoke), args.json)


def _bench_progress(step: str) -> None:
    sys.stderr.write(f"bench: {step}…\n")


def _print_figures(figures: dict, as_json: bool) -> int:
    if as_json:
        print(json.dumps(figures))
    else:
        for key, value in figures.items():
            print(f"{key:>28}: {value}")
    return 0
