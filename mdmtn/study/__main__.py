"""``python -m mdmtn.study``: the study's command line (:mod:`mdmtn.study.cli`)."""

import sys

from mdmtn.study.cli import main

sys.exit(main())
