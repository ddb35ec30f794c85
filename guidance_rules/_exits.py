"""The command line's exit statuses, in one place (the CLI's and the service's commands).

0 done; 1 anything else (a rule base defect, an output that cannot be written, a case the rule
base cannot answer, examples that disagree, a diff that finds differences), always said without a
traceback; 2 the input or the arguments are invalid (the message names the field and what would
be valid); 128 + the signal's number when stopped by Ctrl-C (130) or SIGTERM (143), as shells do.
"""

from __future__ import annotations

OK = 0
ERROR = 1
INVALID = 2
INTERRUPTED = 130  # 128 + SIGINT (2); written out: importing signal costs start-up time
TERMINATED = 143  # 128 + SIGTERM (15)
