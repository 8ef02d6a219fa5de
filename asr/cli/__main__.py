"""``python -m asr.cli``: the ``asr`` command, as ``torchrun`` starts it."""

import sys

from asr.cli.main import main

sys.exit(main())
