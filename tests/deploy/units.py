"""Starts the services of deploy/systemd as systemd would, closely enough for a test.

The unit files are the deployment that docs/deploy.md describes; this module
reads them and runs what they say (ExecStartPre, ExecStart, Environment,
EnvironmentFile, the instance name %i, KillSignal), with the paths of the real
machine (/etc/airlock, /var/lib/airlock, /usr/local/bin/airlock, ...) moved
under a test folder, so that a test starts the documented deployment itself
rather than a copy of it. Anything else a unit says (User=, the hardening
options, Restart=) is left to systemd and listed by `ignored()`.
"""
import os
import re
import shlex
import signal
import subprocess
import time

UNDERSTOOD = {
    "Unit": {"Description", "After", "Wants", "Requires", "Documentation"},
    "Service": {"Type", "ExecStartPre", "ExecStart", "Environment", "EnvironmentFile", "KillSignal",
                "TimeoutStopSec"},
    "Install": {"WantedBy"},
}


def parse(path):
    """A unit file as {section: [(key, value), ...]}, continuation lines joined."""
    sections, current = {}, None
    text = open(path).read().replace("\\\n", " ")
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line[0] in "#;":
            continue
        m = re.fullmatch(r"\[(\w+)\]", line)
        if m:
            current = sections.setdefault(m.group(1), [])
            continue
        key, _, value = line.partition("=")
        if current is None or not _:
            raise ValueError(f"{path}: cannot read {raw!r}")
        current.append((key.strip(), value.strip()))
    return sections


class Unit:
    """One service of a unit file (a template's instance when `instance` is given)."""

    def __init__(self, path, paths, instance=None, log_dir="."):
        self.path, self.paths, self.instance = path, paths, instance
        self.name = os.path.basename(path).replace("@.", f"@{instance}.") if instance else os.path.basename(path)
        self.sections = parse(path)
        self.log_path = os.path.join(log_dir, self.name + ".log")
        self.proc = None

    def values(self, key, section="Service"):
        return [self.expand(v) for k, v in self.sections.get(section, []) if k == key]

    def ignored(self):
        return sorted({f"{s}.{k}" for s, kv in self.sections.items() for k, _ in kv
                       if k not in UNDERSTOOD.get(s, set())})

    def expand(self, value):
        if self.instance is not None:
            value = value.replace("%i", self.instance)
        value = value.replace("%%", "%")
        # Longest first, so /var/lib/airlock wins over /var/lib.
        for real, moved in sorted(self.paths.items(), key=lambda kv: -len(kv[0])):
            value = re.sub(re.escape(real) + r"(?=[/\s\"']|$)", moved, value)
        return value

    def environment(self, base):
        env = dict(base)
        for spec in self.values("EnvironmentFile"):
            optional = spec.startswith("-")
            name = spec.lstrip("-")
            if not os.path.exists(name):
                if optional:
                    continue
                raise FileNotFoundError(f"{self.name}: EnvironmentFile {name} is missing")
            for line in open(name).read().splitlines():
                line = line.strip()
                if line and not line.startswith("#") and "=" in line:
                    k, _, v = line.partition("=")
                    env[k.strip()] = self.expand(v.strip().strip('"'))
        for spec in self.values("Environment"):
            for assignment in shlex.split(spec):
                k, _, v = assignment.partition("=")
                env[k] = v
        return env

    def command(self, line, env):
        line = line.lstrip("-@+!:")
        # systemd's $VAR / ${VAR} in command lines, from the unit's environment.
        line = re.sub(r"\$\{(\w+)\}|\$(\w+)", lambda m: env.get(m.group(1) or m.group(2), ""), line)
        return shlex.split(line)

    def start(self, base_env):
        env = self.environment(base_env)
        log = open(self.log_path, "ab")
        for pre in self.values("ExecStartPre"):
            rc = subprocess.run(self.command(pre, env), env=env, stdout=log, stderr=log).returncode
            if rc != 0 and not pre.startswith("-"):
                raise RuntimeError(f"{self.name}: ExecStartPre {pre!r} exited {rc} (see {self.log_path})")
        (start,) = self.values("ExecStart")
        self.proc = subprocess.Popen(self.command(start, env), env=env, stdout=log, stderr=log,
                                     start_new_session=True)
        return self.proc

    def kill_signal(self):
        (name,) = self.values("KillSignal") or ["SIGTERM"]
        return getattr(signal, name if name.startswith("SIG") else "SIG" + name)

    def stop(self, timeout=30):
        """As `systemctl stop`: KillSignal, then SIGKILL after the timeout. Returns the exit status."""
        if self.proc is None or self.proc.poll() is not None:
            return None if self.proc is None else self.proc.returncode
        self.proc.send_signal(self.kill_signal())
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            return -9

    def kill(self):
        """SIGKILL, as a crashed machine would."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def tail(self, n=20):
        try:
            return "\n".join(open(self.log_path, errors="replace").read().splitlines()[-n:])
        except OSError:
            return ""


def wait_until(check, what, timeout=30, proc=None):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if check():
            return
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"{what}: the process exited with {proc.returncode}")
        time.sleep(0.1)
    raise RuntimeError(f"{what}: not within {timeout} s")
