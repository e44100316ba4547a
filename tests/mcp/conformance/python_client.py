"""A client under test for the official conformance suite, on the official Python SDK.

The suite runs `COMMAND URL` with MCP_CONFORMANCE_SCENARIO set; the scenario's
server speaks streamable HTTP at URL (on localhost). This client serves as a
sanity check of the harness (tests/mcp/conformance/run): it does what each
core scenario expects of a client.
  initialize  initialize, then tools/list;
  tools_call  initialize, tools/list, and tools/call add_numbers {a: 2, b: 3}.
"""

import asyncio
import os
import sys

from mcp import ClientSession
from mcp.client.streamable_http import streamable_http_client


async def main(url: str, scenario: str) -> None:
    async with streamable_http_client(url) as (read, write):
        async with ClientSession(read, write) as session:
            await session.initialize()
            tools = (await session.list_tools()).tools
            if scenario == "tools_call":
                names = [t.name for t in tools]
                if "add_numbers" not in names:
                    sys.exit(f"no add_numbers tool among {names}")
                result = await session.call_tool("add_numbers", {"a": 2, "b": 3})
                print(result.content[0].text)


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: python_client.py URL  (MCP_CONFORMANCE_SCENARIO names the scenario)")
    asyncio.run(main(sys.argv[1], os.environ.get("MCP_CONFORMANCE_SCENARIO", "initialize")))
