"""``python -m tapepath``: the ``tapepath`` command line."""

import sys

from tapepath.cli import main

if __name__ == "__main__":
    sys.exit(main())
