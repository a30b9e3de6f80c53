"""Loading a model for the window, and the caption engine it runs with the preferences.

`open_model` never raises: what gave way to what, and why a model could not be loaded, come back
in a ModelLoad for the window to show.
"""

from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass
from pathlib import Path

from core.engine import CaptionEngine, StreamOptions
from core.inference import LipModel, ProviderError
from lipreader_app.panels.status import provider_name
from lipreader_app.settings import Preferences, verify_for_model
from lipreader_app.workers import error_message

log = logging.getLogger("lipreader")

MODEL_THREADS = 1  # ONNX Runtime intra-op threads: MediaPipe and the GUI keep the other core, and the live
# window runs faster on one thread than on two contended ones (bench/live.py: 16.5 vs 25.3 ms)
PROVIDER_HINT = "(File ▸ Preferences… ▸ Execution provider)"
PREFERENCES_HINT = "(File ▸ Preferences…)"
CHOOSE_HINT = "(Model ▸ Open model… to choose one)"


@dataclass(frozen=True)
class ModelLoad:
    """What loading a model came to."""

    path: Path  # the model loaded or tried: the shipped one when the one opened last gave way to it
    model: LipModel | None  # None: it could not be loaded, `error` says why
    provider: str  # the provider asked for, or "auto" when the saved one gave way
    warnings: tuple[str, ...] = ()  # to show first, in order: what gave way to what
    error: str | None = None  # why it could not be loaded, and where to choose another
    forget: bool = False  # the model opened last could not be loaded: it is not opened at the next start


def open_model(path: Path, provider: str, fallback: bool = False, shipped: Path | None = None) -> ModelLoad:
    """Load the model at `path` on `provider`.

    With `fallback` (the provider saved in the preferences) a provider that cannot run here gives way
    to "auto", with a warning. With `shipped` (the model opened last, at start-up) a model that cannot
    be loaded gives way to the one at `shipped`, with a warning, and is to be forgotten.
    """
    asked = provider
    warnings: tuple[str, ...] = ()
    try:
        try:
            model = LipModel.load(path, provider, threads=MODEL_THREADS)
        except ProviderError as e:
            if not fallback or provider == "auto":
                raise
            model = LipModel.load(path, "auto", threads=MODEL_THREADS)
            found = provider_name(model.provider)
            warnings = (f"the saved provider ({provider}) cannot run here: on {found} {PROVIDER_HINT}",)
            log.warning("%s", error_message(e))
            provider = "auto"
    except ProviderError as e:
        return ModelLoad(path, None, provider, error=f"{error_message(e)} {PROVIDER_HINT}")
    except Exception as e:  # ModelError, or ValueError for a bad provider name
        if shipped is not None and path != shipped:
            gave_way = (
                f"{error_message(e)}: it was the model opened last; the shipped model "
                f"{shipped.name} is used instead {CHOOSE_HINT}"
            )
            load = open_model(shipped, asked, fallback)
            return dataclasses.replace(load, warnings=(gave_way, *load.warnings), forget=True)
        return ModelLoad(path, None, provider, error=f"{error_message(e)} {CHOOSE_HINT}")
    return ModelLoad(path, model, provider, warnings)


def build_engine(model: LipModel, prefs: Preferences) -> CaptionEngine:
    """A CaptionEngine for `model` with the preferred window, hop, decoder, landmark rate and word
    stability; raises ValueError when they do not fit it (a hop over its own window, a decoder it has
    no data for...)."""
    p = verify_for_model(prefs, model.contract)
    options = StreamOptions(
        window=p.window or None,
        hop=p.hop or None,
        decoder=p.decoder or None,
        beam_width=p.beam_width or None,
        landmark_every=p.landmark_every,
        stable_frames=p.stable_frames,
        revise=p.revise,
    )
    return CaptionEngine(model, options)
