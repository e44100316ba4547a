"""The real agents that tests/wrap/run and bench/wrap drive, and what each needs.

One entry per agent: where it comes from (a registry package, pinned), the
wire API it speaks to the broker, how its model calls its own shell tool,
and its command lines (one-shot, and interactive for the tmux cases).
"""
from dataclasses import dataclass, field
from typing import Callable, Optional


@dataclass
class Agent:
    # The program on PATH, and the profile airlock picks by that name.
    program: str
    # "npm" or "pypi".
    registry: str
    package: str
    # The release the tests pin (the current one when this was written).
    version: str
    # The wire API it speaks to the broker: "anthropic" or "openai".
    api: str
    # The model's call of the agent's own shell tool, running `command`.
    shell: Callable[[str], dict]
    # The one-shot command line for `task`; `auto` adds its auto-approve switch.
    oneshot: Callable[[str, bool], list]
    # The interactive command line (the agent's own TUI); `auto` as above.
    interactive: Callable[[bool], list]
    # What a newcomer is asked on the first interactive run, answered by the
    # tmux case with these keys in order: (text that appears, keys to send).
    first_run: list = field(default_factory=list)
    # Text on the screen once its prompt takes input.
    ready: str = ""
    # Questions it asks during a turn in its interactive session, answered as they appear.
    during_turn: list = field(default_factory=list)
    # The tmux keys that end its interactive session.
    quit: list = field(default_factory=lambda: ["C-c", "C-c"])
    # Whether a one-shot run tries its vendor with its telemetry left on.
    telemetry: bool = False
    # Extra arguments to `airlock wrap` for this agent.
    wrap_args: list = field(default_factory=list)
    # Why it is left out of the suite on this machine, if it is.
    skip: Optional[str] = None
    # Whether its shell command's output goes back to the model within the
    # one-shot run (Aider's goes only into its chat history: no next request).
    returns_output: bool = True


def _claude_shell(command):
    return {"name": "Bash", "arguments": {"command": command, "description": "Follow the README"}}


def _qwen_shell(command):
    return {"name": "run_shell_command", "arguments": {"command": command, "description": "Follow the README"}}


def _codex_shell(command):
    return {"name": "exec_command", "arguments": {"cmd": command, "yield_time_ms": 10000}}


def _gemini_shell(command):
    # It refuses a command holding `$(`, backticks, `<(` or `>(` ("Command injection detected"), `$((…))` too.
    return {"name": "run_shell_command", "arguments": {"command": command, "description": "Follow the README"}}


def _opencode_shell(command):
    return {"name": "bash", "arguments": {"command": command}}


def _aider_shell(command):
    # No tools: a whole turn, whose fenced ```bash block it offers to run ("Run shell command?"): --yes-always
    # answers no to that question, a closed stdin yes (its default).
    return {"text": f"Following the README:\n\n```bash\n{command}\n```\n"}


