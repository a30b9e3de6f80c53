"""The model's contract: everything core needs to run a model, read from its ONNX metadata.

Export writes one metadata property, `lipreader.contract`, holding this JSON; nothing about a
model (vocabulary, crop, normalisation, frame rate, window, decoder) is hard-coded in core.

A model may also ship a streaming split beside it (`StreamGraphs`): an encoder graph giving
per-frame features and a head graph turning a window of features into log-probs, so that live
captioning encodes each frame once instead of once per overlapping window.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field
from pathlib import PureWindowsPath

from core.crop import CropSpec

METADATA_KEY = "lipreader.contract"
STREAM_METADATA_KEY = "lipreader.stream"  # in the split's files: {"id": StreamGraphs.id, "part": ...}
FORMAT_VERSION = 1


class ContractError(ValueError):
    """A model's metadata is missing or inconsistent."""


@dataclass(frozen=True)
class DecoderSettings:
    """How the model's output is decoded by default."""

    kind: str = "greedy"  # "greedy", "beam" (lexicon-free), "lexicon" (words + LM) or "grammar"
    beam_width: int = 10  # beams kept by beam search
    lexicon: tuple[str, ...] = ()  # words the lexicon decoder may emit (empty: free vocabulary)
    grammar: tuple[tuple[str, ...], ...] = ()  # "grammar": the words allowed in each slot, in order
    arpa: str = ""  # an ARPA n-gram LM as text ("" : none, or built from the grammar)
    lm_weight: float = 1.0  # weight of the LM score
    word_score: float = 0.0  # score added per emitted word (whole utterances, offline)
    live_word_score: float = 0.0  # the same when stitching live windows, whose unreliable edges a
    # positive score fills with spurious words
    unk_score: float = float("-inf")  # score of an out-of-lexicon word


@dataclass(frozen=True)
class StreamGraphs:
    """The streaming split of a model: two ONNX files beside the main one.

    The encoder maps the main model's inputs (video, points; same names, shapes and
    normalisation) to `feature_name` float32 (N, T, features); the head maps those to the main
    model's output (N, T, C). head(encoder(x)) equals the main model on x. A frame's features
    depend on `context` frames either side of it (zero-padded at a chunk's edges). The optional
    tail is the encoder without the padding before a chunk: it gives the features of the chunk's
    frames from `context` on only (N, T - context, features), equal to encoder(x)[:, context:],
    without computing what only the first `context` frames' own features need.
    """

    encoder: str  # file name of the encoder graph, in the main model's folder
    head: str  # file name of the head graph, in the main model's folder
    context: int  # frames either side of a frame that its features depend on
    features: int  # per-frame feature size F
    feature_name: str = "features"  # the encoder's output and the head's input name
    id: str = ""  # also stored in the split files' metadata (STREAM_METADATA_KEY): the files belong together
    tail: str = ""  # file name of the tail graph, in the main model's folder ("": none)


