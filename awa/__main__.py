"""``python -m awa``: the command line (same as the ``awa`` console script)."""

import sys

from awa.cli import main

if __name__ == "__main__":
    sys.exit(main())
