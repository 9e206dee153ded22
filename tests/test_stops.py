"""Stop-string hold-back: nothing shown is ever taken back."""

from __future__ import annotations

import pytest

from app.engine.stops import StopScanner

STOPS = ["\nUser:", "\nAssistant:"]


def feed_all(pieces, stops=STOPS):
    scanner = StopScanner(stops)
    shown = []
    for piece in pieces:
        shown.append(scanner.feed(piece))
        if scanner.stopped:
            break
    shown.append(scanner.flush())
    return shown, scanner.stopped


def test_stop_split_across_tokens_is_never_shown():
    shown, stopped = feed_all([" Paris", ".", "\n", "User", ":", " next"])
    assert stopped
    assert "".join(shown) == " Paris."
    assert all("\n" not in s for s in shown)


def test_held_prefix_is_released_when_it_turns_out_not_to_be_a_stop():
    shown, stopped = feed_all([" a", "\n", "Us", "eful", " b"])
    assert not stopped
    assert shown[1] == ""  # "\n" could start a stop: held
    assert "".join(shown) == " a\nUseful b"


def test_hold_back_at_end_of_stream_is_flushed():
    shown, stopped = feed_all(["one", "\nUse"])
    assert not stopped and "".join(shown) == "one\nUse"


@pytest.mark.parametrize("cut", range(1, 12))
def test_any_split_of_the_text_gives_the_same_shown_prefix(cut):
    text = "Hi there.\nAssistant: more"
    shown, stopped = feed_all([text[:cut], text[cut:]])
    assert stopped and "".join(shown) == "Hi there."


def test_no_stops_passes_everything_through():
    shown, stopped = feed_all(["a\n", "b"], stops=[])
    assert not stopped and shown == ["a\n", "b", ""]


def test_a_stop_matches_in_either_case():
    """Held open, a small model wrote "(The assistant explains…)" and "user:" in place of the
    labels; letters match in either case (and nothing else changes length or place)."""
    scanner = StopScanner(["\nUser:", "\n(The Assistant"])
    assert scanner.feed("Paris.\n(The assistant explains.)") == "Paris."
    assert scanner.stopped
    other = StopScanner(["\nUser:"])
    assert other.feed("Fine.\nuSER") == "Fine." and not other.stopped
    assert other.feed(": hi") == "" and other.stopped
