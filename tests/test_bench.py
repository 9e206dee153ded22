"""`basechat bench --quick` runs and prints well-formed figures. No time is asserted here:
speed targets live in the benchmark's own report, never in a test."""

from __future__ import annotations

import json

import pytest

from tests.helpers import basechat

pytestmark = pytest.mark.model

KEYS = {
    "gen_tps", "gen_ratio_lowlevel", "gen_ratio_llama_bench", "prompt_tps", "ttft_warm_s", "ttft_cold_s",
    "ttft_warm_over_cold", "threads_default", "threads_best", "threads_ratio_best", "per_token_cost_ratio",
    "startup_window_s", "startup_model_s", "rss_overhead_mb", "gui_max_stall_ms", "gui_token_cost_ratio",
    "ttft_restored_over_cold", "switch_ttft_over_cold", "kv_state_mb_per_1k_tokens", "kv_save_ms",
    "alternatives_4_over_1", "logprobs_overhead", "gui_alternatives_max_stall_ms",
    "overflow_ttft_over_warm", "overflow_full_reeval_share", "overflow_shifted_identical",
    "lookup_speedup_copy", "lookup_acceptance_copy", "lookup_identical_copy", "lookup_speedup_chat",
    "alternatives_vs_llama", "draft_self_acceptance", "render_2000_messages_ms",
    "render_2000_messages_no_recall_ms", "short_answer_best_of_1_s", "short_answer_best_of_4_s",
    "short_answer_best_of_4_over_1", "show_2000_in_100k_s", "show_2000_in_10k_s", "show_history_growth",
    "delete_5000_s", "lore_scan_ms", "serve_gen_tps", "serve_gen_ratio", "serve_ttft_warm_s",
    "serve_4_clients_tps", "memory_index_ms", "memory_follow_ms", "memory_lookup_ms",
    "memory_note_ttft_ratio", "memory_note_cached_share", "first_text_greeting_ratio",
    "first_text_question_ratio", "memory_window_build_s", "memory_window_send_ms", "typeahead_ttft_over_warm",
    "group_choose_ms", "group_short_answer_s", "group_choose_share", "group_cached_share",
    "typeahead_cpu_waste",
}  # fmt: skip


def test_quick_bench_prints_every_key_as_json(model_path):
    result = basechat("bench", "--smoke", "--json", timeout=300)
    assert result.returncode == 0, result.stderr
    figures = json.loads(result.stdout)
    assert set(figures) >= KEYS
    assert figures["machine"]["logical_cores"] >= 1 and figures["model"] == "gemma3-270m"
    for key in ("gen_tps", "gen_ratio_lowlevel", "ttft_warm_s", "ttft_cold_s", "per_token_cost_ratio",
                "ttft_restored_over_cold", "switch_ttft_over_cold", "kv_state_mb_per_1k_tokens",
                "alternatives_4_over_1", "logprobs_overhead", "short_answer_best_of_4_over_1",
                "show_2000_in_100k_s", "delete_5000_s", "lore_scan_ms", "serve_gen_ratio",
                "serve_ttft_warm_s", "memory_lookup_ms", "memory_note_ttft_ratio",
                "memory_note_cached_share", "group_short_answer_s", "group_cached_share"):  # fmt: skip
        assert isinstance(figures[key], float) and figures[key] > 0
    assert figures["threads_default"] >= 1 and str(figures["threads_best"]) in figures["threads_tps"]
