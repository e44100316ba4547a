"""A private PostgreSQL cluster for tests: Debian's PostgreSQL binaries, a
temporary data folder, a Unix socket in that folder, no TCP, no system service.

PostgreSQL refuses to run as root; as root the cluster runs as an unprivileged
user (airlock-test, made when missing).
"""
import glob
import os
import pwd
import shutil
import subprocess
import time

USER = "airlock-test"


def bindir():
    for candidate in [os.environ.get("AIRLOCK_PG_BINDIR", "")] + sorted(glob.glob("/usr/lib/postgresql/*/bin"),
                                                                          reverse=True):
        if candidate and os.path.exists(os.path.join(candidate, "initdb")):
            return candidate
    return None


class Cluster:
    def __init__(self, folder):
        self.bin = bindir()
        if self.bin is None:
            raise FileNotFoundError("PostgreSQL's server binaries (initdb, pg_ctl) are not installed "
                                    "(apt-get install postgresql)")
        self.folder = folder
        self.data = os.path.join(folder, "data")
        self.socket = folder
        self.as_root = os.geteuid() == 0
        self.user = USER if self.as_root else pwd.getpwuid(os.geteuid()).pw_name
        os.makedirs(folder, exist_ok=True)
        if self.as_root:
            if subprocess.run(["id", USER], capture_output=True).returncode != 0:
                subprocess.run(["useradd", "--create-home", USER], check=True)
            entry = pwd.getpwnam(USER)
            os.chown(folder, entry.pw_uid, entry.pw_gid)
            # The user must reach the folder through its parents.
            parent = os.path.dirname(folder)
            while parent not in ("/", ""):
                os.chmod(parent, os.stat(parent).st_mode | 0o011)
                parent = os.path.dirname(parent)
        self.log = os.path.join(folder, "postgres.log")

    def run(self, *argv, check=True):
        argv = [os.path.join(self.bin, argv[0]), *argv[1:]]
        if self.as_root:
            argv = ["runuser", "-u", USER, "--", *argv]
        return subprocess.run(argv, check=check, capture_output=True, text=True)

    def start(self):
        if not os.path.exists(self.data):
            self.run("initdb", "-D", self.data, "-U", self.user, "--auth=trust", "-E", "UTF8", "--no-sync")
        opts = f"-k {self.socket} -c listen_addresses='' -c fsync=on -c max_connections=200"
        self.run("pg_ctl", "-D", self.data, "-l", self.log, "-o", opts, "-w", "-t", "60", "start")
        return self

    def stop(self):
        if os.path.exists(os.path.join(self.data, "postmaster.pid")):
            self.run("pg_ctl", "-D", self.data, "-m", "fast", "-w", "stop", check=False)

    def psql(self, sql, db="postgres"):
        return self.run("psql", "-h", self.socket, "-U", self.user, "-d", db, "-v", "ON_ERROR_STOP=1",
                        "-Atc", sql).stdout

    def create_database(self, name):
        self.psql(f'CREATE DATABASE "{name}"')
        return self.url(name)

    def url(self, db):
        return f"postgresql://{self.user}@/{db}?host={self.socket}"

    def copy_data(self, to):
        """The data folder, copied while the cluster is stopped (a backup to roll back to)."""
        shutil.copytree(self.data, to, symlinks=True)

    def restore_data(self, frm):
        shutil.rmtree(self.data)
        shutil.copytree(frm, self.data, symlinks=True)
        if self.as_root:
            subprocess.run(["chown", "-R", f"{USER}:", self.data], check=True)


def wait_for(check, timeout=20):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if check():
            return True
        time.sleep(0.1)
    return False
