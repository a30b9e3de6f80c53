"""Dialogs on their own: the preferences form, the model card and the review of a captioning run."""

from __future__ import annotations

import shutil

import pytest
from PySide6.QtWidgets import QLabel

from core.contract import DecoderSettings
from lipreader_app.model_card import model_card_markdown
from lipreader_app.preferences_dialog import PreferencesDialog
from lipreader_app.settings import Preferences
from tests.conftest import tiny_contract

pytestmark = pytest.mark.usefixtures("gui_gc")


def test_preferences_dialog_shows_the_model_defaults_and_returns_the_form(qtbot):
    prefs = Preferences(decoder="beam", camera_device=2, camera_width=800, camera_height=600, last_dir="/v")
    dialog = PreferencesDialog(prefs, tiny_contract())
    qtbot.addWidget(dialog)
    assert dialog.window_spin.specialValueText() == "model's (75)"
    assert dialog.decoder_combo.itemText(0) == "model's (grammar)"
    assert dialog.resolution_combo.currentText() == "800 × 600"  # a stored size not in the list is kept
    assert dialog.preferences() == prefs
    dialog.provider_combo.setCurrentIndex(dialog.provider_combo.findData("cpu"))
    dialog.beam_spin.setValue(32)
    accepted = []
    dialog.accepted_preferences.connect(accepted.append)
    dialog.accept()
    assert accepted == [
        Preferences(
            decoder="beam",
            beam_width=32,
            provider="cpu",
            camera_device=2,
            camera_width=800,
            camera_height=600,
            last_dir="/v",
        )
    ]


def test_preferences_dialog_offers_how_often_mediapipe_runs(qtbot):
    dialog = PreferencesDialog(Preferences(landmark_every=3), None)
    qtbot.addWidget(dialog)
    combo = dialog.landmark_combo
    assert [combo.itemText(i) for i in range(combo.count())] == [
        "Every frame",
        "Every 2nd frame (faster)",
        "Every 3rd frame (faster)",
        "Every 4th frame (faster)",
    ]
    assert combo.currentData() == 3 and "CPU" in combo.toolTip()
    assert dialog.preferences() == Preferences(landmark_every=3)
    combo.setCurrentIndex(combo.findData(2))
    accepted = []
    dialog.accepted_preferences.connect(accepted.append)
    dialog.accept()
    assert accepted == [Preferences(landmark_every=2)]


def test_preferences_dialog_sets_how_long_live_words_must_be_stable(qtbot):
    dialog = PreferencesDialog(Preferences(stable_frames=12), None)
    qtbot.addWidget(dialog)
    spin = dialog.stable_spin
    assert spin.value() == 12 and spin.suffix() == " frames"
    assert (spin.minimum(), spin.maximum()) == (0, 100)
    assert "lag" in spin.toolTip() and "errors" in spin.toolTip()
    assert dialog.preferences() == Preferences(stable_frames=12)
    spin.setValue(0)
    accepted = []
    dialog.accepted_preferences.connect(accepted.append)
    dialog.accept()
    assert accepted == [Preferences(stable_frames=0)]


def test_preferences_dialog_turns_reading_sentences_again_off(qtbot):
    dialog = PreferencesDialog(Preferences(), None)
    qtbot.addWidget(dialog)
    check = dialog.revise_check
    assert check.isChecked() and "replaces" in check.toolTip()
    check.setChecked(False)
    accepted = []
    dialog.accepted_preferences.connect(accepted.append)
    dialog.accept()
    assert accepted == [Preferences(revise=False)]


def test_model_card_lists_contract_facts_and_appends_the_markdown_card(tmp_path, tiny_model):
    model = tmp_path / "grid-s1.onnx"
    shutil.copy(tiny_model, model)
    contract = tiny_contract(data={"speakers": "s1", "clips": 900}, metrics={"val_wer": 0.0412})
    text = model_card_markdown(model, contract, "CPUExecutionProvider")
    assert "**Live window:** 75 frames, hop 10 (3.0 s, every 0.40 s)" in text
    assert "- **val_wer:** 0.0412" in text and "- **clips:** 900" in text
    assert "**Word score:** 0 (whole utterances, offline), 0 (live view)" in text
    assert "Fine-tuned from" not in text
    assert "## Training" in text and "(not declared)" in text
    (tmp_path / "grid-s1.md").write_text("# GRID speaker 1\n\nTrained on 800 clips.\n")
    assert model_card_markdown(model, contract, "CPU").endswith("# GRID speaker 1\n\nTrained on 800 clips.\n")
    tuned = tiny_contract(
        decoder=DecoderSettings(kind="lexicon", word_score=1.5, live_word_score=-0.25),
        training={"init_from": "models/grid-base.pt"},
    )
    text = model_card_markdown(model, tuned, "CPU")
    assert "**Word score:** 1.5 (whole utterances, offline), -0.25 (live view)" in text
    assert "- **Fine-tuned from:** `models/grid-base.pt`" in text


