"""*Model → Model card…*: what a model is, from the contract in its ONNX metadata (vocabulary, input,
window, decoder, data, metrics, training) and the `<name>.md` beside it, in a non-modal dialog."""

from __future__ import annotations

import json
from pathlib import Path

from PySide6.QtWidgets import QDialog, QDialogButtonBox, QTextBrowser, QVBoxLayout, QWidget

from core.contract import ModelContract


def model_card_markdown(path: Path, contract: ModelContract, provider: str) -> str:
    """The card of a model: its contract's facts, data, metrics and training, then models/<name>.md."""
    c = contract
    lines = [
        f"# {path.name}",
        "",
        f"`{path}`",
        "",
        f"- **Runs on:** {provider}",
        f"- **Vocabulary:** {len(c.vocabulary)} classes (blank = index {c.blank})",
        f"- **Input:** {c.crop.width}×{c.crop.height} {'grey' if c.crop.grayscale else 'colour'} lip crops "
        f"at {c.fps:g} fps{', plus lip points' if c.points_input else ''}"
        f"{' with depth' if c.points_input and c.crop.depth else ''}; landmarks {c.crop.landmark_way}; "
        f"{c.crop.scale_way}",
        f"- **Live window:** {c.window} frames, hop {c.hop} ({c.window / c.fps:.1f} s, every "
        f"{c.hop / c.fps:.2f} s)",
        f"- **Default decoder:** {c.decoder.kind}, beam width {c.decoder.beam_width}",
        f"- **Word score:** {c.decoder.word_score:g} (whole utterances, offline), "
        f"{c.decoder.live_word_score:g} (live view)",
    ]
    if c.training.get("init_from"):
        lines.append(f"- **Fine-tuned from:** `{c.training['init_from']}`")
    lines.append("")
    for title, values in (("Data", c.data), ("Metrics", c.metrics)):
        lines += [f"## {title}", ""]
        lines += [f"- **{k}:** {_short(v)}" for k, v in values.items()] or ["(not declared)"]
        lines.append("")
    lines += ["## Training", ""]
    lines += (
        ["```", json.dumps(c.training, indent=2, sort_keys=True), "```"] if c.training else ["(not declared)"]
    )
    for card in (path.with_suffix(".md"), path.parent / f"{path.stem}.card.md"):
        if card.is_file():
            lines += ["", "---", "", card.read_text(encoding="utf-8", errors="replace")]
            break
    return "\n".join(lines)


def _short(value: object) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    text = json.dumps(value) if isinstance(value, dict | list) else str(value)
    return text if len(text) <= 200 else text[:200] + "…"


class ModelCardDialog(QDialog):
    def __init__(
        self, path: Path, contract: ModelContract, provider: str, parent: QWidget | None = None
    ) -> None:
        super().__init__(parent)
        self.setWindowTitle(f"Model card — {path.name}")
        self.resize(640, 600)
        self.browser = QTextBrowser()
        self.browser.setOpenExternalLinks(True)
        self.browser.setMarkdown(model_card_markdown(path, contract, provider))
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        buttons.rejected.connect(self.close)
        layout = QVBoxLayout(self)
        layout.addWidget(self.browser)
        layout.addWidget(buttons)
