#!/usr/bin/env python3
"""The official `openai` and `anthropic` Python SDKs against `airlock gateway`.

Run by tests/gateway-sdk/run (which starts upstream.py and the gateway and sets):
  GATEWAY_URL    http://127.0.0.1:PORT
  GATEWAY_KEY    a live alk_ key
  UPSTREAM_LOG   the JSONL file upstream.py appends every request to
  UPSTREAM_KEY   the credential the gateway sends upstream
  AIRLOCK_BIN, AUDIT_DIR   for `airlock audit --dir AUDIT_DIR show --json`

Prints one line per check and closes with `N passed, N failed`.
"""
import json
import os
import secrets
import subprocess
import sys
import time
import traceback
import warnings
import zlib

import anthropic
import openai

URL = os.environ["GATEWAY_URL"]
KEY = os.environ["GATEWAY_KEY"]
LOG = os.environ["UPSTREAM_LOG"]
UPSTREAM_KEY = os.environ["UPSTREAM_KEY"]
AIRLOCK = os.environ["AIRLOCK_BIN"]
AUDIT_DIR = os.environ["AUDIT_DIR"]
REPLY = "Hello from the upstream."
OPENAI_MODEL = "gpt-4o-mini"
EMBED_MODEL = "text-embedding-3-small"
CLAUDE_MODEL = "claude-sonnet-4-5"

warnings.filterwarnings("ignore", category=DeprecationWarning)  # model end-of-life notices
oa = openai.OpenAI(base_url=URL + "/v1", api_key=KEY, max_retries=0, timeout=30)
an = anthropic.Anthropic(base_url=URL, api_key=KEY, max_retries=0, timeout=30)


# --- planted secrets: fake, but well-formed (checksums right) -------------

def aws_key_id():
    return "AKIA" + "".join(secrets.choice("ABCDEFGHIJKLMNOPQRSTUVWXYZ234567") for _ in range(16))


def github_classic():
    alnum = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
    random = "".join(secrets.choice(alnum) for _ in range(30))
    crc, tail = zlib.crc32(random.encode()), ""
    for _ in range(6):
        tail = alnum[crc % 62] + tail
        crc //= 62
    return "ghp_" + random + tail


def pem_key():
    b64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
    lines = ["".join(secrets.choice(b64) for _ in range(64)) for _ in range(4)]
    return "-----BEGIN RSA PRIVATE KEY-----\n" + "\n".join(lines) + "\n-----END RSA PRIVATE KEY-----"


PLANTED = []  # every secret planted anywhere, for the final sweeps


def plant():
    s = {"aws": aws_key_id(), "github": github_classic(), "pem": pem_key()}
    PLANTED.extend(s.values())
    return s


# --- helpers ---------------------------------------------------------------

def upstream_records():
    if not os.path.exists(LOG):
        return []
    with open(LOG) as f:
        return [json.loads(line) for line in f if line.strip()]


class Seen:
    """What the upstream received while the block ran."""

    def __enter__(self):
        self.start = len(upstream_records())
        return self

    def __exit__(self, *exc):
        self.records = upstream_records()[self.start:]
        return False

    def one(self, path):
        hits = [r for r in self.records if r["path"].split("?")[0] == path]
        assert len(hits) == 1, f"expected one upstream request to {path}, got {[r['path'] for r in self.records]}"
        return hits[0]


def header(rec, name):
    for k, v in rec["headers"].items():
        if k.lower() == name:
            return v
    return None


def assert_scrubbed(rec, planted, min_placeholders):
    body = rec["body"]
    for kind, secret in planted.items():
        escaped = json.dumps(secret)[1:-1]
        assert secret not in body and escaped not in body, f"the {kind} secret reached the upstream: {body[:400]}"
        # not even the distinctive middle of it
        core = secret.splitlines()[1] if kind == "pem" else secret[4:]
        assert core not in body, f"part of the {kind} secret reached the upstream"
    n = body.count("«secret:")
    assert n >= min_placeholders, f"{n} «secret: placeholders upstream, expected >= {min_placeholders}: {body[:600]}"
    json.loads(body)  # still valid JSON


def assert_openai_auth(rec):
    assert header(rec, "authorization") == f"Bearer {UPSTREAM_KEY}", rec["headers"]


def assert_anthropic_auth(rec):
    assert header(rec, "x-api-key") == UPSTREAM_KEY, rec["headers"]
    assert header(rec, "authorization") is None, rec["headers"]


# --- OpenAI SDK ------------------------------------------------------------

