import sys

from mdmtn.interface.cli import main

sys.exit(main())
