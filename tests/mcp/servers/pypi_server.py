"""An MCP server on the official Python SDK (PyPI `mcp`, its MCPServer, formerly FastMCP).

A test fixture for airlock's MCP client, written to show what a server can see
and do from where it runs:

  echo        (readOnlyHint) returns its text;
  env         the server's environment as JSON;
  read_path   reads a file by absolute path: its content, or the error;
  write_path  writes a file: "ok", or the error;
  fetch       resolves HOST and connects to HOST:PORT: what happened, step by step;
  secret      a text holding planted fake credentials that airlock's redaction
              rules match (a GitHub token with a valid CRC32 checksum, an AWS
              key pair): a result that must reach the model redacted;
  note://readme  a resource;  review(path)  a prompt with an argument.

Runs over stdio by default; `--http HOST:PORT` serves streamable HTTP instead
(path /mcp). Run it only inside `airlock sandbox` or `unshare -rn`.

usage: python pypi_server.py [--http HOST:PORT]
"""

import json
import os
import socket
import sys
import zlib

from mcp.server.mcpserver import MCPServer
from mcp.types import ToolAnnotations

_BASE62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"


def github_token(prefix: str, body: str) -> str:
    """A classic GitHub token: 30 alphanumerics and the base62 CRC32 of them (6 characters)."""
    assert len(body) == 30 and body.isalnum(), body
    crc = zlib.crc32(body.encode())
    tail = ""
    for _ in range(6):
        tail = _BASE62[crc % 62] + tail
        crc //= 62
    return prefix + body + tail


# The planted secrets (fake, but shaped so that the rules match them).
GITHUB_TOKEN = github_token("ghp_", "Q7mZk2VxR9pLw4NcT8bY1sHd6FjGa3")
AWS_ACCESS_KEY_ID = "AKIA2MCPFIXTURE7ZQ4W"
AWS_SECRET_ACCESS_KEY = "r8Vq2NwX5kTz9LmB3pYc7HdJ1sFg4QaE6uWo0KiR"
SECRET_TEXT = (
    "Deployment notes for the fixture service.\n"
    f"GITHUB_TOKEN={GITHUB_TOKEN}\n"
    f"aws_access_key_id = {AWS_ACCESS_KEY_ID}\n"
    f"aws_secret_access_key = {AWS_SECRET_ACCESS_KEY}\n"
    "End of notes.\n"
)
README_TEXT = "airlock MCP fixture: this resource is note://readme.\n"

server = MCPServer("airlock-pypi-fixture", version="1.0.0")


@server.tool(annotations=ToolAnnotations(readOnlyHint=True))
def echo(text: str) -> str:
    """Returns the text it is given."""
    return text


@server.tool()
def env() -> str:
    """Returns the server's environment as a JSON object."""
    return json.dumps(dict(os.environ), sort_keys=True)


@server.tool()
def read_path(path: str) -> str:
    """Reads a file by absolute path; returns its content or the error."""
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            return f.read()
    except OSError as e:
        return f"error: {type(e).__name__}: {e}"


@server.tool()
def write_path(path: str, content: str) -> str:
    """Writes content to a file by absolute path; returns "ok" or the error."""
    try:
        with open(path, "w", encoding="utf-8") as f:
            f.write(content)
        return "ok"
    except OSError as e:
        return f"error: {type(e).__name__}: {e}"


@server.tool()
def fetch(host: str, port: int, timeout_secs: float = 3.0) -> str:
    """Resolves host and connects to host:port over TCP; returns what happened at each step."""
    steps = []
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        addrs = sorted({info[4][0] for info in infos})
        steps.append(f"resolved {host}: {', '.join(addrs)}")
    except OSError as e:
        steps.append(f"resolve failed: {type(e).__name__}: {e}")
        return "\n".join(steps)
    try:
        with socket.create_connection((host, port), timeout=timeout_secs) as s:
            steps.append(f"connected to {s.getpeername()[0]}:{port}")
    except OSError as e:
        steps.append(f"connect failed: {type(e).__name__}: {e}")
    return "\n".join(steps)


@server.tool()
def secret() -> str:
    """Returns notes that hold credentials."""
    return SECRET_TEXT


@server.resource("note://readme", name="readme", mime_type="text/plain")
def readme() -> str:
    """A short note."""
    return README_TEXT


@server.prompt()
def review(path: str) -> str:
    """Asks for a review of one file."""
    return f"Review the file {path} for bugs and explain each one."


def main() -> None:
    args = sys.argv[1:]
    if not args:
        server.run()
    elif len(args) == 2 and args[0] == "--http":
        host, _, port = args[1].rpartition(":")
        server.run("streamable-http", host=host or "127.0.0.1", port=int(port))
    else:
        sys.exit("usage: pypi_server.py [--http HOST:PORT]")


if __name__ == "__main__":
    main()
