"""``python -m flamewatch``: the same as the ``flamewatch`` command."""

import sys

from .cli import main

sys.exit(main())
