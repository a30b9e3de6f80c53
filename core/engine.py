"""The captioning engine: a model, its decoders and the stream options resolved against its contract.

`StreamOptions` says how a stream is windowed, decoded and cut into utterances, each field None
for the model's own value; `CaptionEngine` fills those in from the model's contract once per
session and is shared by its streams (`core/streaming.py`). The options are checked alone by
`verify_options`, and against the model by `window_and_hop`; both raise `OptionsError` for a hop
longer than the window a stream runs with (`check_hop`): the CLI and the app refuse such options
through them, before a model is loaded where they can.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from pathlib import Path

from core.contract import ModelContract
from core.decoding import KINDS, make_decoder
from core.inference import LipModel

# frames of silence after a live word that complete it, by whether the model was trained to be blank
# on silence (training's quiet_weight > 0, in its contract): a model trained without it may still say
# a word's last letters well after it. Chosen on 40 clips played back to back, mostly training clips
# (bench/live.py --clips 40 --fast --sync, stage 10): 8 -> a sentence's last word final 500 ms after
# its end (median), 6 -> 405, 4 -> 325, 3 and 2 -> 270 ms, the same 2 errors in 240 words at each;
# 4 leaves a margin over the 2-frame blank runs inside words. Stage 9, without that training, read
# 7.5 % WER at 8 and 8.7 % at 4
WORD_PAUSE = {False: 8, True: 4}
MIN_WINDOW, MAX_WINDOW = 2, 1000  # frames per model window; a longer live window makes no sense
MAX_LANDMARK_EVERY = 4  # MediaPipe at least every 4th frame: optical flow drifts over longer gaps
MAX_STABLE_FRAMES = 100  # frames; 4 s of right context at 25 fps is more lag than a live caption can use
# in seconds, not windows, so that a shorter live window (the shipped model's 60 frames) leaves whole
# utterances read as before: longer ones are decoded in chunks of at most this much (the model and
# the decoder's cost stay bounded), and before the mouth first moves this much still video is kept
MAX_DECODE_SECONDS = 12.0
LEAD_IN_SECONDS = 3.0


@dataclass(frozen=True)
class StreamOptions:
    """How a stream is windowed, decoded and cut into utterances; None means the model's value."""

    window: int | None = None  # frames per model window (None: the contract's window)
    hop: int | None = None  # frames between model runs (None: the contract's hop, at most the window)
    decoder: str | None = None  # "greedy", "beam", "lexicon" or "grammar" (None: the contract's)
    beam_width: int | None = None  # beams kept by beam decoders (None: the contract's)
    word_score: float | None = None  # lexicon/grammar decoders' score per word (None: the contract's
    # word_score for whole utterances, live_word_score for stitched live windows)
    lm: str | None = None  # path of an ARPA/KenLM word LM replacing the contract's (lexicon, grammar)
    final_margin: int = 3  # frames at a window's right edge too unreliable to finalise a word on
    word_pause: int | None = None  # frames of silence that complete a word when the model shows no
    # separator (None: WORD_PAUSE for how the model was trained)
    stable_frames: int = 4  # live: a word is final only once every decode over this many more frames
    # of right context has read it the same (0: at once; more for fewer errors and more lag)
    still_motion: float | None = None  # lip motion (crop widths per frame) below which the mouth is
    # still (None: core.streaming.STILL_MOTION for the way the model's landmarks are found)
    still_frames: int = 16  # still frames after speech that close an utterance (16: chosen on training clips)
    max_decode: int | None = None  # most frames decoded at once (None: MAX_DECODE_SECONDS of them)
    background_model: bool = True  # run the model in a worker thread so frames never wait for it
    split_model: bool = True  # run the model's streaming encoder + head if loaded (else the full model)
    landmark_every: int = 1  # MediaPipe on every Nth frame, optical flow in between (core.tracking)
    whole_utterances: bool | None = None  # decode each utterance whole when it closes (accurate, words
    # final only then) instead of stitching live windows (early finals); None: yes in caption_video,
    # no in live streams (iter_captions, CaptionStream)
    revise: bool = True  # live windows: when an utterance closes, decode it again whole, as
    # whole_utterances does, and send those words to replace its live ones (LiveUpdate.revised)


class OptionsError(ValueError):
    """Stream options that do not fit together or with the model (a hop over the window they set or
    the model's): the user's to change, not the model's fault (the CLI reports it as a usage error)."""


def check_hop(hop: int | None, window: int, whose: str = "the") -> None:
    """Raise OptionsError for a hop longer than `whose` window of `window` frames (None: no hop asked)."""
    if hop is not None and hop > window:
        raise OptionsError(f"hop {hop} is more than {whose} window of {window} frames")


