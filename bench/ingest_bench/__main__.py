"""`python -m bench.ingest_bench`: see the package's docstring."""

import sys

from bench.ingest_bench.run import main

sys.exit(main(sys.argv[1:]))
