"""PyInstaller runtime hook: stand-ins for modules the bundle leaves out but libraries import.

- matplotlib: MediaPipe's `mediapipe.tasks.python.vision` imports `drawing_utils`, which imports
  matplotlib.pyplot at module level only for `plot_landmarks`; LipReader never calls it. Bundling
  matplotlib would add ~60 MB (with Pillow, fontTools, kiwisolver...).
- PySide6.QtOpenGL: pyqtgraph imports it at module level (`Qt/OpenGLHelpers.py`, `PlotCurveItem`...)
  but uses it only when plots draw through OpenGL (`useOpenGL`, `enableExperimental`), which LipReader
  never turns on. Its binding is 8.5 MB; QtOpenGLWidgets, which pyqtgraph subclasses, stays.

Any real use of a stand-in raises ImportError naming the module.
"""

import sys
import types


class _NotBundled(types.ModuleType):
    def __getattr__(self, name: str) -> object:
        if name.startswith("__"):
            raise AttributeError(name)
        raise ImportError(f"{self.__name__}.{name}: {self.__name__} is not bundled with LipReader")


def _stand_in(name: str, package: bool = False) -> types.ModuleType:
    module = sys.modules[name] = _NotBundled(name)
    if package:
        module.__path__ = []  # so that `import name.sub` looks in sys.modules
    return module


if "matplotlib" not in sys.modules:
    _stand_in("matplotlib", package=True).pyplot = _stand_in("matplotlib.pyplot")
if "PySide6.QtOpenGL" not in sys.modules:
    _stand_in("PySide6.QtOpenGL")
