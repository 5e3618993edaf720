#!/usr/bin/env python3
"""CPU time of mlsproj binaries on one job, in alternated runs.

  python3 benches/alternate.py [--runs N] CONFIG BINARY [BINARY ...]

Runs `BINARY run CONFIG --quiet` for each binary in turn, N rounds
(default 5), and prints each binary's median, mean and least CPU time
(user + system of the child, from os.wait4: microseconds, where
/usr/bin/time rounds to 10 ms) and wall time. On a shared machine the
load falls on every binary alike when they alternate, and CPU time is
steadier than wall time; compare binaries within one call, not across
calls. Every binary writes the config's output, so compare outputs with
`cmp` separately (or with benches/same_outputs.sh).
"""
import argparse
import os
import statistics
import subprocess
import sys
import time


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("config")
    parser.add_argument("binaries", nargs="+")
    args = parser.parse_args()
    cpu = {binary: [] for binary in args.binaries}
    wall = {binary: [] for binary in args.binaries}
    for _ in range(args.runs):
        for binary in args.binaries:
            start = time.perf_counter()
            child = subprocess.Popen(
                [binary, "run", args.config, "--quiet"],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
            )
            stderr = child.stderr.read()
            _, status, usage = os.wait4(child.pid, 0)
            wall[binary].append(time.perf_counter() - start)
            if os.waitstatus_to_exitcode(status) != 0:
                sys.exit(f"{binary} failed on {args.config}:\n{stderr.decode(errors='replace')}")
            cpu[binary].append(usage.ru_utime + usage.ru_stime)
    print(f"{args.config}, {args.runs} alternated runs, load average {os.getloadavg()[0]:.2f}")
    for binary in args.binaries:
        times = cpu[binary]
        print(
            f"{binary}: CPU median {statistics.median(times):.3f} s, "
            f"mean {statistics.mean(times):.3f}, least {min(times):.3f}; "
            f"wall median {statistics.median(wall[binary]):.3f} s"
        )


if __name__ == "__main__":
    main()
