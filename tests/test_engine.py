"""The engine: stream options checked alone and against the model's contract (window and hop)."""

import math

import pytest

from core.engine import CaptionEngine, OptionsError, StreamOptions, verify_options, window_and_hop
from core.inference import LipModel
from tests.conftest import tiny_contract


@pytest.fixture(scope="module")
def model(tiny_model):
    return LipModel.load(tiny_model, threads=1)


@pytest.mark.parametrize(
    "options",
    [
        StreamOptions(window=1),
        StreamOptions(hop=0),
        StreamOptions(decoder="best"),
        StreamOptions(final_margin=-1),
        StreamOptions(lm="/no/such/lm.arpa"),
        StreamOptions(beam_width=0),
        StreamOptions(word_pause=0),
        StreamOptions(landmark_every=0),
        StreamOptions(stable_frames=-1),
    ],
)
def test_invalid_options(model, options):
    with pytest.raises(ValueError):
        CaptionEngine(model, options)


@pytest.mark.parametrize(
    ("options", "fits"),
    [
        (StreamOptions(), (75, 10)),  # the model's own
        (StreamOptions(hop=75), (75, 75)),
        (StreamOptions(window=40, hop=5), (40, 5)),
        (StreamOptions(window=6), (6, 6)),  # the model's hop cut to a shorter window asked for
    ],
)
def test_window_and_hop_are_the_options_else_the_models(options, fits):
    assert window_and_hop(tiny_contract(), options) == fits


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (StreamOptions(hop=76), "hop 76 is more than the model's window of 75 frames"),
        (StreamOptions(hop=500), "hop 500 is more than the model's window of 75 frames"),
        (StreamOptions(window=10, hop=20), "hop 20 is more than the window of 10 frames"),
    ],
)
def test_a_hop_over_the_window_does_not_fit(options, message):
    with pytest.raises(OptionsError, match=f"^{message}$"):
        window_and_hop(tiny_contract(), options)


def test_a_hop_over_the_window_the_options_set_is_refused_without_a_model():
    with pytest.raises(OptionsError, match="^hop 20 is more than the window of 10 frames$"):
        verify_options(StreamOptions(window=10, hop=20))
    for fits in (StreamOptions(window=10, hop=10), StreamOptions(hop=500), StreamOptions(window=10)):
        assert verify_options(fits) is fits  # a hop alone is checked against the model's window


@pytest.mark.parametrize(
    "options", [StreamOptions(word_score=math.nan), StreamOptions(still_motion=math.inf)]
)
def test_a_score_or_motion_that_is_no_number_is_refused(options):
    with pytest.raises(ValueError, match="word_score and still_motion must be finite"):
        verify_options(options)


def test_an_engine_refuses_a_hop_over_the_models_window_instead_of_cutting_it(model):
    with pytest.raises(OptionsError, match="^hop 76 is more than the model's window of 75 frames$"):
        CaptionEngine(model, StreamOptions(hop=76))
    with pytest.raises(OptionsError, match="^hop 20 is more than the window of 10 frames$"):
        CaptionEngine(model, StreamOptions(window=10, hop=20))
    engine = CaptionEngine(model, StreamOptions(hop=75))
    assert (engine.window, engine.hop) == (engine.options.window, engine.options.hop) == (75, 75)
