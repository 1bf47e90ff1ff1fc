"""`python -m bwv_dock`: the dock client's command line."""

import sys

from bwv_dock import main

sys.exit(main())
