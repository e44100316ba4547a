#!/usr/bin/env python3
"""A scripted model upstream for the gateway's real-client tests (stdlib only).

usage: upstream.py PORT LOG

HTTP/1.1 (keep-alive; streams are sent chunked, one SSE event per chunk) on
127.0.0.1:PORT. Every request is appended to LOG as one JSON line:
{"seq", "method", "path", "headers", "body"} -- headers in full, credentials
included, so a test can check which key reached the upstream.

Answers:
  POST /v1/chat/completions  OpenAI chat, stream or not, with usage; offered
                             tools and no tool result yet -> a tool call
  POST /v1/embeddings        float or base64 vectors
  POST /v1/responses         OpenAI Responses, stream or not
  POST /v1/messages          Anthropic Messages, stream (message_start, ping,
                             content_block_start/delta/stop, message_delta,
                             message_stop) or not
  POST /v1/messages/count_tokens  {"input_tokens": N}
  GET  /v1/models, HEAD/GET anything else: small harmless answers
"""
import base64
import json
import struct
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

PORT = int(sys.argv[1])
LOG = sys.argv[2]
_lock = threading.Lock()
_seq = [0]
REPLY = "Hello from the upstream."


def record(rec):
    with _lock:
        _seq[0] += 1
        rec["seq"] = _seq[0]
        rec["t"] = time.time()
        with open(LOG, "a") as f:
            f.write(json.dumps(rec) + "\n")


