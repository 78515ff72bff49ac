"""``python -m costsgd.cli``."""

import sys

from costsgd.cli import main

sys.exit(main())