def review_of(tmp_path, words: tuple = (), face_ratio: float = 1.0, warnings: tuple = (), unread: str = ""):
    from core.captioning import Transcript
    from core.streaming import CaptionWord
    from lipreader_app.review_dialog import CaptionReviewDialog

    timed = tuple(CaptionWord(w, i * 0.4, i * 0.4 + 0.3, True) for i, w in enumerate(words))
    transcript = Transcript(
        " ".join(words), timed, "CPUExecutionProvider", 0.5, 0.9, face_ratio, warnings, unread
    )
    return CaptionReviewDialog(tmp_path / "clip.mp4", transcript)


def test_review_export_follows_a_typed_subtitle_suffix_else_adds_the_chosen_one(qtbot, tmp_path, monkeypatch):
    from PySide6.QtWidgets import QFileDialog

    review = review_of(tmp_path, ("bin", "blue"))
    qtbot.addWidget(review)
    for typed, written in (("x.vtt", "x.vtt"), ("plain", "plain.srt"), ("my.notes", "my.notes.srt")):
        answer = (str(tmp_path / typed), "SubRip subtitles (*.srt)")  # Export SRT…, then a name typed
        monkeypatch.setattr(QFileDialog, "getSaveFileName", lambda *args, a=answer: a)
        review.export_buttons[0].click()
        assert review.status_text == f"Wrote {tmp_path / written}"
    assert (tmp_path / "x.vtt").read_text().startswith("WEBVTT")  # VTT, as its name says
    assert (tmp_path / "plain.srt").read_text().startswith("1\n00:00:00,000 --> ")


def test_review_export_error_names_the_file_asked_for(qtbot, tmp_path, monkeypatch):
    from PySide6.QtWidgets import QFileDialog

    review = review_of(tmp_path, ("bin",))
    qtbot.addWidget(review)
    target = tmp_path / "no" / "such" / "dir" / "x.srt"
    monkeypatch.setattr(
        QFileDialog, "getSaveFileName", lambda *args: (str(target), "SubRip subtitles (*.srt)")
    )
    review.export_buttons[0].click()
    assert review.status_text.startswith(f"cannot write {target}: ") and ".tmp" not in review.status_text


def test_review_of_a_reading_without_words_says_why_and_offers_no_export(qtbot, tmp_path):
    truncated = "video clip.mp4 ended after 23 of 75 frames (truncated?)"
    unread = "a face was in view for 0.18 s (20% of the frames)"  # core's guess (Transcript.unread)
    review = review_of(tmp_path, warnings=(truncated,), unread=unread)
    qtbot.addWidget(review)
    texts = [label.text() for label in review.findChildren(QLabel)]
    assert any("Nothing to caption" in t for t in texts) and not any("cues" in t for t in texts)
    assert review.status_text == f"No words were read in 0.9 s of video ({unread}). {truncated}."
    assert not any(b.isEnabled() for b in review.export_buttons)
    review = review_of(tmp_path)
    qtbot.addWidget(review)
    assert review.status_text == "No words were read in 0.9 s of video."


def test_review_with_cues_shows_the_runs_warnings(qtbot, tmp_path):
    picked = "the face at (420, 130) was not found at 0.0 s: read the largest face"
    review = review_of(tmp_path, ("bin", "blue"), warnings=(picked,))
    qtbot.addWidget(review)
    assert review.status_text == (
        f"2 words in 0.5 s on CPU. Warning: {picked}. Click a cue to play the video from there."
    )
    assert all(b.isEnabled() for b in review.export_buttons)


def test_preferences_dialog_window_and_hop_spins_take_cores_limits(qtbot):
    from core.engine import MAX_WINDOW, MIN_WINDOW

    dialog = PreferencesDialog(Preferences(), tiny_contract())
    qtbot.addWidget(dialog)
    accepted = []
    dialog.accepted_preferences.connect(accepted.append)
    assert dialog.window_spin.maximum() == dialog.hop_spin.maximum() == MAX_WINDOW
    dialog.window_spin.stepUp()  # from the model's own window to the smallest one core runs
    assert dialog.window_spin.value() == MIN_WINDOW
    dialog.window_spin.stepDown()
    assert dialog.window_spin.value() == 0 and dialog.window_spin.text() == "model's (75)"
    dialog.window_spin.setValue(1)  # typed: refused when OK is pressed
    dialog.accept()
    assert f"or {MIN_WINDOW}..{MAX_WINDOW} frames" in dialog.error_label.text() and accepted == []


def test_preferences_dialog_refuses_a_hop_over_the_models_own_window(qtbot):
    dialog = PreferencesDialog(Preferences(), tiny_contract())
    qtbot.addWidget(dialog)
    accepted = []
    dialog.accepted_preferences.connect(accepted.append)
    dialog.hop_spin.setValue(500)
    dialog.accept()
    assert dialog.error_label.text() == "hop 500 is more than the model's window of 75 frames"
    assert accepted == []
    dialog.window_spin.setValue(600)  # a window of its own: the hop fits it
    dialog.accept()
    assert accepted == [Preferences(window=600, hop=500)]
