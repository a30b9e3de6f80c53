"""Live stitching: overlapping window outputs -> one log-prob timeline -> final and partial words.

The model is bidirectional, so its output is unreliable near a window's edges. The `Stitcher`
keeps one row of log-probs per frame, taken from the window in which that frame was most central
(distance to the nearest open edge), and decodes the current utterance's rows. A word becomes
final, and is never emitted again, once it is complete in reliable frames: it ends at least
`final_margin` frames before the newest frame, and the model has said the word is over (a word
separator is the likeliest token on a frame after it and before that margin, or a pause of
`pause` frames follows). Later words are partial. Without the second condition a word being
said would be cut: "pl" of "please" decodes as the GRID letters "p" and "l". With
`stable_frames`, a word must also have been read the same by every decode over that many more
frames: the model's guesses at a window's edge change from window to window ("s" for the start of
"set"), a word it has seen whole does not. Closing an utterance finalises everything and starts a
new timeline; for `echo` frames after it, the closed utterance's last word read again as the next
one's first is a repeat (windows that still see it can place it again in the silence after it).

`MouthActivity` decides when an utterance ends: the lips have been still for a while.
Both classes work on frame indices and arrays only, so they are testable without MediaPipe.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from core.decoding import WORD_GAP, DecodedWord, Decoder

STABLE_SLACK = 2  # frames a word's start may move between two decodes and still be the same word


@dataclass(frozen=True)
class StitchResult:
    """What one decode of the timeline produced."""

    final: tuple[DecodedWord, ...]  # words that became final now (never repeated later)
    partial: tuple[DecodedWord, ...]  # the unstable tail, replacing the previous partial words


class Stitcher:
    """Per-frame log-prob timeline of one stream, decoded into final and partial words.

    Frames are absolute indices of the stream. Feed windows with `add_window`, then call `step`
    to decode; `close` ends the utterance; `restart` forgets everything before a frame.
    """

    def __init__(
        self,
        decoder: Decoder,
        num_classes: int,
        final_margin: int,
        max_decode: int,
        pause: int = 8,
        stable_frames: int = 0,
        echo: int = 0,
    ) -> None:
        if final_margin < 0 or max_decode < 1 or pause < 1 or stable_frames < 0 or echo < 0:
            raise ValueError("final_margin, stable_frames, echo must be >= 0, max_decode and pause >= 1")
        self.decoder = decoder
        self.num_classes = num_classes
        self.final_margin = final_margin  # frames a word must end before the newest frame to be final
        self.max_decode = max_decode  # most frames decoded at once (bounds the cost of a step)
        self.pause = pause  # frames of silence after a word that complete it without a separator
        self.stable_frames = stable_frames  # frames of more context over which decodes must agree
        # frames after an utterance closes in which its last word, read again, is a repeat: windows
        # that still see the closed utterance may emit its last word again, into the silence after
        self.echo = echo
        self.restart(0)

    def restart(self, frame: int) -> None:
        """Forget the timeline; the next utterance starts at `frame`."""
        self.base = frame  # frame index of row 0 of the timeline
        self._rows = np.zeros((0, self.num_classes), np.float32)
        self._centrality = np.zeros(0, np.float32)
        self.commit = frame  # words must start at or after this frame to be new
        self.decode_from = frame  # first frame decoded by the next step
        self.utterance_start = frame
        self._last_final: DecodedWord | None = None
        self._echo_until = frame  # see `echo`
        self._history: list[tuple[int, list[DecodedWord]]] = []  # (timeline end, words) of earlier decodes

    @property
    def end(self) -> int:
        """One past the newest frame that has log-probs."""
        return self.base + len(self._rows)

    def add_window(
        self, start: int, log_probs: np.ndarray, left_open: bool = True, right_open: bool = True
    ) -> None:
        """Merge one window's output covering frames [start, start + T).

        log_probs: float32, shape (T, C). left_open/right_open: whether the window's first/last
        frame is an edge with unseen context beyond (False at the true start or end of a stream).
        Each frame keeps the row from the window where it is most central; ties go to the newer.
        """
        t = len(log_probs)
        pos = np.arange(t, dtype=np.float32)
        far = np.full(t, t, np.float32)  # no edge on that side
        centrality = np.minimum(pos if left_open else far, (t - 1 - pos) if right_open else far)
        skip = max(0, self.base - start)  # frames before the timeline's base are gone
        if skip >= t:
            return
        start, log_probs, centrality = start + skip, log_probs[skip:], centrality[skip:]
        stop = start + len(log_probs)
        if stop > self.end:
            grow = stop - self.end
            self._rows = np.concatenate([self._rows, np.zeros((grow, self.num_classes), np.float32)])
            self._centrality = np.concatenate([self._centrality, np.full(grow, -1, np.float32)])
        lo, hi = start - self.base, stop - self.base
        better = centrality >= self._centrality[lo:hi]
        self._rows[lo:hi][better] = log_probs[better]
        self._centrality[lo:hi][better] = centrality[better]

    def timeline(self, start: int | None = None, stop: int | None = None) -> np.ndarray:
        """The stitched log-probs of frames [start, stop), shape (T, C)."""
        start = self.base if start is None else start
        stop = self.end if stop is None else stop
        return self._rows[start - self.base : stop - self.base]

    def _decode(self) -> list[DecodedWord]:
        start = max(self.decode_from, self.end - self.max_decode)
        self._trim(start)  # older rows will never be decoded again (keeps a long silence cheap)
        if start >= self.end:
            return []
        words = [
            DecodedWord(w.text, w.start + start, w.end + start)
            for w in self.decoder.decode(self.timeline(start), pause=WORD_GAP)
            if w.start + start >= self.commit
        ]
        # the last final word, re-decoded for context, can come out again just past the commit
        # point (its tail read as a second copy): that is a repeat, not a new word
        if words and self._last_final is not None and words[0].text == self._last_final.text:
            if words[0].start - self.commit < self.pause or words[0].start < self._echo_until:
                words = words[1:]
        return words

    def step(self) -> StitchResult:
        """Decode the utterance so far; the leading complete words (see the module doc) are final."""
        words = self._decode()
        n = 0
        while (
            n < len(words)
            and self._stable(words[n])
            and self._complete(words[n], words[n + 1].start if n + 1 < len(words) else None)
        ):
            n += 1
        self._remember(words)
        final, partial = words[:n], words[n:]
        if final:
            self._advance(final[-1])
        return StitchResult(tuple(final), tuple(partial))

    def _stable(self, word: DecodedWord) -> bool:
        """Whether every decode since the newest one at least `stable_frames` frames ago read this word
        at the same place (a slow model that stretches the hop makes fewer decodes, not more lag)."""
        if not self.stable_frames:
            return True
        first = self._oldest_needed()
        if first is None:
            return False
        return all(
            any(w.text == word.text and abs(w.start - word.start) <= STABLE_SLACK for w in words)
            for _, words in self._history[first:]
        )

    def _remember(self, words: list[DecodedWord]) -> None:
        """Keep this decode; forget those no later step will look back to."""
        if not self.stable_frames:
            return
        self._history.append((self.end, words))
        del self._history[: self._oldest_needed() or 0]

    def _oldest_needed(self) -> int | None:
        """Index in the history of the newest decode at least `stable_frames` frames old, if any."""
        old = [i for i, (end, _) in enumerate(self._history) if end <= self.end - self.stable_frames]
        return old[-1] if old else None

    def _complete(self, word: DecodedWord, next_start: int | None) -> bool:
        limit = self.end - self.final_margin  # frames from here on are too near the window's edge
        if word.end > limit:
            return False
        after = next_start if next_start is not None else self.end
        if after - word.end >= self.pause:
            return True
        separator = self.decoder.separator
        gap = self.timeline(word.end, min(after, limit))
        return separator is not None and len(gap) > 0 and bool((gap.argmax(axis=1) == separator).any())

    def _advance(self, last_final: DecodedWord) -> None:
        self.commit = last_final.end
        self._last_final = last_final
        # the next decode starts at the last final word, so the LM sees it as context
        self.decode_from = last_final.start
        self._trim(self.decode_from)

    def _trim(self, frame: int) -> None:
        """Drop rows before `frame`; they are never decoded again."""
        drop = min(max(0, frame - self.base), len(self._rows))
        if drop:
            self._rows = self._rows[drop:]
            self._centrality = self._centrality[drop:]
            self.base += drop

    def close(self) -> tuple[DecodedWord, ...]:
        """End the utterance: every new word becomes final; the next utterance starts at `end`."""
        words = tuple(self._decode())
        end = self.end
        self._trim(end)
        self.commit = self.decode_from = self.utterance_start = end
        self._last_final = words[-1] if words else self._last_final
        self._echo_until = end + self.echo
        self._history = []
        return words


class MouthActivity:
    """Whether the mouth moves: lip-point motion per frame, smoothed, against a threshold.

    Call it once per frame with the crop's lip points (or None when there is no face); it returns
    True when the mouth has been still for `still_frames` frames after having moved (the moment to
    close an utterance). Motion is measured in crop widths, so it does not depend on face size.
    """

    def __init__(self, crop_width: int, still_motion: float, still_frames: int, smooth: int = 2) -> None:
        self.crop_width = crop_width
        self.still_motion = still_motion  # smoothed motion (crop widths per frame) counted as still
        self.still_frames = still_frames  # still frames that end an utterance
        self._recent = np.zeros(max(1, smooth), np.float32)
        self._previous: np.ndarray | None = None
        self._still = 0
        self.active = False  # the mouth moved since the last closing
        self.motion = 0.0  # smoothed motion of the last frame

    def reset(self) -> None:
        self._previous = None
        self._recent[:] = 0
        self._still = 0
        self.active = False
        self.motion = 0.0

    def __call__(self, lip_points: np.ndarray | None) -> bool:
        """lip_points: float32, shape (40, 2) or (40, 3) with depth (not used here), crop pixels;
        None when the face is missing."""
        if lip_points is None:
            self._previous = None
            return False
        lip_points = lip_points[:, :2]
        if self._previous is not None:
            step = float(np.abs(lip_points - self._previous).mean()) / self.crop_width
            self._recent = np.roll(self._recent, 1)
            self._recent[0] = step
            self.motion = float(self._recent.mean())
        self._previous = lip_points
        if self.motion >= self.still_motion:
            self.active, self._still = True, 0
            return False
        self._still += 1
        if self.active and self._still >= self.still_frames:
            self.active = False
            return True
        return False
