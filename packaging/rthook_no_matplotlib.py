"""PyInstaller runtime hook: stand-ins for matplotlib, which the bundle leaves out.

MediaPipe's `mediapipe.tasks.python.vision` imports `drawing_utils`, which imports matplotlib.pyplot
at module level only for `plot_landmarks`; LipReader never calls it. Bundling matplotlib would add
~60 MB (with Pillow, fontTools, kiwisolver...). Any real use of the stand-ins raises ImportError.
"""

import sys
import types


class _NotBundled(types.ModuleType):
    def __getattr__(self, name: str) -> object:
        if name.startswith("__"):
            raise AttributeError(name)
        raise ImportError(f"{self.__name__}.{name}: matplotlib is not bundled with LipReader")


if "matplotlib" not in sys.modules:
    _matplotlib = _NotBundled("matplotlib")
    _matplotlib.__path__ = []  # a package, so that `import matplotlib.pyplot` looks in sys.modules
    _matplotlib.pyplot = sys.modules["matplotlib.pyplot"] = _NotBundled("matplotlib.pyplot")
    sys.modules["matplotlib"] = _matplotlib
