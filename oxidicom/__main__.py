"""``python -m oxidicom``: the same as the ``oxidicom`` command."""

import sys

from oxidicom.cli import main

sys.exit(main())
