"""Entry point of the PyInstaller bundle: the `lipreader` command (see lipreader_app/cli.py)."""

import multiprocessing
import sys

from lipreader_app.cli import main

if __name__ == "__main__":
    multiprocessing.freeze_support()  # `lipreader caption --workers N` spawns worker processes
    sys.exit(main())