def verify_options(options: StreamOptions) -> StreamOptions:
    """Return `options` if each is in range and the hop fits the window they set; raise ValueError
    (OptionsError for the hop) saying why not. Needs no model: `window_and_hop` checks the rest."""
    o = options
    if o.window is not None and not MIN_WINDOW <= o.window <= MAX_WINDOW:
        raise ValueError(f"window must be {MIN_WINDOW}..{MAX_WINDOW} frames, not {o.window}")
    if o.hop is not None and not 1 <= o.hop <= MAX_WINDOW:
        raise ValueError(f"hop must be 1..{MAX_WINDOW} frames, not {o.hop}")
    if o.window is not None:
        check_hop(o.hop, o.window)
    if o.decoder is not None and o.decoder not in KINDS:
        raise ValueError(f"unknown decoder {o.decoder!r}: choose one of {', '.join(KINDS)}")
    if o.beam_width is not None and o.beam_width < 1:
        raise ValueError(f"beam width must be positive, not {o.beam_width}")
    if not all(math.isfinite(v) for v in (o.word_score or 0.0, o.still_motion or 0.0)):
        raise ValueError(
            f"word_score and still_motion must be finite, not {o.word_score} and {o.still_motion}"
        )
    pause = 1 if o.word_pause is None else o.word_pause
    if o.final_margin < 0 or o.still_frames < 1 or (o.still_motion or 0) < 0 or pause < 1:
        raise ValueError("final_margin and still_motion must be >= 0, still_frames and word_pause >= 1")
    if not 0 <= o.stable_frames <= MAX_STABLE_FRAMES:
        raise ValueError(f"stable_frames must be 0..{MAX_STABLE_FRAMES}, not {o.stable_frames}")
    if not 1 <= o.landmark_every <= MAX_LANDMARK_EVERY:
        raise ValueError(
            f"landmark_every must be 1..{MAX_LANDMARK_EVERY} (optical flow drifts over longer gaps), "
            f"not {o.landmark_every}"
        )
    if o.max_decode is not None and o.max_decode < 1:
        raise ValueError(f"max_decode must be positive, not {o.max_decode}")
    if o.lm is not None and not Path(o.lm).is_file():
        raise ValueError(f"language model {o.lm} does not exist")
    return o


def window_and_hop(contract: ModelContract, options: StreamOptions) -> tuple[int, int]:
    """The window and hop (frames) a stream of the model runs with: the options', else the model's
    (its hop cut to a shorter window the options ask for). Raises OptionsError for a hop the
    options ask for that is longer than that window."""
    window = options.window or contract.window
    check_hop(options.hop, window, "the" if options.window else "the model's")
    return window, min(options.hop or contract.hop, window)


class CaptionEngine:
    """A model, its decoders (whole utterances, live windows) and the stream options, shared by the
    streams of one session.

    Several streams may use one engine at once (ONNX Runtime sessions are thread-safe; each decoder
    serialises its decodes). Raises ValueError for invalid options, OptionsError (a ValueError) for
    options that do not fit the model.
    """

    def __init__(self, model: LipModel, options: StreamOptions | None = None) -> None:
        options = verify_options(options or StreamOptions())
        c = model.contract
        self.model = model
        self.contract = c
        self.window, self.hop = window_and_hop(c, options)
        trained_quiet = c.training.get("quiet_weight", 0) > 0
        # still frames an utterance keeps before the mouth first moves
        self.lead_in = round(LEAD_IN_SECONDS * c.fps)
        self.options = dataclasses.replace(
            options,
            window=self.window,
            hop=self.hop,
            max_decode=options.max_decode or round(MAX_DECODE_SECONDS * c.fps),
            word_pause=WORD_PAUSE[trained_quiet] if options.word_pause is None else options.word_pause,
        )
        choice = {"kind": options.decoder, "beam_width": options.beam_width, "lm_path": options.lm}
        score = c.decoder.word_score if options.word_score is None else options.word_score
        live_score = c.decoder.live_word_score if options.word_score is None else options.word_score
        self.decoder = make_decoder(c.vocabulary, c.blank, c.decoder, word_score=score, **choice)
        # live windows are stitched and decoded again every hop: they have their own word score
        self.live_decoder = (
            self.decoder
            if live_score == score
            else make_decoder(c.vocabulary, c.blank, c.decoder, word_score=live_score, **choice)
        )

    @classmethod
    def load(
        cls,
        model_path: str | Path,
        provider: str = "auto",
        threads: int = 2,
        options: StreamOptions | None = None,
    ) -> CaptionEngine:
        """Load a model (see LipModel.load), warm it up, and build the engine."""
        split = (options or StreamOptions()).split_model
        model = LipModel.load(model_path, provider=provider, threads=threads, stream=split)
        engine = cls(model, options)
        model.warm_up()
        return engine

    @property
    def vocabulary(self) -> tuple[str, ...]:
        return self.contract.vocabulary

    @property
    def fps(self) -> float:
        return self.contract.fps

    @property
    def provider(self) -> str:
        return self.model.provider

    @property
    def split(self) -> bool:
        """Whether live windows run the model's streaming encoder + head (else the full model)."""
        return self.options.split_model and self.model.streams

    @property
    def offline_whole_utterances(self) -> bool:
        """Whether caption_video decodes whole utterances (the option, None meaning yes)."""
        return self.options.whole_utterances is not False
