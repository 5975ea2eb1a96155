"""`python -m loadgen.nemesis`: see loadgen/nemesis/__init__.py."""

import sys

from loadgen.nemesis.run import main

sys.exit(main())
