"""Longest event-loop stall while four streams list a whole day at once.

    .venv/bin/python scripts/bench_loop_stall.py [--runs 3]

Runs ``tests/integration/test_loop_stall.py::test_bench_loop_stall`` in a test
Home Assistant: an emulator with four streams of 49 h of 2-second fragments
(43,200 a day), its rate limits off (the API layer still paces ListFragments to
5 TPS per stream). A probe task sleeps 5 ms again and again; how late it wakes
up is how long the loop was blocked. Scenarios, each on the four streams at once:

- the ``list_fragments`` action for 24 h (limit 1000, the default, and 100,000:
  every fragment in the answer);
- the media browser's day view of yesterday (fresh cache).
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
TEST = "tests/integration/test_loop_stall.py::test_bench_loop_stall"

if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    os.environ["KVS_BENCH_LOOP_STALL"] = str(args.runs)
    os.chdir(ROOT)
    sys.exit(pytest.main([TEST, "-q", "-s", "-p", "no:cacheprovider"]))