def tokens(req):
    return max(1, len(json.dumps(req)) // 4)


def wants_tool_call(req, tool_result_seen):
    return bool(req.get("tools")) and not tool_result_seen


# --- OpenAI chat ---------------------------------------------------------

def chat(req):
    msgs = req.get("messages") or []
    tool_seen = any(m.get("role") == "tool" for m in msgs if isinstance(m, dict))
    model = req.get("model", "mock")
    now = int(time.time())
    usage = {"prompt_tokens": tokens(req), "completion_tokens": 5, "total_tokens": tokens(req) + 5}
    if wants_tool_call(req, tool_seen):
        name = req["tools"][0].get("function", {}).get("name", "tool")
        call = {"id": "call_mock1", "type": "function",
                "function": {"name": name, "arguments": json.dumps({"path": "config/.env"})}}
        if not req.get("stream"):
            return "json", {"id": "chatcmpl-mock1", "object": "chat.completion", "created": now, "model": model,
                            "choices": [{"index": 0, "message": {"role": "assistant", "content": None,
                                                                 "tool_calls": [call]},
                                         "finish_reason": "tool_calls", "logprobs": None}],
                            "usage": usage}
        base = {"id": "chatcmpl-mock1", "object": "chat.completion.chunk", "created": now, "model": model}
        chunks = [dict(base, choices=[{"index": 0, "delta": {"role": "assistant", "tool_calls": [
                      dict(call, index=0)]}, "finish_reason": None}]),
                  dict(base, choices=[{"index": 0, "delta": {}, "finish_reason": "tool_calls"}])]
        return "sse", [(None, c) for c in chunks] + [(None, "[DONE]")]
    if not req.get("stream"):
        return "json", {"id": "chatcmpl-mock", "object": "chat.completion", "created": now, "model": model,
                        "choices": [{"index": 0, "message": {"role": "assistant", "content": REPLY},
                                     "finish_reason": "stop", "logprobs": None}],
                        "usage": usage}
    base = {"id": "chatcmpl-mock", "object": "chat.completion.chunk", "created": now, "model": model}
    chunks = [dict(base, choices=[{"index": 0, "delta": {"role": "assistant", "content": ""}, "finish_reason": None}])]
    for piece in ("Hello", " from", " the upstream."):
        chunks.append(dict(base, choices=[{"index": 0, "delta": {"content": piece}, "finish_reason": None}]))
    chunks.append(dict(base, choices=[{"index": 0, "delta": {}, "finish_reason": "stop"}]))
    if (req.get("stream_options") or {}).get("include_usage"):
        chunks.append(dict(base, choices=[], usage=usage))
    return "sse", [(None, c) for c in chunks] + [(None, "[DONE]")]


def embeddings(req):
    inputs = req.get("input")
    if isinstance(inputs, str) or (isinstance(inputs, list) and inputs and isinstance(inputs[0], int)):
        inputs = [inputs]
    data = []
    for i, _ in enumerate(inputs or []):
        vec = [0.25 * (i + 1), -0.5, 0.125]
        emb = base64.b64encode(struct.pack("<%df" % len(vec), *vec)).decode() \
            if req.get("encoding_format") == "base64" else vec
        data.append({"object": "embedding", "index": i, "embedding": emb})
    return "json", {"object": "list", "data": data, "model": req.get("model"),
                    "usage": {"prompt_tokens": tokens(req), "total_tokens": tokens(req)}}


# --- OpenAI Responses ----------------------------------------------------

def responses(req):
    now = int(time.time())
    item = {"id": "msg_mock1", "type": "message", "status": "completed", "role": "assistant",
            "content": [{"type": "output_text", "text": REPLY, "annotations": []}]}
    usage = {"input_tokens": tokens(req), "input_tokens_details": {"cached_tokens": 0}, "output_tokens": 5,
             "output_tokens_details": {"reasoning_tokens": 0}, "total_tokens": tokens(req) + 5}
    resp = {"id": "resp_mock1", "object": "response", "created_at": now, "status": "in_progress",
            "model": req.get("model"), "output": [], "usage": None, "parallel_tool_calls": True,
            "tool_choice": "auto", "tools": []}
    done = dict(resp, status="completed", output=[item], usage=usage)
    if not req.get("stream"):
        return "json", done
    ev = [{"type": "response.created", "response": resp},
          {"type": "response.in_progress", "response": resp},
          {"type": "response.output_item.added", "output_index": 0, "item": dict(item, status="in_progress", content=[])},
          {"type": "response.content_part.added", "item_id": "msg_mock1", "output_index": 0, "content_index": 0,
           "part": {"type": "output_text", "text": "", "annotations": []}},
          {"type": "response.output_text.delta", "item_id": "msg_mock1", "output_index": 0, "content_index": 0,
           "delta": REPLY},
          {"type": "response.output_text.done", "item_id": "msg_mock1", "output_index": 0, "content_index": 0,
           "text": REPLY},
          {"type": "response.content_part.done", "item_id": "msg_mock1", "output_index": 0, "content_index": 0,
           "part": item["content"][0]},
          {"type": "response.output_item.done", "output_index": 0, "item": item},
          {"type": "response.completed", "response": done}]
    for i, e in enumerate(ev):
        e["sequence_number"] = i
    return "sse", [(e["type"], e) for e in ev]


# --- Anthropic Messages --------------------------------------------------

def messages(req):
    model = req.get("model", "claude-mock")
    usage = {"input_tokens": tokens(req), "output_tokens": 0,
             "cache_creation_input_tokens": 0, "cache_read_input_tokens": 0}
    msg = {"id": "msg_01MockUpstream", "type": "message", "role": "assistant", "model": model,
           "content": [], "stop_reason": None, "stop_sequence": None, "usage": usage}
    if not req.get("stream"):
        return "json", dict(msg, content=[{"type": "text", "text": REPLY}], stop_reason="end_turn",
                            usage=dict(usage, output_tokens=5))
    ev = [{"type": "message_start", "message": dict(msg, usage=dict(usage, output_tokens=1))},
          {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}},
          {"type": "ping"}]
    for piece in ("Hello", " from", " the upstream."):
        ev.append({"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": piece}})
    ev += [{"type": "content_block_stop", "index": 0},
           {"type": "message_delta", "delta": {"stop_reason": "end_turn", "stop_sequence": None},
            "usage": {"output_tokens": 5}},
           {"type": "message_stop"}]
    return "sse", [(e["type"], e) for e in ev]


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *a):
        pass

    def send_json(self, obj, status=200):
        out = json.dumps(obj).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(out)))
        self.send_header("request-id", "req_mock")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(out)

    def send_sse(self, events):
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream; charset=utf-8")
        self.send_header("Cache-Control", "no-cache")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        for name, data in events:
            text = (f"event: {name}\n" if name else "") + "data: " + (
                data if isinstance(data, str) else json.dumps(data)) + "\n\n"
            raw = text.encode()
            self.wfile.write(b"%x\r\n%s\r\n" % (len(raw), raw))
            self.wfile.flush()
        self.wfile.write(b"0\r\n\r\n")
        self.wfile.flush()

    def handle_any(self):
        n = int(self.headers.get("content-length") or 0)
        raw = self.rfile.read(n) if n else b""
        record({"method": self.command, "path": self.path, "headers": dict(self.headers.items()),
                "body": raw.decode("utf-8", "replace")})
        try:
            req = json.loads(raw) if raw else {}
        except ValueError:
            return self.send_json({"error": {"message": "not JSON"}}, 400)
        p = self.path.split("?")[0]
        routes = {"/v1/chat/completions": chat, "/v1/embeddings": embeddings, "/v1/responses": responses,
                  "/v1/messages": messages}
        if self.command == "POST" and p == "/v1/messages/count_tokens":
            return self.send_json({"input_tokens": tokens(req)})
        if self.command == "POST" and p in routes:
            kind, out = routes[p](req)
            return self.send_json(out) if kind == "json" else self.send_sse(out)
        if p == "/v1/models":
            return self.send_json({"object": "list", "data": [
                {"id": "gpt-4o-mini", "object": "model", "created": 0, "owned_by": "mock"}]})
        return self.send_json({})

    do_GET = do_POST = do_HEAD = do_PUT = do_DELETE = do_PATCH = handle_any


if __name__ == "__main__":
    server = ThreadingHTTPServer(("127.0.0.1", PORT), Handler)
    server.daemon_threads = True
    print(f"upstream listening on 127.0.0.1:{PORT}", flush=True)
    server.serve_forever()