def test_openai_chat():
    s = plant()
    with Seen() as seen:
        r = oa.chat.completions.create(model=OPENAI_MODEL, messages=[
            {"role": "system", "content": f"You deploy with AWS key {s['aws']}."},
            {"role": "user", "content": f"my token is {s['github']} and my key:\n{s['pem']}\nsummarize"}])
    assert r.choices[0].message.content == REPLY, r
    assert r.usage and r.usage.total_tokens > 0, r.usage
    rec = seen.one("/v1/chat/completions")
    assert_scrubbed(rec, s, 3)
    assert_openai_auth(rec)
    body = json.loads(rec["body"])
    assert body["model"] == OPENAI_MODEL and body["messages"][0]["role"] == "system"


def test_openai_chat_stream():
    s = plant()
    with Seen() as seen:
        stream = oa.chat.completions.create(
            model=OPENAI_MODEL, stream=True, stream_options={"include_usage": True},
            messages=[{"role": "user", "content": f"{s['aws']} {s['github']}\n{s['pem']}"}])
        text, usage, chunks = "", None, 0
        for chunk in stream:
            chunks += 1
            if chunk.choices and chunk.choices[0].delta.content:
                text += chunk.choices[0].delta.content
            if chunk.usage:
                usage = chunk.usage
    assert text == REPLY, text
    assert chunks >= 4, chunks
    assert usage and usage.completion_tokens == 5, usage
    rec = seen.one("/v1/chat/completions")
    assert_scrubbed(rec, s, 3)
    assert json.loads(rec["body"])["stream"] is True


def test_openai_embeddings():
    s = plant()
    with Seen() as seen:
        r = oa.embeddings.create(model=EMBED_MODEL, input=["plain text", f"key {s['aws']} token {s['github']}"])
    assert len(r.data) == 2 and abs(r.data[0].embedding[0] - 0.25) < 1e-6, r.data[0].embedding[:3]
    rec = seen.one("/v1/embeddings")
    assert_scrubbed(rec, {"aws": s["aws"], "github": s["github"]}, 2)
    assert_openai_auth(rec)


def test_openai_tool_call_round_trip():
    s = plant()
    tools = [{"type": "function", "function": {
        "name": "read_file",
        "description": f"Reads a file of the repository. (ops note: deploy key id {s['aws']})",
        "parameters": {"type": "object", "properties": {"path": {"type": "string"}}, "required": ["path"]}}}]
    messages = [{"role": "user", "content": "what is in config/.env?"}]
    with Seen() as seen1:
        r1 = oa.chat.completions.create(model=OPENAI_MODEL, messages=messages, tools=tools)
    call = r1.choices[0].message.tool_calls[0]
    assert r1.choices[0].finish_reason == "tool_calls" and call.function.name == "read_file", r1
    assert json.loads(call.function.arguments) == {"path": "config/.env"}
    first = seen1.one("/v1/chat/completions")
    assert s["aws"] not in first["body"] and "«secret:" in first["body"], first["body"][:400]
    assert json.loads(first["body"])["tools"][0]["function"]["name"] == "read_file"
    messages.append(r1.choices[0].message.model_dump(exclude_none=True))
    messages.append({"role": "tool", "tool_call_id": call.id,
                     "content": f"AWS_ACCESS_KEY_ID={s['aws']}\nGITHUB_TOKEN={s['github']}\nDEPLOY_KEY=\"{s['pem']}\"\n"})
    with Seen() as seen2:
        r2 = oa.chat.completions.create(model=OPENAI_MODEL, messages=messages, tools=tools)
    assert r2.choices[0].message.content == REPLY, r2
    rec = seen2.one("/v1/chat/completions")
    assert_scrubbed(rec, s, 4)  # tool description + three in the tool result
    sent = json.loads(rec["body"])["messages"]
    assert sent[-1]["role"] == "tool" and sent[-1]["tool_call_id"] == "call_mock1", sent[-1]
    assert sent[1]["tool_calls"][0]["id"] == "call_mock1", sent[1]


def test_openai_responses():
    if not hasattr(oa, "responses"):
        raise Skip("this openai SDK has no Responses API")
    s = plant()
    with Seen() as seen:
        r = oa.responses.create(model=OPENAI_MODEL, instructions=f"AWS key id: {s['aws']}",
                                input=f"token {s['github']}\n{s['pem']}")
    assert r.output_text == REPLY, r
    rec = seen.one("/v1/responses")
    assert_scrubbed(rec, s, 3)
    assert_openai_auth(rec)
    with Seen() as seen:
        stream = oa.responses.create(model=OPENAI_MODEL, input=f"again {s['aws']}", stream=True)
        deltas = [e.delta for e in stream if e.type == "response.output_text.delta"]
    assert "".join(deltas) == REPLY, deltas
    assert_scrubbed(seen.one("/v1/responses"), {"aws": s["aws"]}, 1)


