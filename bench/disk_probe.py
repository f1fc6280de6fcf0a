#!/usr/bin/env python3
"""The disk alone, in the pattern of dfm's log at 5,000 webhooks/s.

    bench/disk_probe.py DIR [SECONDS] [RATE] [BYTES] [--until-calm TRIES]

Appends BYTES (8192) to a new file in DIR and fdatasyncs it, RATE (1500)
times a second for SECONDS (8), as dfm's WAL is written by group commits
in bench/run_ingest.sh's open loop (about 1,500 commits a second of ~8 KB
each), then removes the file. Prints one JSON line: rate, bytes, syncs,
p50_us, p99_us, max_us, and slow (syncs that took 10 ms or more). A sync that stalls here
stalls every webhook acknowledged meanwhile in dfm, so this tells whether
the disk allowed the open loop's latency goal during the run.

With --until-calm TRIES it probes up to TRIES times, a minute apart,
printing each line, and exits 0 at the first probe with no slow sync, 1
if none was calm: `bench/disk_probe.py /tmp 8 --until-calm 12 &&
bench/run_ingest.sh` starts the benchmark on a disk that is not stalling
at that moment (bench/README.md (b), "The disk's own stalls").
"""
import json
import os
import sys
import time


def probe(directory, seconds, rate, size):
    """One probe: returns its JSON-ready figures."""
    path = os.path.join(directory, f"disk-probe-{os.getpid()}.bin")
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    block = b"x" * size
    took = []
    try:
        start = time.perf_counter()
        while True:
            now = time.perf_counter()
            if now - start >= seconds:
                break
            due = start + len(took) / rate
            if due > now:
                time.sleep(due - now)
            t = time.perf_counter()
            os.write(fd, block)
            os.fdatasync(fd)
            took.append((time.perf_counter() - t) * 1e6)
    finally:
        os.close(fd)
        os.unlink(path)
    took.sort()
    n = len(took)
    if n == 0:
        sys.exit("no sync was made in the time given")
    return {"rate": rate, "bytes": size, "syncs": n, "p50_us": round(took[n // 2]), "p99_us": round(took[n * 99 // 100]),
            "max_us": round(took[-1]), "slow": sum(1 for t in took if t >= 10000)}


def main():
    args = sys.argv[1:]
    tries = 0
    if "--until-calm" in args:
        i = args.index("--until-calm")
        if i + 1 >= len(args) or not args[i + 1].isdigit() or int(args[i + 1]) < 1:
            sys.exit("--until-calm needs a whole number of tries from 1")
        tries = int(args[i + 1])
        del args[i:i + 2]
    if not 1 <= len(args) <= 4:
        sys.exit(__doc__)
    directory = args[0]
    seconds = float(args[1]) if len(args) > 1 else 8.0
    rate = float(args[2]) if len(args) > 2 else 1500.0
    size = int(args[3]) if len(args) > 3 else 8192
    if seconds <= 0 or rate <= 0 or size <= 0:
        sys.exit("SECONDS, RATE and BYTES must be above 0")
    if tries == 0:
        print(json.dumps(probe(directory, seconds, rate, size)))
        return
    for attempt in range(tries):
        if attempt > 0:
            time.sleep(60)
        result = probe(directory, seconds, rate, size)
        print(json.dumps(result), flush=True)
        if result["slow"] == 0:
            return
    sys.exit(1)


if __name__ == "__main__":
    main()
