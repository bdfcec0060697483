"""A rank that reports it is up, then sleeps: `sleeper.py OUT_DIR MARKER [ignore]`.

With `ignore`, the rank ignores SIGINT and SIGTERM, so only SIGKILL ends it.
"""

import os
import signal
import sys
import time
from pathlib import Path

out, _marker = Path(sys.argv[1]), sys.argv[2]
if "ignore" in sys.argv[3:]:
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
rank = os.environ.get("OMPI_COMM_WORLD_RANK", "0")
(out / f"ready.{rank}").write_text(str(os.getpid()))
time.sleep(120)
