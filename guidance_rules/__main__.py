"""`python -m guidance_rules`: the command line."""

import sys

from guidance_rules.cli.main import main

if __name__ == "__main__":
    sys.exit(main())
