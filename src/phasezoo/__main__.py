"""``python -m phasezoo``: the ``phasezoo`` command."""

import sys

from phasezoo.cli import main

sys.exit(main())
