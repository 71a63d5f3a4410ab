"""Start ARDM Studio on the shipped model: ``python main.py [FILE] [--model DIR]``."""

import sys

from app.main_window import run

if __name__ == "__main__":
    sys.exit(run())
