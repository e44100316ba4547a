#!/usr/bin/env python3
"""Checks tests/mcp/servers/pypi_server.py with the official Python client (mcp.client.stdio).

Lists the fixture's tools, resource and prompt, and calls each tool, asserting
what comes back. Everything runs inside `unshare -rn` (a network namespace
holding loopback alone): the script re-executes itself there when it is not
already inside one (AIRLOCK_MCP_NETNS set).

usage: tests/mcp/check_pypi.py     (after tests/mcp/setup; AIRLOCK_MCP_CACHE overrides the cache)
Prints "N passed, N failed" and exits non-zero on a failure. Without the venv
it is skipped with a message, unless AIRLOCK_CI or CI is set, when that fails.
"""

import asyncio
import json
import pathlib
import shutil
import socket
import subprocess
import sys
import tempfile
import threading

HERE = pathlib.Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import fixtures  # noqa: E402

EXPECTED_TOOLS = {"echo", "env", "read_path", "write_path", "fetch", "secret"}


def text_of(result):
    return "".join(getattr(c, "text", "") for c in result.content)


async def run_checks():
    from mcp import ClientSession
    from mcp.client.stdio import StdioServerParameters, stdio_client

    sys.path.insert(0, str(fixtures.PYPI_SERVER.parent))
    import pypi_server  # the planted values, to compare with

    results = []

    def check(name, ok, detail=""):
        results.append(ok)
        print(f"{'ok  ' if ok else 'FAIL'} {name}{'' if ok else ': ' + detail}", flush=True)

    tmp = pathlib.Path(tempfile.mkdtemp(prefix="airlock-mcp-check."))
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(4)
    port = listener.getsockname()[1]
    accepted = []

    def accept():
        try:
            conn, _ = listener.accept()
            accepted.append(True)
            conn.close()
        except OSError:
            pass

    threading.Thread(target=accept, daemon=True).start()

    params = StdioServerParameters(command=str(fixtures.PYTHON), args=[str(fixtures.PYPI_SERVER)], env={"AIRLOCK_FIXTURE_VAR": "visible"})
    try:
        async with stdio_client(params) as (read, write):
            async with ClientSession(read, write) as session:
                init = await session.initialize()
                check("initialize names the server", init.server_info.name == "airlock-pypi-fixture", str(init.server_info))

                tools = {t.name: t for t in (await session.list_tools()).tools}
                check("tools/list has the six tools", set(tools) == EXPECTED_TOOLS, str(sorted(tools)))
                ro = {n for n, t in tools.items() if t.annotations and t.annotations.read_only_hint}
                check("only echo is annotated read-only", ro == {"echo"}, str(ro))

                r = await session.call_tool("echo", {"text": "hello, airlock"})
                check("echo", text_of(r) == "hello, airlock" and not r.is_error, text_of(r))

                r = await session.call_tool("env", {})
                env = json.loads(text_of(r))
                check("env shows the server's environment", env.get("AIRLOCK_FIXTURE_VAR") == "visible" and "PATH" in env, str(env)[:200])

                (tmp / "in.txt").write_text("content to read\n")
                r = await session.call_tool("read_path", {"path": str(tmp / "in.txt")})
                check("read_path reads a file", text_of(r) == "content to read\n", text_of(r))
                r = await session.call_tool("read_path", {"path": str(tmp / "absent")})
                check("read_path reports the error", text_of(r).startswith("error: FileNotFoundError"), text_of(r))

                r = await session.call_tool("write_path", {"path": str(tmp / "out.txt"), "content": "written"})
                wrote = (tmp / "out.txt").read_text() if (tmp / "out.txt").exists() else None
                check("write_path writes a file", text_of(r) == "ok" and wrote == "written", f"{text_of(r)} / {wrote!r}")
                r = await session.call_tool("write_path", {"path": str(tmp / "no" / "dir" / "f"), "content": "x"})
                check("write_path reports the error", text_of(r).startswith("error: FileNotFoundError"), text_of(r))

                r = await session.call_tool("fetch", {"host": "127.0.0.1", "port": port})
                check("fetch connects to a loopback listener", f"connected to 127.0.0.1:{port}" in text_of(r), text_of(r))
                r = await session.call_tool("fetch", {"host": "registry.npmjs.org", "port": 443, "timeout_secs": 2})
                check("fetch cannot reach the internet here", "connected" not in text_of(r) and "failed" in text_of(r), text_of(r))

                r = await session.call_tool("secret", {})
                t = text_of(r)
                check(
                    "secret holds the planted credentials",
                    pypi_server.GITHUB_TOKEN in t and pypi_server.AWS_ACCESS_KEY_ID in t and pypi_server.AWS_SECRET_ACCESS_KEY in t,
                    t,
                )
                airlock = fixtures.airlock_bin()
                if airlock:
                    scan = subprocess.run([airlock, "scan", "--stdin", "--format", "json"], input=t, capture_output=True, text=True)
                    rules = sorted(f["rule"] for f in json.loads(scan.stdout or "[]"))
                    want = ["aws-access-key-id", "aws-secret-access-key", "github-pat"]
                    check("airlock's redaction rules match the planted secrets", rules == want, f"{rules} {scan.stderr}")
                else:
                    print("skip airlock's redaction rules (no airlock binary: set AIRLOCK_BIN or build it)")

                res = await session.list_resources()
                check("resources/list has note://readme", [str(x.uri) for x in res.resources] == ["note://readme"], str(res.resources))
                rr = await session.read_resource("note://readme")
                check("resources/read note://readme", rr.contents[0].text == pypi_server.README_TEXT, str(rr.contents))

                prompts = {p.name: p for p in (await session.list_prompts()).prompts}
                args = [a.name for a in (prompts["review"].arguments or [])] if "review" in prompts else []
                check("prompts/list has review(path)", args == ["path"], str(prompts))
                gp = await session.get_prompt("review", {"path": "src/main.rs"})
                check("prompts/get review", "src/main.rs" in gp.messages[0].content.text, str(gp.messages))
    finally:
        listener.close()
        shutil.rmtree(tmp, ignore_errors=True)

    failed = results.count(False)
    print(f"{len(results) - failed} passed, {failed} failed")
    return failed == 0


def main():
    fixtures.skip_or_fail("tests/mcp/check_pypi.py")
    fixtures.reexec_in_netns(__file__, fixtures.PYTHON)
    sys.exit(0 if asyncio.run(run_checks()) else 1)


if __name__ == "__main__":
    main()
