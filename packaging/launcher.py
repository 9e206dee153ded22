"""The packaged app's entry point: the same ``basechat`` command, window by default."""

import sys

from app.cli import main

if __name__ == "__main__":
    sys.exit(main())
