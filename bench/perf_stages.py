#!/usr/bin/env python3
"""Sorts a perf profile of `dfm serve` into the stages of one webhook
(bench/profile_ingest.sh; issue 50).

  perf_stages.py REPORT CLIENT_JSON SECONDS [--switches BEFORE AFTER]

REPORT: `perf report --no-children --sort comm,dso,symbol --stdio -n -g none`
(self samples per symbol). CLIENT_JSON: bench/ingest_client's result (its
"ok" requests). BEFORE and AFTER: bench/lib.sh's bench_thread_stats (each
thread's id, name, CPU and run-queue time, voluntary and forced context
switches, tab-separated), taken around the load: the switches printed per
request by thread name (a thread that exited between them is left out).
Each symbol goes to the first stage whose pattern matches
"<thread> <dso> <symbol>"; the table gives each stage's share of dfm's samples and
its CPU per request in µs (samples at 999 Hz per thread: samples / 999 s of
CPU). The patterns are a first reading: a symbol's stage is where its own
time goes (memcpy called by the HTTP layer is "copies"), not who called it.
"""
import json
import re
import sys

# (stage, pattern over "<thread> <dso> <symbol>"), first match wins. The
# threads: "dfm" (the HTTP front's I/O thread: read, parse, verify, the
# dedupe lookup, answer), "dfm-log-write" (the log's writer: seal, chain,
# batch, fdatasync, the projections' fold), "rocksdb:*" (flush, compaction).
# OpenSSL's own code has no frame pointers, so its time is told by thread:
# on the front it is the signature, on the writer sealing and the chain.
STAGES = [
    ("RocksDB's own threads (flush, compaction)", r"^rocksdb:"),
    ("kernel, front thread (sockets, wake-ups)", r"^dfm \[kernel\]"),
    ("kernel, log writer (fdatasync, wake-ups)", r"^dfm-log-write \[kernel\]"),
    ("kernel, other threads", r"\[kernel\]"),
    ("signature check (OpenSSL, front)", r"^dfm libcrypto"),
    ("sealing and hash chain (OpenSSL, writer)", r"^dfm-log-write libcrypto"),
    ("RocksDB in the writer (memtable, WAL, batch)", r"^dfm-log-write (librocksdb|.*rocksdb::)"),
    ("RocksDB in the front (dedupe lookups)", r"(librocksdb|rocksdb::)"),
    ("compression (snappy, lz4, zstd)", r"libsnappy|liblz4|libzstd|libz\."),
    ("HTTP (RESTinio, asio, http_parser)", r"restinio|asio|llhttp|http_parser"),
    ("JSON (simdjson)", r"simdjson"),
    ("logging and formatting (spdlog, fmt)", r"spdlog|fmt::|libfmt"),
    ("allocation (jemalloc, malloc)", r"jemalloc|je_|malloc|\bfree\b|operator new|operator delete|"
     r"_int_free|_int_malloc|tcache"),
    ("copies (memcpy, memmove, memcmp)", r"mem(cpy|move|set|cmp)"),
    ("locks and threads (libc)", r"pthread_|futex|__lll_|sem_"),
    ("projections' fold", r"dfm::.*(Projection|Fold|StateTable)"),
    ("metrics", r"dfm::.*(Metric|Histogram|Counter|Gauge)"),
    ("the log's records (codec, chain, planner)", r"dfm::.*(Encode|Decode|AppendPlanner|Sha256|"
     r"Chain|EventLog|Record|Idempotency|Seal|Extend)"),
    ("the front (verification, routing, ingest)", r"dfm::.*(Ingest|Webhook|Verify|HttpFront|Front|"
     r"Route|Signature)"),
    ("other dfm code", r"^\S+ dfm "),
    ("libstdc++", r"libstdc\+\+"),
    ("libc, loader, vdso, other", r"."),
]

LINE = re.compile(r"^\s*([\d.]+)%\s+(\d+)\s+(\S+)\s+(\S+)\s+\[([.k])\]\s+(.*)$")


def read_switches(path):
    """{thread name: [voluntary, involuntary]} summed over threads of one name."""
    out = {}
    for line in open(path):
        _, name, _, _, vol, invol = line.rstrip("\n").split("\t")
        acc = out.setdefault(name, [0, 0])
        acc[0] += int(vol or 0)
        acc[1] += int(invol or 0)
    return out


def print_switches(before, after, ok):
    """Context switches per request by thread name, busiest first."""
    b, a = read_switches(before), read_switches(after)
    rows = []
    for name, (vol, invol) in a.items():
        vol0, invol0 = b.get(name, [0, 0])
        rows.append((name, max(vol - vol0, 0) / ok, max(invol - invol0, 0) / ok))
    rows.sort(key=lambda r: -(r[1] + r[2]))
    print()
    print("| thread | waits per request | preemptions per request |")
    print("|---|---:|---:|")
    for name, vol, invol in rows:
        if vol + invol >= 0.001:
            print(f"| {name} | {vol:.3f} | {invol:.3f} |")


def main():
    args = sys.argv[1:]
    switches = None
    if len(args) == 6 and args[3] == "--switches":
        switches, args = args[4:], args[:3]
    if len(args) != 3:
        sys.exit("usage: perf_stages.py REPORT CLIENT_JSON SECONDS [--switches BEFORE AFTER]")
    report, client, secs = args[0], args[1], float(args[2])
    ok = json.load(open(client))["ok"]
    totals, total, top = {}, 0, {}
    for line in open(report, errors="replace"):
        m = LINE.match(line)
        if not m:
            continue
        samples, comm, dso = int(m.group(2)), m.group(3), m.group(4)
        sym = re.sub(r"(\s+-)+\s*$", "", m.group(6)).strip()  # empty trailing columns
        key = comm + " " + ("[kernel]" if m.group(5) == "k" else dso) + " " + sym
        stage = next((name for name, pat in STAGES if re.search(pat, key)), "unclassified")
        totals[stage] = totals.get(stage, 0) + samples
        top.setdefault(stage, []).append((samples, sym[:60]))
        total += samples
    if total == 0 or ok == 0:
        sys.exit("no samples or no requests")
    cpu_s = total / 999.0
    print(f"{ok} requests in {secs:.0f} s ({ok / secs:,.0f}/s); dfm used {cpu_s:.1f} s of CPU "
          f"({cpu_s / ok * 1e6:.1f} µs per request)")
    print(f"| stage | share | µs per request | largest symbols |")
    print(f"|---|---:|---:|---|")
    for stage, n in sorted(totals.items(), key=lambda kv: -kv[1]):
        syms = ", ".join(s for _, s in sorted(top[stage], reverse=True)[:2])
        print(f"| {stage} | {n / total:.1%} | {n / 999.0 / ok * 1e6:.1f} | {syms} |")
    if switches:
        print_switches(switches[0], switches[1], ok)


if __name__ == "__main__":
    main()