@dataclass(frozen=True)
class ModelContract:
    """What a LipReader ONNX model declares about itself."""

    vocabulary: tuple[str, ...]  # output classes; vocabulary[blank] is the CTC blank
    blank: int  # index of the CTC blank
    crop: CropSpec  # how crops are cut
    fps: float  # frames per second the model expects
    window: int  # frames per live sliding window
    hop: int  # frames between successive live windows
    mean: float  # normalisation: (crop / 255 - mean) / std
    std: float
    video_input: str = "video"  # input name: float32 (N, T, H, W) grey or (N, T, H, W, 3) colour
    # input name: float32 (N, T, 80) normalised lip points, 120 with their depth
    # (core.crop.normalise_points); "" if none
    points_input: str = "points"
    output: str = "log_probs"  # output name: float32 (N, T, C) log-softmax over the vocabulary
    decoder: DecoderSettings = field(default_factory=DecoderSettings)
    training: dict = field(default_factory=dict)  # the resolved training config
    data: dict = field(default_factory=dict)  # data set, split and sizes
    metrics: dict = field(default_factory=dict)  # validation CER/WER etc.
    stream: StreamGraphs | None = None  # the streaming split shipped beside the model (None: none)
    crop_version: int = 1  # the version of core's front end its crops were cut with (core.crop.CROP_VERSION)
    format_version: int = FORMAT_VERSION

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str) -> ModelContract:
        try:
            values = json.loads(text)
            if not isinstance(values, dict):
                kind = type(values).__name__
                raise ContractError(f"invalid model contract: a JSON object expected, not {kind}")
            if values.get("format_version") != FORMAT_VERSION:
                raise ContractError(f"contract format {values.get('format_version')} is not {FORMAT_VERSION}")
            dec = values.pop("decoder", {})
            if not isinstance(dec, dict):
                raise ContractError(f"invalid model contract: decoder must be an object, not {dec!r}")
            dec["lexicon"] = tuple(dec.get("lexicon", ()))
            dec["grammar"] = tuple(tuple(slot) for slot in dec.get("grammar", ()))
            known = DecoderSettings.__dataclass_fields__  # a newer writer's extra settings are ignored
            values["decoder"] = DecoderSettings(**{k: v for k, v in dec.items() if k in known})
            try:
                values["crop"] = CropSpec.from_dict(values["crop"])
            except (AttributeError, TypeError, ValueError) as e:
                raise ContractError(f"invalid model contract: crop: {e}") from e
            if not isinstance(values["vocabulary"], list):
                raise ContractError("invalid model contract: the vocabulary must be a list of strings")
            values["vocabulary"] = tuple(values["vocabulary"])
            stream = values.pop("stream", None)
            if stream is not None and not isinstance(stream, dict):
                raise ContractError(f"invalid model contract: stream must be an object, not {stream!r}")
            parts = StreamGraphs.__dataclass_fields__  # a newer writer's extra fields are ignored, as above
            values["stream"] = (
                StreamGraphs(**{k: v for k, v in stream.items() if k in parts}) if stream else None
            )
            contract = cls(**{k: v for k, v in values.items() if k in cls.__dataclass_fields__})
        except KeyError as e:
            raise ContractError(f"invalid model contract: missing field {e}") from e
        except (AttributeError, TypeError, ValueError) as e:
            raise ContractError(f"invalid model contract: {e}") from e
        return _verify_contract(contract)


def _verify_types(c: ModelContract) -> None:
    """Raise ContractError unless the contract's numbers are (finite) numbers and its vocabulary is text."""
    whole = {name: getattr(c, name) for name in ("blank", "window", "hop")}
    if c.stream is not None:
        whole |= {"stream context": c.stream.context, "stream features": c.stream.features}
    for name, value in whole.items():
        if not isinstance(value, int) or isinstance(value, bool):
            raise ContractError(f"invalid model contract: {name} must be a whole number, not {value!r}")
    for name in ("fps", "mean", "std"):
        value = getattr(c, name)
        if not isinstance(value, int | float) or isinstance(value, bool) or not math.isfinite(value):
            raise ContractError(f"invalid model contract: {name} must be a finite number, not {value!r}")
    if not all(isinstance(token, str) for token in c.vocabulary):
        raise ContractError("invalid model contract: the vocabulary must be a list of strings")


def _verify_contract(c: ModelContract) -> ModelContract:
    _verify_types(c)
    if not 0 <= c.blank < len(c.vocabulary):
        raise ContractError(f"blank index {c.blank} outside vocabulary of {len(c.vocabulary)}")
    if c.fps <= 0 or c.window <= 0 or not 0 < c.hop <= c.window or c.std <= 0:
        raise ContractError("fps, window, hop and std must be positive, with hop <= window")
    if c.decoder.kind not in ("greedy", "beam", "lexicon", "grammar"):
        raise ContractError(f"unknown decoder kind {c.decoder.kind!r}")
    s = c.stream
    if s is not None:
        names = (s.encoder, s.head, *((s.tail,) if s.tail else ()))
        if any(not n or n != PureWindowsPath(n).name or n in (".", "..") for n in names) or len(
            set(names)
        ) < len(names):
            raise ContractError(
                f"stream graphs {', '.join(map(repr, names))} must be distinct plain file names"
            )
        if s.context < 0 or s.features < 1 or not s.feature_name:
            raise ContractError("stream context must be >= 0, features positive, feature_name non-empty")
    return c
