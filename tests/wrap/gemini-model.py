#!/usr/bin/env python3
"""A scripted model that speaks the Gemini API (generativelanguage.googleapis.com),
for running Gemini CLI bare against a script of the same format as scripted-model's
(`text`, `calls`, `expect_contains`): scripted-model and airlock's broker speak the
OpenAI and Anthropic APIs only.

  POST /v1beta/models/MODEL:streamGenerateContent?alt=sse   one SSE event per turn
  POST /v1beta/models/MODEL:generateContent                 the same, as one JSON object
  POST /v1beta/models/MODEL:countTokens                     {"totalTokens": 10}, no turn taken

Each model request is one JSON line in LOG (its body, with "path" and "headers"
added); a turn's unmet expectation or the script running out is a
{"violation": ...} line, any other route a {"route": ...} line.

usage: gemini-model.py --script FILE --log FILE --port N
"""
import argparse
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

ap = argparse.ArgumentParser()
ap.add_argument("--script", required=True)
ap.add_argument("--log", required=True)
ap.add_argument("--port", type=int, required=True)
args = ap.parse_args()
SCRIPT = json.load(open(args.script))
LOCK = threading.Lock()
NEXT = [0]


def log(record):
    with LOCK, open(args.log, "a") as f:
        f.write(json.dumps(record) + "\n")


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def answer(self, status, body, kind="application/json"):
        self.send_response(status)
        self.send_header("content-type", kind)
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        log({"route": f"GET {self.path}"})
        self.answer(404, b"{}")

    def do_POST(self):
        raw = self.rfile.read(int(self.headers.get("content-length", 0)))
        if ":countTokens" in self.path:
            log({"route": f"POST {self.path}"})
            return self.answer(200, json.dumps({"totalTokens": 10}).encode())
        if ":generateContent" not in self.path and ":streamGenerateContent" not in self.path:
            log({"route": f"POST {self.path}"})
            return self.answer(404, b"{}")
        try:
            body = json.loads(raw)
        except ValueError:
            body = {"unparsed": raw.decode("utf-8", "replace")}
        body["path"], body["headers"] = self.path, dict(self.headers.items())
        log(body)
        with LOCK:
            i = NEXT[0]
            NEXT[0] += 1
        if i >= len(SCRIPT):
            log({"violation": f"request {i}: the script has no turn left"})
            turn = {"text": "(script exhausted)"}
        else:
            turn = SCRIPT[i]
        text = json.dumps(body)
        for needle in turn.get("expect_contains", []):
            if needle not in text:
                log({"violation": f"request {i}, turn {i}: expected it to contain {needle!r}"})
        parts = [{"text": turn["text"]}] if turn.get("text") else []
        parts += [{"functionCall": {"name": c["name"], "args": c["arguments"]}} for c in turn.get("calls", [])]
        reply = {"candidates": [{"content": {"role": "model", "parts": parts}, "finishReason": "STOP", "index": 0}],
                 "usageMetadata": {"promptTokenCount": 10, "candidatesTokenCount": 5, "totalTokenCount": 15}}
        if "alt=sse" in self.path:
            self.answer(200, b"data: " + json.dumps(reply).encode() + b"\r\n\r\n", "text/event-stream")
        else:
            self.answer(200, json.dumps(reply).encode())

    def log_message(self, *_):
        pass


ThreadingHTTPServer(("127.0.0.1", args.port), Handler).serve_forever()