def test_openai_bad_key_and_unserved_model():
    bad = openai.OpenAI(base_url=URL + "/v1", api_key="alk_" + "0" * 40, max_retries=0)
    with Seen() as seen:
        try:
            bad.chat.completions.create(model=OPENAI_MODEL, messages=[{"role": "user", "content": "hi"}])
            raise AssertionError("an invalid key was accepted")
        except openai.AuthenticationError as e:
            assert e.status_code == 401
        try:
            oa.chat.completions.create(model="not-a-served-model", messages=[{"role": "user", "content": "hi"}])
            raise AssertionError("a model no upstream serves was accepted")
        except openai.PermissionDeniedError as e:
            assert e.status_code == 403 and "not-a-served-model" in str(e), e
    assert seen.records == [], "refused requests reached the upstream"


# --- Anthropic SDK ---------------------------------------------------------

def anthropic_request(s):
    return dict(
        model=CLAUDE_MODEL, max_tokens=64,
        system=f"Deploy with AWS key {s['aws']}.",
        tools=[{"name": "deploy", "description": f"Deploys. Uses token {s['github']}",
                "input_schema": {"type": "object", "properties": {}}}],
        messages=[
            {"role": "user", "content": "read the key file"},
            {"role": "assistant", "content": [{"type": "tool_use", "id": "toolu_01", "name": "deploy", "input": {}}]},
            {"role": "user", "content": [
                {"type": "tool_result", "tool_use_id": "toolu_01", "content": s["pem"]},
                {"type": "text", "text": f"and the token again: {s['github']}"}]}])


def test_anthropic_messages():
    s = plant()
    with Seen() as seen:
        r = an.messages.create(**anthropic_request(s))
    assert r.content[0].text == REPLY and r.stop_reason == "end_turn", r
    assert r.usage.output_tokens == 5
    rec = seen.one("/v1/messages")
    assert_scrubbed(rec, s, 4)
    assert_anthropic_auth(rec)
    assert header(rec, "anthropic-version") == an.default_headers["anthropic-version"], rec["headers"]
    body = json.loads(rec["body"])
    assert body["messages"][2]["content"][0]["tool_use_id"] == "toolu_01"


def test_anthropic_stream():
    s = plant()
    with Seen() as seen:
        with an.messages.stream(**anthropic_request(s)) as stream:
            text = "".join(stream.text_stream)
            final = stream.get_final_message()
    assert text == REPLY, text
    assert final.stop_reason == "end_turn" and final.usage.output_tokens == 5, final
    rec = seen.one("/v1/messages")
    assert_scrubbed(rec, s, 4)
    assert json.loads(rec["body"])["stream"] is True


def test_anthropic_count_tokens_and_beta_header():
    s = plant()
    beta = "prompt-caching-2024-07-31,token-efficient-tools-2025-02-19"
    with Seen() as seen:
        r = an.messages.count_tokens(model=CLAUDE_MODEL, system=f"key {s['aws']}",
                                     messages=[{"role": "user", "content": f"{s['github']}\n{s['pem']}"}],
                                     extra_headers={"anthropic-beta": beta})
    assert r.input_tokens > 0, r
    rec = seen.one("/v1/messages/count_tokens")
    assert_scrubbed(rec, s, 3)
    assert_anthropic_auth(rec)
    assert header(rec, "anthropic-beta") == beta, rec["headers"]
    with Seen() as seen:
        an.messages.create(model=CLAUDE_MODEL, max_tokens=8, messages=[{"role": "user", "content": "hi"}],
                           extra_headers={"anthropic-beta": beta})
    assert header(seen.one("/v1/messages"), "anthropic-beta") == beta


def test_anthropic_bad_key_and_unserved_model():
    bad = anthropic.Anthropic(base_url=URL, api_key="alk_" + "1" * 40, max_retries=0)
    with Seen() as seen:
        try:
            bad.messages.create(model=CLAUDE_MODEL, max_tokens=8, messages=[{"role": "user", "content": "hi"}])
            raise AssertionError("an invalid key was accepted")
        except anthropic.AuthenticationError as e:
            assert e.status_code == 401
        try:
            an.messages.create(model="gpt-4o-mini-but-anthropic", max_tokens=8,
                               messages=[{"role": "user", "content": "hi"}])
            raise AssertionError("a model no upstream serves was accepted")
        except anthropic.PermissionDeniedError as e:
            assert e.status_code == 403, e
    assert seen.records == [], "refused requests reached the upstream"