AGENTS = {
    "claude": Agent(
        program="claude", registry="npm", package="@anthropic-ai/claude-code", version="2.1.332", api="anthropic",
        shell=_claude_shell,
        # --name: otherwise a separate request for a session title races the first turn for the script.
        oneshot=lambda task, auto: (["claude", "-p", task, "--output-format", "text", "--name", "airlock-wrap"]
                                    + (["--dangerously-skip-permissions"] if auto else [])),
        interactive=lambda auto: ["claude", "--name", "airlock-wrap"] + (["--dangerously-skip-permissions"] if auto else []),
        # Its own questions, which airlock leaves to the person: the folder, and its bypass mode.
        first_run=[("Yes, I trust this folder", ["Down", "Enter"]), ("Yes, I accept", ["Down", "Enter"])],
        ready="bypass permissions on",
        # "Press Ctrl-C again to exit": the second must follow at once (a first one alone may only cancel
        # what it is doing after the turn).
        quit=["C-c C-c"],
        telemetry=True,
    ),
    "codex": Agent(
        program="codex", registry="npm", package="@openai/codex", version="0.171.0", api="openai",
        shell=_codex_shell,
        # Codex's default model (none named) gets no tools at all: name one.
        oneshot=lambda task, auto: (["codex", "exec", "-m", "gpt-5-codex", "--skip-git-repo-check"]
                                    + (["--dangerously-bypass-approvals-and-sandbox"] if auto else []) + [task]),
        interactive=lambda auto: (["codex", "-m", "gpt-5-codex"]
                                  + (["--dangerously-bypass-approvals-and-sandbox"] if auto else [])),
        first_run=[("Trust and continue", ["Enter"])],
        ready="Ask Codex to do anything",
        telemetry=True,
    ),
    "qwen": Agent(
        program="qwen", registry="npm", package="@qwen-code/qwen-code", version="0.24.4", api="openai",
        shell=_qwen_shell,
        oneshot=lambda task, auto: ["qwen", "-p", task] + (["--yolo"] if auto else []),
        interactive=lambda auto: ["qwen"] + (["--yolo"] if auto else []),
        ready="Type your message",
        # Its Ctrl-C exit depends on what it is doing after the turn; its own command does not.
        quit=["/quit", "Enter"],
    ),
    "gemini": Agent(
        program="gemini", registry="npm", package="@google/gemini-cli", version="0.61.0", api="gemini",
        shell=_gemini_shell,
        # --skip-trust: in an untrusted folder -p refuses to run (and --yolo falls back to "default").
        oneshot=lambda task, auto: ["gemini", "-p", task, "--skip-trust"] + (["--yolo"] if auto else []),
        interactive=lambda auto: ["gemini"] + (["--yolo"] if auto else []),
        # Its API key dialogs are skipped by the profile (security.auth.selectedType); no theme picker.
        first_run=[("Do you trust the files in this folder?", ["Enter"])],
        ready="Type your message or @path/to/file",
        # It may ask before a command even in its yolo mode ("Redirection detected").
        during_turn=[("Allow execution of", ["Enter"])],
        # Its second Ctrl-C must follow the first at once.
        quit=["C-c C-c"],
        # Its usage statistics are off in the settings file the profile writes, --vendor-telemetry or not (the
        # switch is honoured there only); a one-shot run then tries no other host.
        telemetry=False,
    ),
    "opencode": Agent(
        program="opencode", registry="npm", package="opencode-ai", version="1.18.33", api="openai",
        shell=_opencode_shell,
        # --title: otherwise a title request (no tools) comes before the first turn.
        oneshot=lambda task, auto: ["opencode", "run", "--title", "airlock-wrap"] + (["--auto"] if auto else []) + [task],
        interactive=lambda auto: ["opencode"] + (["--auto"] if auto else []),
        # No question; but the first message makes a title request (no tools) before the real one.
        first_run=[],
        ready="Ask anything",
        telemetry=True,
    ),
    "aider": Agent(
        program="aider", registry="pypi", package="aider-chat", version="0.86.2", api="openai",
        shell=_aider_shell,
        # No switch approves its shell commands (see _aider_shell): `auto` changes nothing. The diff edit
        # format: with "whole" (its default for a model it does not know) a ```bash block is taken for a file.
        oneshot=lambda task, auto: ["aider", "--message", task, "--edit-format", "diff", "--no-gitignore"],
        interactive=lambda auto: ["aider", "--edit-format", "diff"],
        # The profile turns off the model-warning and release-notes questions (and analytics, asked of one user
        # in ten); --no-gitignore would skip this one.
        first_run=[("to .gitignore (recommended)?", ["Enter"])],
        ready="diff>",
        # It asks before it runs a command of the answer; the output goes back only with the next message.
        during_turn=[("Run shell command?", ["y", "Enter"]), ("Add command output to the chat?", ["y", "Enter"])],
        quit=["C-d", "C-c"],
        telemetry=True,
        returns_output=False,
    ),
}
