"""Dialogs on their own: the preferences form and the model card."""

from __future__ import annotations

import shutil

import pytest

from core.contract import DecoderSettings
from lipreader_app.dialogs import PreferencesDialog, model_card_markdown
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
