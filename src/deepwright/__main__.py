"""`python -m deepwright` runs the command line."""

import sys

from deepwright.cli import main

sys.exit(main())
