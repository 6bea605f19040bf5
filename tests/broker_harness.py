"""Helpers for the broker scenarios (tests/t_broker_*.py): start bin/broker on
free loopback ports with a private journal, stop it by PID, talk mmi.*."""
import os
import random
import signal
import socket
import subprocess
import sys
import time

import msgpack

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import mdp  # noqa: E402

BIN = os.environ.get("PREDICTORS_BIN") or os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "bin")
TMP = os.environ.get("T_TMP") or "/tmp"


_given_ports = set()


def free_port():
    """A free port below the kernel's ephemeral range (port 0 would hand out one that any
    outgoing connection may take before the broker binds it), never the same one twice."""
    try:
        low = int(open("/proc/sys/net/ipv4/ip_local_port_range").read().split()[0])
    except (OSError, ValueError, IndexError):
        low = 32768
    high = low - 1 if low > 21000 else 32767
    while True:
        port = random.randint(20000, high)
        if port in _given_ports:
            continue
        s = socket.socket()
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            continue
        finally:
            s.close()
        _given_ports.add(port)
        return port


def fail(msg):
    print("t_fail: " + msg, file=sys.stderr)
    sys.exit(1)


def check(cond, msg):
    if not cond:
        fail(msg)


class Broker:
    """One bin/broker process. env: extra PREDICTORS_BROKER_* settings."""

    def __init__(self, name="broker", env=None, journal=None, port=None, prefix=None):
        self.port = port or free_port()
        self.events_port = free_port()
        self.endpoint = "tcp://127.0.0.1:%d" % self.port
        self.events = "tcp://127.0.0.1:%d" % self.events_port
        self.journal = journal or os.path.join(TMP, name + "-journal")
        self.log_path = os.path.join(TMP, name + ".log")
        self.env = dict(os.environ)
        self.env.update({"PREDICTORS_BROKER_HEARTBEAT": "0.5s", "PREDICTORS_BROKER_RETRY_BASE": "0.05s",
                         "PREDICTORS_BROKER_RETRY_MAX": "0.2s"})
        self.env.update(env or {})
        self.prefix = prefix or []
        self.proc = None
        self.start()

    def start(self):
        log = open(self.log_path, "a")
        self.log_from = log.tell()
        self.proc = subprocess.Popen(self.prefix + [os.path.join(BIN, "broker"), "--bind", self.endpoint,
                                                    "--events", self.events, "--journal", self.journal],
                                     env=self.env, stdout=log, stderr=log)
        deadline = time.time() + 60      # a sanitizer build on a loaded machine took 21 s
        while time.time() < deadline:
            if self.proc.poll() is not None:
                fail("broker exited at start, rc=%s:\n%s" % (self.proc.returncode, self.log()))
            if "broker listening" in self.log()[self.log_from:]:
                return
            time.sleep(0.05)
        fail("broker did not start:\n" + self.log())

    def log(self):
        try:
            return open(self.log_path).read()
        except OSError:
            return ""

    def kill9(self):
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                fail("broker did not stop on SIGTERM")
        return self.proc.returncode


def mmi(client, name, *args):
    """Calls mmi.NAME; returns (status, decoded data or None)."""
    reply = client.request("mmi." + name, *args)
    check(reply is not None, "mmi.%s: no reply" % name)
    status = reply[0].decode()
    data = msgpack.unpackb(reply[1], raw=False) if len(reply) > 1 else None
    return status, data


def wait_for(what, fn, timeout=20.0, step=0.05):
    deadline = time.time() + timeout
    while time.time() < deadline:
        v = fn()
        if v:
            return v
        time.sleep(step)
    fail("timed out waiting for " + what)


def spawn_worker(endpoint, service, *args, log=None):
    return subprocess.Popen([sys.executable, os.path.join(os.path.dirname(os.path.abspath(__file__)), "mdp.py"),
                             "worker", endpoint, service] + list(args),
                            stdout=log or subprocess.DEVNULL, stderr=log or subprocess.DEVNULL)


def shutdown(procs, broker):
    """Kills the worker processes, then stops the broker (a scenario's finally)."""
    for p in procs:
        p.kill()
        p.wait()
    if broker:
        broker.stop()
