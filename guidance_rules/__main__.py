"""`python -m guidance_rules` is the `guidance-rules` command, for environments without its script on PATH."""

import sys

from guidance_rules.cli import main

if __name__ == "__main__":
    sys.exit(main())
