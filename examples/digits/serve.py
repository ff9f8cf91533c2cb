#!/usr/bin/env python3
"""Serve the digits model over the Open Inference Protocol (KServe V2 REST).

Python 3 standard library only. The model is the JSON file train.py writes
into the models volume (digits.json): a softmax regression over 64 pixel
values 0-16,

    {"kind": "softmax-regression", "inputs": 64, "input_scale": 0.0625,
     "classes": [0, ..., 9], "W": [[64 floats] x 10], "b": [10 floats], ...}

predicting classes[argmax(W . (x * input_scale) + b)]. Optional "mean" and
"std" (64 floats each) standardise the scaled input first.

Endpoints (https://kserve.github.io/website/docs/concepts/architecture/data-plane/v2-protocol):
    GET  /v2/health/live        200 while the process runs
    GET  /v2/health/ready       200 once the model is loaded, else 503
    GET  /v2                    server metadata
    GET  /v2/models/digits      model metadata
    GET  /v2/models/digits/ready
    POST /v2/models/digits/infer
         {"inputs":[{"name":"input-0","shape":[N,64],"datatype":"FP32","data":[...]}]}
      -> {"model_name":"digits","outputs":[{"name":"output-0","shape":[N],
          "datatype":"INT64","data":[...]}]}

Configuration: --port (default $PORT, else 8080), --model (default
$MODEL_DIR/digits.json), --load-delay seconds to simulate a slow model load
(readiness stays 503 meanwhile; the startup probe covers it). SIGTERM stops
accepting connections and lets in-flight requests finish.
"""

import argparse
import json
import math
import os
import signal
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

_log_lock = threading.Lock()


def log(line, stream=None):
    """Write one whole line: the model loads in a thread while the server
    starts, and print() from two threads can interleave within a line."""
    stream = stream or sys.stdout
    with _log_lock:
        stream.write(line + "\n")
        stream.flush()


MODEL_NAME = "digits"
FEATURES = 64


class Model:
    """A linear classifier loaded from train.py's JSON."""

    def __init__(self, doc):
        W = doc["W"]
        b = doc["b"]
        classes = doc.get("classes") or list(range(len(b)))
        # Accept W as [classes][64] or [64][classes].
        if len(W) == FEATURES and len(W[0]) == len(b) and len(b) != FEATURES:
            W = [list(col) for col in zip(*W)]
        if len(W) != len(b) or any(len(row) != FEATURES for row in W):
            raise ValueError("model W must be %d rows of %d weights" % (len(b), FEATURES))
        self.W = [[float(v) for v in row] for row in W]
        self.b = [float(v) for v in b]
        self.classes = [int(c) for c in classes]
        input_scale = float(doc.get("input_scale", 1.0))
        mean = [float(v) for v in doc.get("mean") or [0.0] * FEATURES]
        std = [float(v) for v in doc.get("std") or [1.0] * FEATURES]
        # x' = (x * input_scale - mean) / std = (x - mean / input_scale) * scale
        self.scale = [input_scale / s if s > 1e-12 else input_scale for s in std]
        self.mean = [m / input_scale for m in mean]
        self.version = str(doc.get("version", "1"))

    def predict(self, row):
        x = [(v - m) * s for v, m, s in zip(row, self.mean, self.scale)]
        best, best_score = 0, -math.inf
        for k, (w, bias) in enumerate(zip(self.W, self.b)):
            score = bias
            for wi, xi in zip(w, x):
                score += wi * xi
            if score > best_score:
                best, best_score = k, score
        return self.classes[best]


class State:
    model = None
    error = None
    in_flight = 0
    idle = threading.Condition()


class tracked:
    """Counts a request as in flight, so SIGTERM can wait for it."""

    def __enter__(self):
        with State.idle:
            State.in_flight += 1

    def __exit__(self, *exc):
        with State.idle:
            State.in_flight -= 1
            State.idle.notify_all()


def load_model(path, delay):
    if delay > 0:
        time.sleep(delay)
    try:
        with open(path) as f:
            State.model = Model(json.load(f))
        log("loaded model %s" % path)
    except (OSError, ValueError, KeyError, TypeError, IndexError) as e:
        State.error = "cannot load model %s: %s; run the training job first (petrel train -f examples/digits/train.yaml)" % (path, e)
        log(State.error, sys.stderr)


