"""What every results file records about how it was made: command, machine, date."""

from __future__ import annotations

import os
import platform
import shlex
import sys
import time


def provenance() -> dict[str, str]:
    return {"command": "python " + " ".join(shlex.quote(a) for a in sys.argv),
            "machine": f"{platform.machine()}, {os.cpu_count()} cores",
            "date": time.strftime("%Y-%m-%d %H:%M")}
