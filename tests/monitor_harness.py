"""Helpers for the monitor scenarios (tests/t_monitor_*.py): a private
redis-server that a test may kill and restart, bin/monitor with its settings,
HTTP through urllib, and reading Redis with redis-cli (no Python client
needed)."""
import os
import signal
import subprocess
import time
import urllib.error
import urllib.request

from broker_harness import BIN, TMP, check, fail, free_port, wait_for  # noqa: F401


class Redis:
    """A redis-server of our own (append-only, fsync always), so a test can kill it."""

    def __init__(self, name="redis"):
        self.port = free_port()
        self.dir = os.path.join(TMP, name)
        os.makedirs(self.dir, exist_ok=True)
        self.url = "redis://127.0.0.1:%d/0" % self.port
        self.proc = None
        self.start()

    def start(self):
        log = open(os.path.join(self.dir, "redis.log"), "a")
        self.proc = subprocess.Popen(["redis-server", "--port", str(self.port), "--bind", "127.0.0.1",
                                      "--dir", self.dir, "--appendonly", "yes", "--appendfsync", "always",
                                      "--save", ""], stdout=log, stderr=log)
        wait_for("redis-server on %d" % self.port, lambda: self.cli("PING") == "PONG", timeout=60)

    def kill9(self):
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait()

    def cli(self, *args):
        r = subprocess.run(["redis-cli", "-p", str(self.port), "--raw"] + list(args),
                           capture_output=True, text=True, timeout=10)
        return r.stdout.strip() if r.returncode == 0 else None

    def hgetall(self, key):
        out = self.cli("HGETALL", key)
        lines = out.split("\n") if out else []
        return dict(zip(lines[0::2], lines[1::2]))


class Monitor:
    """One bin/monitor. env: PREDICTORS_* overrides on top of the test's environment."""

    def __init__(self, redis_url, broker, env=None, name="monitor"):
        self.port = free_port()
        self.log_path = os.path.join(TMP, name + ".log")
        self.env = dict(os.environ)
        self.env.update({"REDIS_URL": redis_url, "PREDICTORS_MONITOR_PORT": str(self.port),
                         "PREDICTORS_MONITOR_CATCHUP": "0.5s", "PREDICTORS_MONITOR_MMI_TIMEOUT": "1s"})
        if broker is not None:
            self.env.update({"PREDICTORS_BROKER": broker.endpoint, "PREDICTORS_BROKER_EVENTS": broker.events})
        self.env.update(env or {})
        self.proc = None
        self.start()

    def start(self):
        log = open(self.log_path, "a")
        log_from = log.tell()       # a restart must not take the last run's "monitor up" for its own
        self.proc = subprocess.Popen([os.path.join(BIN, "monitor")], env=self.env, stdout=log, stderr=log)
        deadline = time.time() + 60      # a sanitizer build on a loaded machine
        while time.time() < deadline:
            if self.proc.poll() is not None:
                fail("monitor exited at start, rc=%s:\n%s" % (self.proc.returncode, self.log()))
            if "monitor up" in self.log()[log_from:]:
                return
            time.sleep(0.05)
        fail("monitor did not start:\n" + self.log())

    def log(self):
        try:
            return open(self.log_path).read()
        except OSError:
            return ""

    def alive(self):
        return self.proc.poll() is None

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                fail("monitor did not stop on SIGTERM")
        return self.proc.returncode

    def url(self, path):
        return "http://127.0.0.1:%d%s" % (self.port, path)

    def http(self, path, method="GET", body=None, headers=None):
        """Returns (status, text)."""
        req = urllib.request.Request(self.url(path), data=body, method=method, headers=headers or {})
        try:
            with urllib.request.urlopen(req, timeout=20) as r:
                return r.status, r.read().decode()
        except urllib.error.HTTPError as e:
            return e.code, e.read().decode()

    def metric(self, text, series):
        """The value of one exact series line in a /metrics text, or None."""
        for line in text.split("\n"):
            if line.startswith(series + " "):
                return float(line.split(" ")[-1])
        return None


def promtool_check(text):
    """Runs `promtool check metrics` on text; returns (ok, output)."""
    r = subprocess.run(["promtool", "check", "metrics"], input=text, capture_output=True, text=True, timeout=60)
    return r.returncode == 0, (r.stdout + r.stderr).strip()
