"""A script that behaves as asked, for the program objective's tests: reports by JSON lines or lmtune.report,
crashes, prints garbage or the wrong metric, stays silent, hangs, or ignores SIGTERM."""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import time
from pathlib import Path

parser = argparse.ArgumentParser()
parser.add_argument("--x", type=float, default=0.5)
parser.add_argument("--mode", default="json")
parser.add_argument("--steps", type=int, default=3)
parser.add_argument("--pause", type=float, default=0.0, help="seconds between reports")
parser.add_argument("--marker", default="", help="a file written when SIGTERM arrives")
args = parser.parse_args()

if args.marker:

    def on_term(signum: int, frame: object) -> None:
        Path(args.marker).write_text("SIGTERM")
        if args.mode != "ignore_term":
            sys.exit(143)

    signal.signal(signal.SIGTERM, on_term)

print("starting", json.dumps({"cuda": os.environ.get("CUDA_VISIBLE_DEVICES")}))
if args.mode == "crash":
    print("about to fail", file=sys.stderr)
    raise RuntimeError(f"diverged at x={args.x}")
if args.mode == "garbage":
    print("loss=0.3 acc=0.9\n{not json")
    sys.exit(0)
if args.mode == "silent":
    sys.exit(0)
if args.mode == "hang":
    time.sleep(600)
for step in range(1, args.steps + 1):
    value = args.x * step
    if args.mode == "json":
        print(json.dumps({"step": step, "loss": 1 / step, "score": value}))
    elif args.mode == "auto_steps":
        print(json.dumps({"score": value}))
    elif args.mode in ("report", "ignore_term"):
        import lmtune

        lmtune.report(value, step)
    elif args.mode == "wrong_metric":
        print(json.dumps({"step": step, "accuracy": value}))
    elif args.mode == "not_a_number":
        print(json.dumps({"step": step, "score": "n/a"}))
    time.sleep(args.pause)
if args.mode == "ignore_term":
    time.sleep(600)
