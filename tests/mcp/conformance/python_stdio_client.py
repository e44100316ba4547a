"""The official Python SDK's stdio client facing the conformance suite through stdio_bridge.py.

A check that the bridge carries the core scenarios: the suite runs
`python_stdio_client.py URL`; this client starts `stdio_bridge.py URL` as a
stdio server and does what python_client.py does over HTTP. A stdio-only
client under test (airlock's) takes the same place, with the bridge as its server.
"""

import asyncio
import os
import pathlib
import sys

from mcp import ClientSession
from mcp.client.stdio import StdioServerParameters, stdio_client

BRIDGE = pathlib.Path(__file__).resolve().parent / "stdio_bridge.py"


async def main(url: str, scenario: str) -> None:
    params = StdioServerParameters(command=sys.executable, args=[str(BRIDGE), url])
    async with stdio_client(params) as (read, write):
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
        sys.exit("usage: python_stdio_client.py URL  (MCP_CONFORMANCE_SCENARIO names the scenario)")
    asyncio.run(main(sys.argv[1], os.environ.get("MCP_CONFORMANCE_SCENARIO", "initialize")))
