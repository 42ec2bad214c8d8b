import sys

from core.cli.dispatch import main

sys.exit(main())
