#!/usr/bin/env python3
"""Checks the npm reference servers (server-everything, server-filesystem) with the official Python client.

Each answers initialize and tools/list, and a few tools are called, inside
`unshare -rn` (loopback alone; the script re-executes itself there):
  everything  echo; get-env shows the environment it was given;
              gzip-file-as-resource cannot fetch from the internet;
  filesystem  lists and reads its allowed folder, writes into it, and refuses
              a path outside it.

usage: tests/mcp/check_npm.py      (after tests/mcp/setup)
Prints "N passed, N failed"; exits non-zero on a failure. Skipped with a
message when the servers are missing, unless AIRLOCK_CI or CI is set.
"""

import asyncio
import json
import pathlib
import shutil
import sys
import tempfile

HERE = pathlib.Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import fixtures  # noqa: E402

# The tools each release had when it was pinned (tests/mcp/setup): a new
# release that changes them should be looked at before the pin moves.
EVERYTHING_TOOLS = {
    "echo", "get-annotated-message", "get-env", "get-resource-links", "get-resource-reference",
    "get-structured-content", "get-sum", "get-tiny-image", "gzip-file-as-resource",
    "toggle-simulated-logging", "toggle-subscriber-updates", "trigger-long-running-operation",
    "simulate-research-query",
}
FILESYSTEM_TOOLS = {
    "read_file", "read_text_file", "read_media_file", "read_multiple_files", "write_file", "edit_file",
    "create_directory", "list_directory", "list_directory_with_sizes", "directory_tree", "move_file",
    "search_files", "get_file_info", "list_allowed_directories",
}


def text_of(result):
    return "".join(getattr(c, "text", "") or "" for c in result.content)


async def run_checks():
    from mcp import ClientSession
    from mcp.client.stdio import StdioServerParameters, stdio_client

    results = []

    def check(name, ok, detail=""):
        results.append(bool(ok))
        print(f"{'ok  ' if ok else 'FAIL'} {name}{'' if ok else ': ' + str(detail)[:400]}", flush=True)

    def params(argv, env=None):
        return StdioServerParameters(command=argv[0], args=argv[1:], env=env)

    async with stdio_client(params(fixtures.everything_command(), {"AIRLOCK_FIXTURE_VAR": "visible"})) as (r, w):
        async with ClientSession(r, w) as s:
            init = await s.initialize()
            check("everything: initialize", init.server_info.name == "mcp-servers/everything", init.server_info)
            tools = {t.name: t for t in (await s.list_tools()).tools}
            check("everything: tools/list", set(tools) == EVERYTHING_TOOLS, sorted(tools))
            check("everything: get-env is annotated read-only", tools["get-env"].annotations.read_only_hint is True, tools.get("get-env"))
            res = await s.call_tool("echo", {"message": "hello, airlock"})
            check("everything: echo", text_of(res) == "Echo: hello, airlock", text_of(res))
            res = await s.call_tool("get-env", {})
            env = json.loads(text_of(res))
            check("everything: get-env shows its environment", env.get("AIRLOCK_FIXTURE_VAR") == "visible", list(env)[:20])
            res = await s.call_tool("gzip-file-as-resource", {"name": "x.gz", "data": "https://registry.npmjs.org/"})
            check("everything: gzip-file-as-resource cannot reach the internet", res.is_error, text_of(res))

    tmp = pathlib.Path(tempfile.mkdtemp(prefix="airlock-mcp-fs."))
    try:
        allowed = tmp / "allowed"
        allowed.mkdir()
        (allowed / "a.txt").write_text("alpha\n")
        (tmp / "outside.txt").write_text("outside\n")
        async with stdio_client(params(fixtures.filesystem_command(allowed))) as (r, w):
            async with ClientSession(r, w) as s:
                init = await s.initialize()
                check("filesystem: initialize", init.server_info.name == "secure-filesystem-server", init.server_info)
                tools = {t.name for t in (await s.list_tools()).tools}
                check("filesystem: tools/list", tools == FILESYSTEM_TOOLS, sorted(tools))
                res = await s.call_tool("list_directory", {"path": str(allowed)})
                check("filesystem: list_directory", "[FILE] a.txt" in text_of(res), text_of(res))
                res = await s.call_tool("read_text_file", {"path": str(allowed / "a.txt")})
                check("filesystem: read_text_file", text_of(res) == "alpha\n", text_of(res))
                res = await s.call_tool("write_file", {"path": str(allowed / "b.txt"), "content": "beta"})
                check("filesystem: write_file", (allowed / "b.txt").read_text() == "beta", text_of(res))
                res = await s.call_tool("read_text_file", {"path": str(tmp / "outside.txt")})
                check("filesystem: refuses a path outside its folder", res.is_error and "Access denied - path outside allowed directories" in text_of(res), text_of(res))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

    failed = results.count(False)
    print(f"{len(results) - failed} passed, {failed} failed")
    return failed == 0


def main():
    fixtures.skip_or_fail("tests/mcp/check_npm.py")
    fixtures.reexec_in_netns(__file__, fixtures.PYTHON)
    sys.exit(0 if asyncio.run(run_checks()) else 1)


if __name__ == "__main__":
    main()
