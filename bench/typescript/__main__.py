import sys

from bench.typescript.run import main

sys.exit(main())
