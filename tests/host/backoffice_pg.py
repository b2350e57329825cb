"""A throw-away PostgreSQL cluster for the back office tests (session fixture `pg_cluster`).

CI runs as root with no service running, so the fixture does everything: initdb as the
`postgres` user (PostgreSQL refuses to run as root) in a temporary directory, start it on
a free port with its Unix socket in that directory (no TCP listener), and remove it all
afterwards. Skipped, with the reason shown, only where no PostgreSQL binary exists.
"""

import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import uuid

import pytest


def _bindir():
    for d in sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True):
        if os.path.exists(os.path.join(d, "initdb")):
            return d
    found = shutil.which("initdb")
    return os.path.dirname(found) if found else None


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Cluster:
    def __init__(self, bindir, fsync=False):
        self.bindir = bindir
        self.fsync = fsync  # off for tests (speed); on for benchmark figures (honest)
        self.root = tempfile.mkdtemp(prefix="brt-pg-")
        self.data = os.path.join(self.root, "data")
        self.port = _free_port()
        self.as_user = []
        if os.geteuid() == 0:
            pw = pwd.getpwnam("postgres")
            os.chown(self.root, pw.pw_uid, pw.pw_gid)
            self.as_user = ["runuser", "-u", "postgres", "--"]
        self.user = "postgres" if self.as_user else pwd.getpwuid(os.geteuid()).pw_name

    def _run(self, *args):
        r = subprocess.run(self.as_user + [os.path.join(self.bindir, args[0])] + list(args[1:]),
                           capture_output=True, text=True, timeout=120)
        if r.returncode:
            raise RuntimeError("%s failed: %s%s" % (args[0], r.stdout, r.stderr))

    def start(self):
        self._run("initdb", "-D", self.data, "-A", "trust", "-U", self.user, "--no-sync",
                  "-E", "UTF8")
        self._run("pg_ctl", "-D", self.data, "-l", os.path.join(self.root, "log"), "-w",
                  "-o", "-k %s -p %d -c listen_addresses='' -c fsync=%s"
                  % (self.root, self.port, "on" if self.fsync else "off"),
                  "start")
        return self

    def conninfo(self, db="postgres"):
        return "host=%s port=%d user=%s dbname=%s" % (self.root, self.port, self.user, db)

    def new_database(self):
        import psycopg
        name = "bo_" + uuid.uuid4().hex[:12]
        with psycopg.connect(self.conninfo(), autocommit=True) as c:
            c.execute("CREATE DATABASE " + name)
        return self.conninfo(name)

    def stop(self):
        try:
            self._run("pg_ctl", "-D", self.data, "-m", "fast", "-w", "stop")
        finally:
            shutil.rmtree(self.root, ignore_errors=True)


@pytest.fixture(scope="session")
def pg_cluster():
    bindir = _bindir()
    if bindir is None:
        pytest.skip("no PostgreSQL binaries (initdb) on this machine: PostgreSQL tests skipped")
    c = Cluster(bindir).start()
    yield c
    c.stop()
