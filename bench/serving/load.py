#!/usr/bin/env python3
"""Bounded load generator for the digits inference service (stdlib only).

    python3 bench/serving/load.py URL [--duration 60] [--concurrency 8] [--rows 256]

POSTs batches of --rows digits from examples/digits/data/digits.csv to
URL/v2/models/digits/infer from --concurrency threads for --duration
seconds, then prints requests, failures, throughput and p50/p99 latency.
Watch the autoscaler react meanwhile with `watch petrel get services`.
"""

import argparse
import json
import os
import threading
import time
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
CSV = os.path.join(HERE, "..", "..", "examples", "digits", "data", "digits.csv")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("url")
    ap.add_argument("--duration", type=float, default=60)
    ap.add_argument("--concurrency", type=int, default=8)
    ap.add_argument("--rows", type=int, default=256)
    args = ap.parse_args()
    rows = [l.strip().split(",") for l in open(CSV) if l.strip()][: args.rows]
    data = [float(v) for r in rows for v in r[:64]]
    body = json.dumps({"inputs": [{"name": "input-0", "shape": [len(rows), 64], "datatype": "FP32", "data": data}]}).encode()
    url = args.url.rstrip("/") + "/v2/models/digits/infer"
    lock = threading.Lock()
    lat, failures = [], [0]
    end = time.time() + args.duration

    def worker():
        while time.time() < end:
            t0 = time.perf_counter()
            try:
                req = urllib.request.Request(url, body, {"Content-Type": "application/json"})
                urllib.request.urlopen(req, timeout=30).read()
                ok = True
            except Exception:  # noqa: BLE001 - every failure counts the same
                ok = False
            d = time.perf_counter() - t0
            with lock:
                if ok:
                    lat.append(d)
                else:
                    failures[0] += 1

    start = time.time()
    threads = [threading.Thread(target=worker) for _ in range(args.concurrency)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    took = time.time() - start
    lat.sort()
    pct = lambda p: lat[min(len(lat) - 1, int(len(lat) * p / 100))] * 1000 if lat else float("nan")
    print("requests %d  failed %d  %.1f req/s  p50 %.1f ms  p99 %.1f ms" % (len(lat), failures[0], len(lat) / took, pct(50), pct(99)))


if __name__ == "__main__":
    main()
