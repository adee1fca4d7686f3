"""``python -m tapepath.mtx``: the same as the ``tapepath-mtx`` console script."""

import sys

from tapepath.mtx.main import main

if __name__ == "__main__":
    sys.exit(main())
