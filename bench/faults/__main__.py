"""`python -m bench.faults`: run the fault-injection suite (see docs/faults.md)."""

import sys

from bench.faults.runner import main

sys.exit(main())
