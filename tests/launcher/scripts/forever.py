"""A rank that reports it is up, then waits forever: `forever.py OUT_DIR [ignore] [distkeras]`.

It writes `OUT_DIR/ready.<pid>`. With `ignore` it ignores SIGINT and SIGTERM
(only SIGKILL ends it); with `distkeras` it imports distkeras first (whose
launcher watch then runs in this process).
"""

import os
import signal
import sys
import time
from pathlib import Path

out = Path(sys.argv[1])
if "ignore" in sys.argv[2:]:
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
if "distkeras" in sys.argv[2:]:
    import distkeras  # noqa: F401
(out / f"ready.{os.getpid()}").write_text(str(os.getpid()))
while True:
    time.sleep(1)
