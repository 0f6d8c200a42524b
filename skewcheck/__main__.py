import sys

from skewcheck.cli import main

sys.exit(main())
