"""`python -m moodlens ...` is the `moodlens` command."""

import sys

from .cli import main

sys.exit(main())
