"""The model card: a Markdown page written beside every exported model, from its contract alone."""

from __future__ import annotations

import datetime
from pathlib import Path

from core.contract import ModelContract
from core.crop import point_features

MAX_LEFT_OUT_LISTED = 20  # left-out clips a card names one by one


def _rate(value: float | None) -> str:
    return "n/a" if value is None else f"{100 * value:.2f} %"


def _hours(seconds: float | None) -> str:
    if seconds is None:
        return "unknown"
    if seconds < 60:
        return f"{seconds:.0f} s"
    return f"{seconds / 3600:.1f} h" if seconds >= 3600 else f"{seconds / 60:.0f} min"


def known_limits(contract: ModelContract) -> list[str]:
    """What the model cannot be expected to do, from its data and decoder."""
    data, limits = contract.data, []
    speakers = data.get("speakers") or []
    if len(speakers) == 1:
        limits.append(
            f"**One speaker** ({speakers[0]}): trained and validated on a single person's face; expect "
            "much higher error rates on anyone else until it is fine-tuned on more speakers."
        )
    elif data.get("split") == "random":
        limits.append(
            "Validation clips come from the training speakers: the numbers say little about new faces."
        )
    grammar = contract.decoder.grammar
    if contract.decoder.kind == "grammar":
        words = len({w for slot in grammar for w in slot})
        limits.append(
            f"**GRID grammar**: the default decoder only emits sentences of the {len(grammar)}"
            f'-slot GRID grammar ({words} words, e.g. "bin blue at f two now"); other speech comes out '
            "as the nearest grammar words. Greedy or beam decoding lifts the grammar but not the vocabulary "
            "the model learnt."
        )
    if data.get("kind") == "grid":
        limits.append(
            "**Frontal studio video**: GRID is frontal, evenly lit, 25 fps, 360x288, a plain background and "
            "read speech; side views, poor light, low frame rates, moustaches or fast speech degrade it."
        )
    limits.append("Lips only: no audio, so homophenes (p/b/m, f/v, t/d) are told apart by context alone.")
    return limits


def _teachers(training: dict, metrics: dict) -> list[str]:
    """The card's line naming the teachers of a distilled model and their files' sha256 (none if not)."""
    if not (training.get("teachers") and training.get("distill_weight")):
        return []
    digests = metrics.get("teacher_sha256") or {}
    taught = ", ".join(f"`{p}` (sha256 {digests.get(p, 'not recorded')})" for p in training["teachers"])
    return [f"- Distilled: taught by {taught}, weight {training['distill_weight']}"]


