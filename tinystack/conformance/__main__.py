"""``python -m tinystack.conformance``: the same as ``tinystack conformance``."""

import sys

from tinystack.conformance.cli import main

sys.exit(main())
