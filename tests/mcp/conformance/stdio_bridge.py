"""A stdio-to-streamable-HTTP bridge, so that a stdio-only MCP client can face the conformance suite.

The suite gives the client under test a streamable HTTP URL. A client that
speaks stdio alone (airlock's, for now) runs this bridge as its "server":

    python stdio_bridge.py URL

Each JSON-RPC message read from stdin (one a line) is POSTed to URL; the
answer (application/json, or the data of each text/event-stream event) is
written to stdout, one message a line. The session id the server hands out
(Mcp-Session-Id) and the negotiated protocol version go on every later request.
Messages go one at a time, in order; server-initiated requests on a GET stream
(sampling, elicitation, roots) are not carried, so scenarios that need them
cannot pass through it. Standard library only.
"""

import json
import sys
import urllib.error
import urllib.request


def sse_data(body: str):
    """The data of each event of a text/event-stream body."""
    data = []
    for line in body.splitlines() + [""]:
        if line.startswith("data:"):
            data.append(line[5:].lstrip(" "))
        elif line == "" and data:
            yield "\n".join(data)
            data = []


def main() -> None:
    if len(sys.argv) != 2:
        sys.exit("usage: stdio_bridge.py URL")
    url = sys.argv[1]
    session = None
    version = None
    for line in sys.stdin:
        line = line.strip()
        if not line:
            continue
        message = json.loads(line)
        headers = {"Content-Type": "application/json", "Accept": "application/json, text/event-stream"}
        if session:
            headers["Mcp-Session-Id"] = session
        if version:
            headers["MCP-Protocol-Version"] = version
        request = urllib.request.Request(url, data=line.encode(), headers=headers, method="POST")
        try:
            with urllib.request.urlopen(request, timeout=60) as response:
                session = response.headers.get("Mcp-Session-Id") or session
                kind = response.headers.get("Content-Type", "")
                body = response.read().decode()
        except urllib.error.HTTPError as e:
            body, kind = e.read().decode(), e.headers.get("Content-Type", "")
            print(f"stdio_bridge: HTTP {e.code} for {message.get('method')}: {body[:200]}", file=sys.stderr)
            if "id" in message and "json" not in kind:
                err = {"jsonrpc": "2.0", "id": message["id"], "error": {"code": -32603, "message": f"HTTP {e.code}"}}
                body, kind = json.dumps(err), "application/json"
        replies = list(sse_data(body)) if "text/event-stream" in kind else ([body] if body.strip() else [])
        for reply in replies:
            parsed = json.loads(reply)
            if message.get("method") == "initialize" and isinstance(parsed, dict) and "result" in parsed:
                version = parsed["result"].get("protocolVersion")
            sys.stdout.write(json.dumps(parsed) + "\n")
            sys.stdout.flush()


if __name__ == "__main__":
    main()
