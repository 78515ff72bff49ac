"""``python -m costsgd``: the ``costsgd`` command line (:mod:`costsgd.cli`)."""

import sys

from costsgd.cli import main

if __name__ == "__main__":
    sys.exit(main())
