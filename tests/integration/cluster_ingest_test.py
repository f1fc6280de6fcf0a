#!/usr/bin/env python3
"""A webhook its partition can never read does not stop the partition
(cluster mode, docs/scale-out.md "Limits"): one node, one partition,
sealing on (`cluster.state_key`). Two messages no node can read are put
in the partition's ingest stream ahead of a real Verity text: a frame
that does not decode, and a sealed draft whose front key is not in the
partition's key store (as after the store was restored from an old
copy). The key is asked again, the partition waiting (a key store's new
leader may not have applied its block yet: 5 minutes, 6 s here), then
given up. The partition skips both,
logging `ingest_webhook_lost` and counting them in
`dfm_cluster_ingest_lost_total`, and takes the text behind them.
(Before, the missing key stopped the partition for good: restarted every
few seconds, the text waited behind it, acknowledged, until it expired;
the frame that does not decode was skipped uncounted.)

Usage: cluster_ingest_test.py --dfm PATH
"""
import argparse
import http.client
import os
import re
import shutil
import socket
import struct
import sys
import time

sys.path.insert(0, os.path.dirname(__file__))
import clustertest as ct  # noqa: E402
import dfmtest as t  # noqa: E402


def nats_publish(url, subject, payloads):
    """Publishes each payload to `subject` over NATS's client protocol (no
    client library: the test's own few lines), then waits for the server's
    PONG, so that they are in the stream when it returns."""
    host, port = url.split("//")[1].split(":")
    with socket.create_connection((host, int(port)), timeout=10) as s:
        f = s.makefile("rb")
        assert f.readline().startswith(b"INFO "), "not a NATS server"
        s.sendall(b'CONNECT {"verbose":false,"pedantic":false,"name":"poison"}\r\n')
        for p in payloads:
            s.sendall(b"PUB %s %d\r\n%s\r\n" % (subject.encode(), len(p), p))
        s.sendall(b"PING\r\n")
        while True:
            line = f.readline()
            assert line, "the server closed the connection"
            assert not line.startswith(b"-ERR"), line
            if line.startswith(b"PONG"):
                return


def length_prefixed(b):
    """cluster/wire.cc's PutLengthPrefixed: a varint32 length, the bytes."""
    n, out = len(b), bytearray()
    while n >= 0x80:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out) + b


def sealed_draft_with_missing_key(n=0):
    """A version-2 (front-sealed) draft of the default tenant, in the
    grammar of docs/scale-out.md ("Formats"), sealed under key number
    2^40 + 1 + n (block 2^32 of 256 keys), of a block the partition's key store has never made."""
    out = b"\x02"
    for s in (b"default", b"webhook:verity", b"webhook.received"):
        out += length_prefixed(s)
    out += b"\x01\x00"  # schema 1, no source time
    for fill in (b"\x01", b"\x02", b"\x03"):  # causation, correlation, event id
        out += length_prefixed(fill * 16)
    out += length_prefixed(b"verity") + length_prefixed(b"poison-%d" % n)
    out += length_prefixed(struct.pack(">Q", (1 << 40) + 1 + n) + b"\x00" * 44)
    return out


def metric(node, name):
    _, _, body = t.request("127.0.0.1", node.admin_port, "GET", "/metrics")
    total = 0.0
    for line in body.decode().splitlines():
        if line.startswith(name + "{") or line.startswith(name + " "):
            total += float(line.rsplit(" ", 1)[1])
    return total


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--dfm", required=True)
    args = ap.parse_args()
    work = t.tempdir()
    cluster = ct.ClusterDfm(args.dfm, work, nodes=1, partitions=1)
    ok = False
    try:
        cluster.start(env_extra={"DFM_TEST_KEY_GONE_AFTER_S": "6"})
        node = cluster.nodes[0]
        home = cluster.home()
        subject = f"dfm.in.{home}"
        nats_publish(cluster.nats.urls()[0], subject, [b"\x01\x03ab", sealed_draft_with_missing_key(0)])
        conn = http.client.HTTPConnection("127.0.0.1", cluster.port, timeout=15)
        resp, _ = t.post_verity(conn, "after-the-poison", "Sounds good")
        assert resp.status == 200, resp.status
        # A second key of the same missing block, behind a key that opens:
        # the block's wait is not begun again.
        nats_publish(cluster.nats.urls()[0], subject, [sealed_draft_with_missing_key(1)])
        end = time.time() + 60
        while time.time() < end and metric(node, "dfm_cluster_ingest_lost_total") < 3:
            time.sleep(0.2)
        assert metric(node, "dfm_cluster_ingest_lost_total") == 3, "the three unreadable webhooks counted"
        end = time.time() + 30
        ids = []
        while time.time() < end:
            ids = [w["payload"]["provider_event_id"] for w in cluster.webhooks()]
            if any(i.endswith(":after-the-poison") for i in ids):
                break
            time.sleep(0.5)
        assert len([i for i in ids if i.endswith(":after-the-poison")]) == 1, \
            f"the text behind them reached the log once: {ids}"
        assert metric(node, "dfm_cluster_partition_restarts_total") == 0, "the partition was restarted"
        assert metric(node, "dfm_cluster_ingest_waiting_key") == 0, "still shown waiting for a key"
        with open(node.log_path) as f:
            log = f.read()
        assert re.search(r"event=ingest_key_missing partition=\d+ stream_seq=2 key=\d+ missing_for_s=0 ", log), \
            "the key not asked again"
        lost = re.findall(r"(\S+) critical \[cluster\] event=ingest_webhook_lost partition=\d+ "
                          r"stream_seq=(\d+) reason=\"([^\"]+)\"", log)
        assert [seq for _, seq, _ in lost] == ["1", "2", "4"], lost
        assert "does not decode" in lost[0][2] and "key store" in lost[1][2] and "key store" in lost[2][2], lost
        waited = re.search(r"event=ingest_key_missing partition=\d+ stream_seq=4 key=\d+ missing_for_s=(\d+)", log)
        assert waited and int(waited.group(1)) >= 5, f"the block's wait began again: {waited and waited.group(0)}"
        ok = True
        print("cluster_ingest_test: OK (three unreadable webhooks skipped and counted, one wait for the "
              "missing block; the text between them taken)")
    finally:
        cluster.close()
        if ok:
            shutil.rmtree(work, ignore_errors=True)
        else:
            print(f"kept {work}", file=sys.stderr)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