def model_card(contract: ModelContract, name: str, checkpoint: Path, onnx_path: Path, parameters: int) -> str:
    """Markdown describing an exported model: data, split, training, validation metrics, use, limits."""
    c, data, m, t = contract, contract.data, contract.metrics, contract.training
    crop = c.crop
    size_mb = onnx_path.stat().st_size / 1e6 if onnx_path.is_file() else 0.0
    scores = c.decoder.word_score, c.decoder.live_word_score
    word_score = f", word score {scores[0]:g}, live {scores[1]:g}" if any(scores) else ""
    decoder = c.decoder.kind + (
        f" (beam {c.decoder.beam_width}{word_score})" if c.decoder.kind != "greedy" else ""
    )
    left = data.get("left_out") or {}
    lines = [
        f"# {name}",
        "",
        f"`{onnx_path.name}`: a LipReader lip-reading model (CTC over characters), {parameters / 1e6:.2f} M "
        f"parameters, {size_mb:.1f} MB (fp32 ONNX, opset 17). Exported from `{checkpoint}` on "
        f"{datetime.date.today().isoformat()}; the whole contract below is also in the file's metadata "
        "(`lipreader.contract`).",
        "",
        "## Data",
        "",
        f"- Data set: `{data.get('dataset', '?')}` ({data.get('kind', '?')} layout, "
        f"`{data.get('path', '?')}`), "
        f"speakers: {', '.join(data.get('speakers') or ['not named'])}",
        f"- Clips: {data.get('clips', '?')} used, {data.get('train_clips', '?')} training / "
        f"{data.get('val_clips', '?')} validation",
        f"- Split: {data.get('split', 'random')}, seed {data.get('seed', '?')}"
        + (
            f", validation fraction {data['val_fraction']}"
            if data.get("split", "random") == "random" and "val_fraction" in data
            else f", validation speakers {', '.join(data.get('val_speakers', []))}"
        ),
        f"- Left out: {data.get('left_out_count', len(left))} clips (face not found on enough frames, "
        f"unreadable, too long); skipped by the reader: {data.get('skipped_count', 0)}",
    ]
    lines += [f"  - `{k}`: {v}" for k, v in list(left.items())[:MAX_LEFT_OUT_LISTED]]
    if len(left) > MAX_LEFT_OUT_LISTED:
        lines.append(f"  - and {len(left) - MAX_LEFT_OUT_LISTED} more (the run's split.json lists them all)")
    lines += [
        "",
        "## Training",
        "",
        f"- Epochs run: {m.get('epochs', '?')} (best validation WER at epoch {m.get('best_epoch', '?')}), "
        f"{m.get('steps', '?')} steps, batch {t.get('batch_size', '?')}, AdamW lr {t.get('lr', '?')} cosine",
        f"- Wall time: {_hours(m.get('wall_seconds'))} on {m.get('machine', 'unknown')}",
        *(
            [f"- Fine-tuned: started from the weights of `{t['init_from']}`, new optimiser and schedule"]
            if t.get("init_from")
            else []
        ),
        *_teachers(t, m),
        f"- Input: {crop.height}x{crop.width} {'grey' if crop.grayscale else 'colour'} lip crops at "
        f"{c.fps:g} fps, normalised (x/255 - {c.mean}) / {c.std}, plus 40 lip points"
        f"{' with depth' if crop.depth else ''}; landmarks from MediaPipe {crop.landmark_way}; "
        f"{crop.scale_way}",
        f"- Reproduce: `{m.get('reproduce', 'lipreader-train')}` (the full config is in the metadata)",
        "",
        f"## Validation ({m.get('val_clips', data.get('val_clips', '?'))} clips, whole sentences)",
        "",
        "| decoding | CER | WER |",
        "|---|---|---|",
        f"| greedy | {_rate(m.get('val_cer_greedy'))} | {_rate(m.get('val_wer_greedy'))} |",
        f"| {decoder} (default) | {_rate(m.get('val_cer'))} | {_rate(m.get('val_wer'))} |",
        "",
        f"ONNX Runtime matches torch to {m.get('parity_max_abs_diff', float('nan')):.1e} (max abs diff of "
        "log-probs).",
        "",
        "## Use",
        "",
        f"Inputs `{c.video_input}` float32 (N, T, {crop.height}, {crop.width}) and `{c.points_input}` "
        f"float32 (N, T, {point_features(crop)}); output `{c.output}` float32 (N, T, {len(c.vocabulary)}) "
        f"log-softmax, blank = {c.blank}. The app runs it on a sliding window of {c.window} frames "
        f"({c.window / c.fps:g} s) every {c.hop} frames and decodes with the {decoder} decoder by default.",
        "",
    ]
    if c.stream is not None:
        lines += [
            f"Live captioning uses its streaming split, files that must stay beside it: "
            f"`{c.stream.encoder}` (the same inputs -> `{c.stream.feature_name}` float32 (N, T, "
            f"{c.stream.features}), per-frame features depending on {c.stream.context} frames either "
            f"side) and `{c.stream.head}` (features -> `{c.output}`), so each frame is encoded once "
            "instead of once per window. Without them the app runs the whole model on every window.",
            "",
        ]
        if c.stream.tail:
            lines += [
                f"`{c.stream.tail}`, also beside it, is the encoder without the padding before a chunk: "
                f"live windows in mid-stream encode {c.stream.context} frames of context with it without "
                "computing those frames' own features (a third less of the encoder's work).",
                "",
            ]
    lines += [
        "## Known limits",
        "",
    ]
    lines += [f"- {limit}" for limit in known_limits(contract)]
    return "\n".join(lines) + "\n"
