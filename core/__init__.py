"""LipReader's GUI-free, torch-free pipeline.

Importing any part of it first turns ONNX Runtime's telemetry off, for this process and the ones it
starts: ONNX Runtime reads ORT_DISABLE_TELEMETRY once, when it is loaded (LipReader loads it
through `core.inference`, after this), and otherwise writes a device id and a queue of usage events under
~/.cache/Microsoft/ to send to Microsoft. It is forced off, whatever the environment says: LipReader
sends nothing about its use. (`core.inference` also turns telemetry events off through ONNX
Runtime's own API, where it has one.)
"""

import os

ORT_TELEMETRY_ENV_VAR = "ORT_DISABLE_TELEMETRY"  # "1": ONNX Runtime neither records nor sends usage events

os.environ[ORT_TELEMETRY_ENV_VAR] = "1"
