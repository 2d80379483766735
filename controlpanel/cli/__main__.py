import sys

from controlpanel.cli import main

sys.exit(main())
