#!/usr/bin/env python3
"""A small OTLP/HTTP receiver (protobuf) built on the official
`opentelemetry-proto` messages: it decodes every export sent to /v1/traces
and /v1/metrics, answers as a collector does, and keeps each one as a JSON
line (its path, the raw body in hex, and the decoded message) in the file
named by --out, so that a test can check both what was decoded and every
byte that was sent.

usage: receiver.py --out FILE [--port-file FILE]
    listens on 127.0.0.1 (a free port, written to --port-file); a body that
    does not decode as the path's message gets 400 and an "error" line.
"""

import argparse
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from google.protobuf import json_format
from opentelemetry.proto.collector.metrics.v1 import metrics_service_pb2
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2

MESSAGES = {
    "/v1/traces": (trace_service_pb2.ExportTraceServiceRequest, trace_service_pb2.ExportTraceServiceResponse),
    "/v1/metrics": (metrics_service_pb2.ExportMetricsServiceRequest, metrics_service_pb2.ExportMetricsServiceResponse),
}

LOCK = threading.Lock()


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", required=True)
    parser.add_argument("--port-file")
    args = parser.parse_args()

    def keep(record):
        with LOCK, open(args.out, "a", encoding="utf-8") as f:
            f.write(json.dumps(record) + "\n")

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            length = int(self.headers.get("content-length") or 0)
            body = self.rfile.read(length)
            kinds = MESSAGES.get(self.path)
            if kinds is None:
                keep({"path": self.path, "error": "unknown path", "raw": body.hex()})
                self.send_response(404)
                self.end_headers()
                return
            request, response = kinds
            message = request()
            try:
                message.ParseFromString(body)
            except Exception as e:  # a body that is not the message: the test fails on it
                keep({"path": self.path, "error": str(e), "raw": body.hex()})
                self.send_response(400)
                self.end_headers()
                return
            keep(
                {
                    "path": self.path,
                    "content_type": self.headers.get("content-type"),
                    "raw": body.hex(),
                    "message": json_format.MessageToDict(message),
                }
            )
            answer = response().SerializeToString()
            self.send_response(200)
            self.send_header("content-type", "application/x-protobuf")
            self.send_header("content-length", str(len(answer)))
            self.end_headers()
            self.wfile.write(answer)

        def log_message(self, *_):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    if args.port_file:
        with open(args.port_file + ".tmp", "w", encoding="utf-8") as f:
            f.write(str(server.server_address[1]))
        import os

        os.replace(args.port_file + ".tmp", args.port_file)
    server.serve_forever()


if __name__ == "__main__":
    main()
