#!/usr/bin/python3
"""CURVE: `broker --keygen` writes 0600 key pairs; with keys configured only
peers whose public keys are in the allow-list connect, and a worker's key may
limit the services it registers for; without keys the broker refuses a
non-loopback bind. Peers are pyzmq sockets (libzmq's CurveZMQ)."""
import os
import shutil
import stat
import subprocess

from broker_harness import Broker, BIN, TMP, check, free_port, mmi, wait_for
import mdp

keys = os.path.join(TMP, "keys")
allow = os.path.join(TMP, "allow")
for d in (keys, allow):
    os.makedirs(d, exist_ok=True)


def keygen(name, services=None):
    args = [os.path.join(BIN, "broker"), "--keygen", os.path.join(keys, name)]
    if services:
        args += ["--services", services]
    r = subprocess.run(args, capture_output=True, text=True, timeout=30)
    check(r.returncode == 0 and "written" in r.stdout, "keygen %s: %s %s" % (name, r.stdout, r.stderr))
    for f in (name, name + "_secret"):
        mode = stat.S_IMODE(os.stat(os.path.join(keys, f)).st_mode)
        check(mode == 0o600, "%s has mode %o, not 600" % (f, mode))
    return os.path.join(keys, name)


broker_cert = keygen("broker")
client_cert = keygen("client")
gpu_cert = keygen("gpu-worker", "train.gpu")
stranger_cert = keygen("stranger")
for name in ("client", "gpu-worker"):
    shutil.copy(os.path.join(keys, name), allow)       # public halves only

# Without keys: no non-loopback bind.
r = subprocess.run([os.path.join(BIN, "broker"), "--bind", "tcp://0.0.0.0:%d" % free_port(), "--events", "",
                    "--journal", os.path.join(TMP, "j0")], capture_output=True, text=True, timeout=30)
check(r.returncode == 1 and "without CURVE" in r.stderr, "plain non-loopback bind: %d %s" % (r.returncode, r.stderr))


def peer_keys(cert):
    mine = mdp.load_cert(cert + "_secret")
    server = mdp.load_cert(broker_cert)
    return {"public": mine["public"], "secret": mine["secret"], "server": server["public"]}


port = free_port()
b = Broker("curve", port=port, env={"PREDICTORS_BROKER_CURVE_SECRET": broker_cert,
                                    "PREDICTORS_BROKER_CURVE_ALLOW": allow})
b.endpoint = "tcp://127.0.0.1:%d" % port
try:
    check("curve=on" in b.log(), "start line says curve=on")
    c = mdp.Client(b.endpoint, timeout=30, retries=1, keys=peer_keys(client_cert))
    check(c.request("mmi.service", "x") == [b"404"], "allowed client is served")

    # A key not in the allow-list, and a plain socket, get nothing.
    s = mdp.Client(b.endpoint, timeout=2, retries=1, keys=peer_keys(stranger_cert))
    check(s.request("mmi.service", "x") is None, "unknown key must not be served")
    p = mdp.Client(b.endpoint, timeout=2, retries=1)
    check(p.request("mmi.service", "x") is None, "plain client must not be served")

    # A worker key limited to train.gpu: READY for it works, for train not.
    w = mdp.Worker(b.endpoint, "train.gpu", lambda wk, a, body: body, keys=peer_keys(gpu_cert), heartbeat=0.5)
    wait_for("gpu worker", lambda: c.request("mmi.service", "train.gpu") == [b"200"])
    w.close()
    w2 = mdp.Worker(b.endpoint, "train", lambda wk, a, body: body, keys=peer_keys(gpu_cert), heartbeat=0.5)
    check(w2.sock.poll(30000), "refused READY answered")
    check(w2.sock.recv_multipart() == [b"", b"MDPW01", b"\x05"], "DISCONNECT for a service the key may not serve")
    w2.close()
    check(c.request("mmi.service", "train") == [b"404"], "no train worker")
    st, stats = mmi(c, "stats")
    check(stats["not_allowed"] >= 1, "not_allowed counted")

    # A full titanic round trip over CURVE.
    w3 = mdp.Worker(b.endpoint, "train.gpu", lambda wk, a, body: [x.upper() for x in body],
                    keys=peer_keys(gpu_cert), heartbeat=0.5)
    jid = c.request("titanic.request", "train.gpu", b"secret work")[1]
    w3.serve(max_requests=1)
    r = wait_for("result", lambda: (lambda r: r if r[0] == b"200" else None)(c.request("titanic.reply", jid)))
    check(r[1:] == [b"SECRET WORK"], "curve job result %r" % r)
    w3.close()
finally:
    b.stop()
print("ok")
