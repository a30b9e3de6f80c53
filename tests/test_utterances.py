"""Whole utterances: each utterance run through the full model and decoded at once when it closes."""

import numpy as np
import pytest

from core.decoding import DecodedWord
from core.engine import CaptionEngine, StreamOptions
from core.streaming import CaptionStream
from core.utterances import meet_halfway, within_motion
from tests.test_stitching import SENTENCES
from tests.test_streaming import crops_for, random_crops


@pytest.fixture(scope="module")
def engine(tiny_model):
    return CaptionEngine.load(tiny_model, provider="cpu", threads=1)


def run_whole(engine, pairs):
    """Every update of a whole-utterance stream fed `pairs`, the closing one last, and the crops."""
    stream = CaptionStream(engine, background=False, whole_utterances=True)
    pairs = list(pairs)
    updates = [stream.push(frame, crop) for frame, crop in pairs]
    return [*updates, stream.finish()], [crop for _, crop in pairs]


def direct(engine, crops, start, stop):
    """The full model's log-probs (T, C) of frames [start, stop), and the decoder's words for them
    (before their timings are kept within the mouth's movement)."""
    images = np.stack([c.image for c in crops[start:stop]])
    lips = np.stack([c.lip_points for c in crops[start:stop]])
    log_probs = engine.model(images, lips)
    return log_probs, [(w.text, w.start + start, w.end + start) for w in engine.decoder.decode(log_probs)]


def test_each_utterance_is_the_full_models_decode_of_its_frames(engine):
    frames = "_" * 10 + SENTENCES[0] + "_" * 24 + SENTENCES[1]
    updates, crops = run_whole(engine, crops_for(frames))
    assert len(updates) == len(frames) + 1
    decoded = [u for u in updates if u.final]
    assert [u.frame.index for u in decoded[:-1]] == [u.frame.index for u in updates[:-1] if u.utterance_end]
    first_end = decoded[0].frame.index  # the still mouth closed the first utterance here
    assert 10 + len(SENTENCES[0].rstrip("_")) < first_end <= 10 + len(SENTENCES[0].rstrip("_")) + 20
    # it ends half-way through the stillness; the rest is the second one's lead-in
    cut = first_end + 1 - engine.options.still_frames // 2
    spans = [(0, cut), (cut, len(frames))]
    for update, (start, stop) in zip(decoded, spans, strict=True):
        log_probs, words = direct(engine, crops, start, stop)
        assert [w.text for w in update.final] == [w[0] for w in words]
        assert np.allclose(update.probs, np.exp(log_probs), atol=1e-5)
        assert all(w.final and start / 25 <= w.start < w.end <= stop / 25 for w in update.final)
        assert update.timings["model"] > 0
    assert (
        " ".join(w.text for u in decoded for w in u.final) == "bin blue at f two now set red by z nine soon"
    )
    starts = [w.start for u in decoded for w in u.final]
    assert starts == sorted(starts)
    assert all(u.partial == () for u in updates)  # nothing is shown before it is final


def test_a_lost_face_ends_an_utterance_and_is_in_none(split_model):
    """With a model that sees time context (a tiny BiGRU), each utterance's output is the model's
    on exactly its frames: the lost face's frames belong to neither."""
    engine = CaptionEngine.load(
        split_model, provider="cpu", threads=1, options=StreamOptions(decoder="greedy")
    )
    updates, crops = run_whole(engine, random_crops(100, missing=range(40, 45)))
    decoded = [u for u in updates if u.probs is not None]
    assert [u.frame.index for u in decoded] == [40, 99]  # the face is lost at 40; the end
    assert updates[40].utterance_end
    for update, (start, stop) in zip(decoded, [(0, 40), (45, 100)], strict=True):
        log_probs, words = direct(engine, crops, start, stop)
        assert np.max(np.abs(np.log(update.probs) - log_probs)) < 1e-4
        assert [w.text for w in update.final] == [w[0] for w in words]
        assert all(start / 25 <= w.start < w.end <= stop / 25 for w in update.final)


def test_a_long_utterance_is_decoded_in_chunks(split_model):
    engine = CaptionEngine.load(split_model, provider="cpu", threads=1, options=StreamOptions(max_decode=30))
    updates, crops = run_whole(engine, random_crops(100))
    start, words = 0, []
    for update in updates:
        if update.probs is None:
            continue
        n = len(update.probs)
        assert 15 < n <= 30 or update is updates[-1]  # cut in the second half of a full chunk
        assert update.frame.index < start + 30  # decoded as soon as 30 frames were pending
        log_probs, _ = direct(engine, crops, start, start + n)
        assert np.max(np.abs(np.log(update.probs) - log_probs)) < 1e-4
        words += [w for w in update.final if not start / 25 <= w.start < w.end <= (start + n) / 25]
        start += n
    assert start == 100 and words == []  # every frame once, every word inside its chunk


def test_stillness_before_speech_is_cut_to_the_lead_in_and_after_it_dropped(engine):
    frames = "_" * 150 + SENTENCES[0] + "_" * 60
    updates, _ = run_whole(engine, crops_for(frames))
    decoded = [u for u in updates if u.probs is not None]
    assert len(decoded) == 1  # the stillness after the utterance closed is not decoded
    (update,) = decoded
    carry = engine.options.still_frames // 2  # still frames after the utterance handed to the next
    first = update.frame.index + 1 - carry - len(update.probs)
    assert first == frames.index("b") - engine.window  # lead-in: a window
    assert " ".join(w.text for w in update.final) == "bin blue at f two now"
    assert not updates[-1].final and not updates[-1].utterance_end


def test_word_timings_are_kept_within_the_mouths_movement():
    moving = np.zeros(60, bool)
    moving[[20, 25, 40, 44]] = True  # the mouth moves from frame 20 to frame 44
    words = [DecodedWord("set", 2, 12), DecodedWord("blue", 13, 30), DecodedWord("now", 50, 58)]
    assert [(w.text, w.start, w.end) for w in within_motion(words, moving)] == [
        ("set", 20, 21),  # emitted early, into the still lead-in
        ("blue", 21, 30),  # and the next word starts after it
        ("now", 44, 45),  # emitted late, into the silence after
    ]
    assert within_motion(words, np.zeros(60, bool)) == words  # no movement seen: left as decoded


def test_neighbouring_words_meet_half_way_unless_a_pause_parts_them():
    words = [DecodedWord("set", 10, 12), DecodedWord("blue", 17, 18), DecodedWord("at", 18, 19)]
    words += [DecodedWord("now", 40, 41)]
    assert [(w.text, w.start, w.end) for w in meet_halfway(words, max_stretch=6)] == [
        ("set", 10, 14),  # a gap of 5 frames: 2 to the first word, 3 to the next
        ("blue", 14, 18),
        ("at", 18, 25),  # a pause of 21 frames: each side stretched by 6 at most
        ("now", 34, 41),
    ]
    assert meet_halfway([]) == []