# --- sweeps over everything ------------------------------------------------

def test_upstream_never_saw_client_keys_or_secrets():
    recs = upstream_records()
    assert len(recs) >= 12, len(recs)
    for rec in recs:
        text = json.dumps(rec, ensure_ascii=False)
        assert "alk_" not in text, f"the upstream saw a gateway key: {rec['path']} {rec['headers']}"
        for secret in PLANTED:
            assert secret not in text and json.dumps(secret)[1:-1] not in text, f"a secret reached {rec['path']}"


def audit_entries():
    out = subprocess.run([AIRLOCK, "audit", "--dir", AUDIT_DIR, "show", "--json"],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    return [json.loads(line) for line in out.stdout.splitlines() if line.strip()]


def test_audit_log_records_requests_before_responses():
    # The gateway appends a response's entry once the answer is complete; give it a moment.
    deadline = time.time() + 10
    while True:
        entries = audit_entries()
        reqs = [e for e in entries if e["kind"] == "model_request"]
        resps = [e for e in entries if e["kind"] == "model_response"]
        if len(resps) >= len(reqs) or time.time() > deadline:
            break
        time.sleep(0.2)
    sent = [r for r in upstream_records() if r["method"] == "POST"]  # not run's readiness probe
    assert len(reqs) == len(sent) >= 10, f"{len(reqs)} model_request entries, {len(sent)} upstream requests"
    assert len(resps) == len(reqs), f"{len(reqs)} requests, {len(resps)} responses"
    assert {e["session"] for e in reqs} == {"gateway:sdk-tests"}, {e["session"] for e in reqs}
    # what was recorded is what left: the digests match the bodies the upstream received
    import hashlib
    digests = sorted(e["payload"]["content_digest"] for e in reqs)
    assert digests == sorted(hashlib.sha256(r["body"].encode()).hexdigest() for r in sent), "digests differ"
    open_requests = {}
    for e in sorted(entries, key=lambda e: e["index"]):
        if e["kind"] == "model_request":
            open_requests[e["session"]] = open_requests.get(e["session"], 0) + 1
        elif e["kind"] == "model_response":
            assert open_requests.get(e["session"], 0) > 0, f"model_response #{e['index']} without a request before it"
            open_requests[e["session"]] -= 1
            assert e["payload"]["status"] == 200, e
    routes = {e["payload"]["route"] for e in reqs}
    want = {"openai.chat", "openai.embeddings", "anthropic.messages", "anthropic.count_tokens"}
    if hasattr(oa, "responses"):
        want.add("openai.responses")
    assert want <= routes, routes
    notes = [n for e in reqs for n in e["payload"]["redactions"]]
    rules = {n["rule"] for n in notes}
    assert {"aws-access-key-id", "github-pat", "private-key"} <= rules, rules
    assert len(notes) >= 2 * len(PLANTED) // 3, f"{len(notes)} redactions for {len(PLANTED)} planted secrets"
    blocked = [e for e in entries if e["kind"] == "blocked_egress"]
    assert len(blocked) >= 2, [e["kind"] for e in entries]
    text = json.dumps(entries)
    for secret in PLANTED:
        assert secret not in text and json.dumps(secret)[1:-1] not in text, "the audit log holds a secret"
    assert KEY not in text, "the audit log holds the client's key"


class Skip(Exception):
    pass


TESTS = [v for k, v in list(globals().items()) if k.startswith("test_")]

if __name__ == "__main__":
    print(f"openai {openai.__version__}, anthropic {anthropic.__version__}", flush=True)
    passed = failed = skipped = 0
    for t in TESTS:
        start = time.time()
        try:
            t()
            passed += 1
            print(f"ok    {t.__name__} ({(time.time() - start) * 1000:.0f} ms)", flush=True)
        except Skip as e:
            skipped += 1
            print(f"SKIP: {t.__name__}: {e}", flush=True)
        except Exception:
            failed += 1
            print(f"FAIL  {t.__name__}", flush=True)
            traceback.print_exc()
    print(f"{passed} passed, {failed} failed" + (f", {skipped} skipped" if skipped else ""))
    sys.exit(1 if failed else 0)