def flatten(data):
    out = []
    stack = [data]
    while stack:
        item = stack.pop()
        if isinstance(item, list):
            stack.extend(reversed(item))
        else:
            out.append(float(item))
    return out


class InferError(Exception):
    pass


def infer(req):
    inputs = req.get("inputs")
    if not isinstance(inputs, list) or len(inputs) != 1:
        raise InferError("expected exactly one input tensor in \"inputs\"")
    t = inputs[0]
    shape = t.get("shape")
    if t.get("datatype", "FP32") not in ("FP32", "FP64", "INT32", "INT64"):
        raise InferError("input datatype must be FP32, got %r" % t.get("datatype"))
    if not isinstance(shape, list) or len(shape) != 2 or shape[1] != FEATURES:
        raise InferError("input shape must be [N, %d], got %r" % (FEATURES, shape))
    data = flatten(t.get("data", []))
    n = shape[0]
    if len(data) != n * FEATURES:
        raise InferError("input has %d values; shape %r needs %d" % (len(data), shape, n * FEATURES))
    preds = [State.model.predict(data[i * FEATURES:(i + 1) * FEATURES]) for i in range(n)]
    resp = {
        "model_name": MODEL_NAME,
        "model_version": State.model.version,
        "outputs": [{"name": "output-0", "shape": [n], "datatype": "INT64", "data": preds}],
    }
    if "id" in req:
        resp["id"] = req["id"]
    return resp


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive for the load balancer
    timeout = 30  # seconds an idle keep-alive connection is held

    def log_message(self, fmt, *args):
        pass  # one line per request would drown the replica's log

    def send_json(self, code, obj):
        body = json.dumps(obj).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def not_ready(self):
        self.send_json(503, {"error": State.error or "model %s is loading" % MODEL_NAME})

    def do_GET(self):
        with tracked():
            self.get()

    def do_POST(self):
        with tracked():
            self.post()

    def get(self):
        path = self.path.split("?", 1)[0].rstrip("/")
        if path == "/v2/health/live":
            self.send_json(200, {"live": True})
        elif path in ("/v2/health/ready", "/v2/models/%s/ready" % MODEL_NAME):
            if State.model is None:
                self.not_ready()
            else:
                self.send_json(200, {"ready": True})
        elif path == "/v2":
            self.send_json(200, {"name": "petrel-digits", "version": "1", "extensions": []})
        elif path == "/v2/models/%s" % MODEL_NAME:
            self.send_json(200, {
                "name": MODEL_NAME,
                "versions": [State.model.version] if State.model else [],
                "platform": "python-linear",
                "inputs": [{"name": "input-0", "datatype": "FP32", "shape": [-1, FEATURES]}],
                "outputs": [{"name": "output-0", "datatype": "INT64", "shape": [-1]}],
            })
        else:
            self.send_json(404, {"error": "no route %s" % path})

    def post(self):
        path = self.path.split("?", 1)[0].rstrip("/")
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        if path != "/v2/models/%s/infer" % MODEL_NAME:
            self.send_json(404, {"error": "no route %s; POST /v2/models/%s/infer" % (path, MODEL_NAME)})
            return
        if State.model is None:
            self.not_ready()
            return
        try:
            self.send_json(200, infer(json.loads(body or b"{}")))
        except (InferError, ValueError, TypeError, AttributeError) as e:
            self.send_json(400, {"error": str(e)})


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--port", type=int, default=int(os.environ.get("PORT", "8080")))
    p.add_argument("--host", default=os.environ.get("HOST", "0.0.0.0"))
    p.add_argument("--model", default=os.path.join(os.environ.get("MODEL_DIR", "."), "digits.json"))
    p.add_argument("--load-delay", type=float, default=0.0)
    args = p.parse_args()

    server = ThreadingHTTPServer((args.host, args.port), Handler)
    server.daemon_threads = True
    loader = threading.Thread(target=load_model, args=(args.model, args.load_delay), daemon=True)
    loader.start()

    def stop(signum, frame):
        # shutdown() waits for serve_forever, so call it from another thread.
        threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, stop)
    log("serving %s on %s:%d" % (MODEL_NAME, args.host, args.port))
    server.serve_forever()
    # No new connections are accepted; let requests in flight finish.
    with State.idle:
        State.idle.wait_for(lambda: State.in_flight == 0, timeout=60)
    server.server_close()


if __name__ == "__main__":
    main()
