#!/usr/bin/python3
"""Many hosts on one machine: network namespaces joined by veth pairs to a bridge that lives
in a namespace of its own, so no packet touches the machine's real interfaces.

  lan (bridge br0)
   |-- broker  10.77.0.1   bin/broker (CURVE on, allow-list directory), bin/monitor, redis-server
   |-- gpu1    10.77.0.11  worker for "train" (key limited to train)
   |-- gpu2    10.77.0.12  worker for "train" (key limited to train)
   |-- cloud   10.77.0.21  worker for "fetch" (key limited to fetch)
   |-- ops     10.77.0.31  the client that submits the pipeline (this script, after setns)
   `-- rogue   10.77.0.41  a worker whose key is not allowed

It proves: CURVE keys generated with `broker --keygen`; a two-step pipeline (fetch on the
cloud host, then train on a GPU host with the fetch output) run through titanic.*; a worker
without an allowed key is refused; a key added to the allow-list while the broker runs is
admitted and one removed is refused on its next connection (no broker restart); a GPU
host's link cut mid-job: the lease runs out, the job is leased to the other GPU host and
completes; the monitor (CURVE client for mmi.*) shows it all in Redis. Then it tears every
namespace down.

The fetch and train workers are stock Majordomo peers (tests/mdp.py) with CURVE keys; a
Predictors worker (bin/worker-testkit, the worker runtime with worker.curve_*) serves "echo"
on the cloud host with an allowed key and does a job, while the same program on the rogue
host with a key that is not allowed never registers (tests/t_sched_curve.sh covers sched)."""
import ctypes
import os
import shutil
import signal
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from broker_harness import BIN, TMP, check, fail, wait_for  # noqa: E402

if os.geteuid() != 0 or not shutil.which("ip"):
    print("needs root and iproute2 to create network namespaces")
    sys.exit(77)

TAG = "%x" % (os.getpid() & 0xffff)
HOSTS = {"broker": "10.77.0.1", "gpu1": "10.77.0.11", "gpu2": "10.77.0.12", "cloud": "10.77.0.21",
         "ops": "10.77.0.31", "rogue": "10.77.0.41"}
LAN = "prlan" + TAG
KEYS = os.path.join(TMP, "keys")
ALLOW = os.path.join(TMP, "allow")
procs = []


def ns(host):
    return "pr%s%s" % (host, TAG)


def sh(*args, check_rc=True):
    r = subprocess.run(list(args), capture_output=True, text=True, timeout=60)
    if check_rc and r.returncode != 0:
        fail("%s: %s" % (" ".join(args), r.stderr.strip()))
    return r.stdout.strip()


def in_ns(host, *args):
    return ["ip", "netns", "exec", ns(host)] + list(args)


def spawn(host, name, args, env=None):
    log = open(os.path.join(TMP, name + ".log"), "a")
    e = dict(os.environ)
    e.update(env or {})
    p = subprocess.Popen(in_ns(host, *args), stdout=log, stderr=log, env=e)
    procs.append(p)
    return p


def teardown():
    for p in procs:
        if p.poll() is None:
            p.send_signal(signal.SIGTERM)
    for p in procs:
        try:
            p.wait(10)
        except subprocess.TimeoutExpired:
            p.kill()
    for h in HOSTS:
        subprocess.run(["ip", "netns", "del", ns(h)], capture_output=True)
    subprocess.run(["ip", "netns", "del", LAN], capture_output=True)


def keygen(name, services=None):
    args = [os.path.join(BIN, "broker"), "--keygen", os.path.join(KEYS, name)]
    if services:
        args += ["--services", services]
    sh(*args)
    st = os.stat(os.path.join(KEYS, name + "_secret"))
    check(st.st_mode & 0o077 == 0, "secret key %s is private (mode %o)" % (name, st.st_mode & 0o777))


def allow(name):
    shutil.copy(os.path.join(KEYS, name), os.path.join(ALLOW, name + ".cert"))


def worker(host, name, service, mode, version=1):
    return spawn(host, name, [sys.executable, os.path.join(os.path.dirname(os.path.abspath(__file__)), "mdp.py"),
                              "worker", "tcp://%s:5555" % HOSTS["broker"], service, "--mode", mode] +
                 (["--v2"] if version == 2 else []) +
                 ["--keys", os.path.join(KEYS, name), os.path.join(KEYS, "broker")])


probe = subprocess.run(["ip", "netns", "add", LAN], capture_output=True, text=True)
if probe.returncode != 0:
    print("cannot create network namespaces here (%s)" % probe.stderr.strip())
    sys.exit(77)
try:
    # ---------------------------------------------------------------- the network
    sh("ip", "-n", LAN, "link", "add", "br0", "type", "bridge")
    sh("ip", "-n", LAN, "link", "set", "br0", "up")
    for h, addr in HOSTS.items():
        sh("ip", "netns", "add", ns(h))
        sh("ip", "-n", ns(h), "link", "set", "lo", "up")
        sh("ip", "-n", ns(h), "link", "add", "eth0", "type", "veth", "peer", "name", "p-" + h, "netns", LAN)
        sh("ip", "-n", ns(h), "addr", "add", addr + "/24", "dev", "eth0")
        sh("ip", "-n", ns(h), "link", "set", "eth0", "up")
        sh("ip", "-n", LAN, "link", "set", "p-" + h, "master", "br0", "up")
    routes = sh(*in_ns("gpu1", "ip", "route"))
    check("default" not in routes, "hosts have no way out of the lab: %s" % routes)

    # ---------------------------------------------------------------- keys
    os.makedirs(KEYS)
    os.makedirs(ALLOW)
    keygen("broker")
    keygen("gpu1", "train")
    keygen("gpu2", "train")
    keygen("cloud", "fetch")
    keygen("ops")
    keygen("monitor")
    keygen("rogue", "train")
    keygen("late", "fetch")
    keygen("kit", "echo")
    for k in ("gpu1", "gpu2", "cloud", "ops", "monitor", "kit"):
        allow(k)

    # ---------------------------------------------------------------- broker host
    redis_port = 6390
    spawn("broker", "redis", ["redis-server", "--port", str(redis_port), "--bind", "127.0.0.1", "--save", "",
                              "--appendonly", "no"])
    broker_env = {"PREDICTORS_BROKER_CURVE_SECRET": os.path.join(KEYS, "broker"),
                  "PREDICTORS_BROKER_CURVE_ALLOW": ALLOW, "PREDICTORS_BROKER_SERVICE_LEASE": "train=8s,fetch=8s",
                  "PREDICTORS_BROKER_RETRY_BASE": "0.1s", "PREDICTORS_BROKER_RETRY_MAX": "0.5s"}
    b = spawn("broker", "broker", [os.path.join(BIN, "broker"), "--bind", "tcp://%s:5555" % HOSTS["broker"],
                                   "--events", "tcp://127.0.0.1:5556", "--journal", os.path.join(TMP, "journal")],
              env=broker_env)
    blog = os.path.join(TMP, "broker.log")
    wait_for("broker listening", lambda: "broker listening" in open(blog).read() or b.poll() is not None)
    check(b.poll() is None and "curve=on" in open(blog).read(), "broker runs with CURVE:\n" + open(blog).read())
    mon_env = {"REDIS_URL": "redis://127.0.0.1:%d/0" % redis_port, "PREDICTORS_BROKER": "tcp://%s:5555" % HOSTS["broker"],
               "PREDICTORS_BROKER_EVENTS": "tcp://127.0.0.1:5556", "PREDICTORS_MONITOR_PORT": "9464",
               "PREDICTORS_MONITOR_CATCHUP": "0.5s", "PREDICTORS_MONITOR_CURVE_SECRET": os.path.join(KEYS, "monitor"),
               "PREDICTORS_MONITOR_CURVE_SERVER": os.path.join(KEYS, "broker"),
               "DATABASE_URL": "postgresql://nobody@127.0.0.1:1/none"}
    spawn("broker", "monitor", [os.path.join(BIN, "monitor")], env=mon_env)

    def rcli(*args):
        return sh(*in_ns("broker", "redis-cli", "-p", str(redis_port), "--raw", *args), check_rc=False)

    # ---------------------------------------------------------------- workers on their hosts
    worker("gpu1", "gpu1", "train", "sleep:6")
    worker("cloud", "cloud", "fetch", "upper")
    worker("rogue", "rogue", "train", "echo")
    late = worker("cloud", "late", "fetch", "echo")         # a new host's key, not allowed yet

    # ---------------------------------------------------------------- the client host
    libc = ctypes.CDLL("libc.so.6", use_errno=True)
    fd = os.open("/var/run/netns/" + ns("ops"), os.O_RDONLY)
    if libc.setns(fd, 0x40000000) != 0:                     # CLONE_NEWNET, before any ZeroMQ context
        fail("setns: %s" % os.strerror(ctypes.get_errno()))
    os.close(fd)
    import mdp  # noqa: E402
    ops = mdp.load_cert(os.path.join(KEYS, "ops_secret"))
    keys = {"public": ops["public"], "secret": ops["secret"], "server": mdp.load_cert(os.path.join(KEYS, "broker"))["public"]}
    c = mdp.Client("tcp://%s:5555" % HOSTS["broker"], timeout=5, keys=keys)

    def mmi(name, *args):
        import msgpack
        r = c.request("mmi." + name, *args)
        check(r is not None, "mmi.%s: no reply over CURVE" % name)
        return r[0].decode(), (msgpack.unpackb(r[1], raw=False) if len(r) > 1 else None)

    wait_for("train and fetch workers registered over CURVE",
             lambda: mmi("queues")[1].get("train", {}).get("workers") == 1 and mmi("service", "fetch")[0] == "200",
             timeout=30)
    time.sleep(3)
    check(mmi("queues")[1]["train"]["workers"] == 1, "the rogue key is refused: still 1 train worker")
    check(mmi("queues")[1]["fetch"]["workers"] == 1, "the late key is refused before it is allowed")
    # A client without an allowed key gets nothing at all.
    stranger = mdp.Client("tcp://%s:5555" % HOSTS["broker"], timeout=1, retries=1,
                          keys=dict(keys, **mdp.load_cert(os.path.join(KEYS, "rogue_secret"))))
    check(stranger.request("mmi.service", "train") is None, "a client with an unknown key gets no answer")
    stranger.close()

    # ---------------------------------------------------------------- the pipeline across hosts
    r = c.request("titanic.request", "fetch", b"prices-2026")
    check(r[0] == b"200", "submit fetch: %r" % r)
    fetch_id = r[1]
    fetched = wait_for("fetch done on the cloud host", lambda: (lambda x: x if x[0] == b"200" else None)(
        c.request("titanic.reply", fetch_id)), timeout=30)
    check(fetched[1:] == [b"PRICES-2026"], "fetch output: %r" % fetched)
    # gpu1 is the only trainer when the job is submitted, so it holds it; gpu2 joins, then
    # gpu1's link is cut (its worker keeps running, unaware).
    r = c.request("titanic.request", "train", b"model-on:" + fetched[1])
    train_id = r[1]
    wait_for("train leased to gpu1", lambda: mmi("job", train_id)[1]["state"] == "leased")
    first = mmi("job", train_id)[1]["worker"]
    worker("gpu2", "gpu2", "train", "sleep:6")
    wait_for("gpu2 registered", lambda: mmi("queues")[1]["train"]["workers"] == 2)
    check(mmi("job", train_id)[1]["state"] == "leased", "still running on gpu1 when its link is cut")
    sh("ip", "-n", ns("gpu1"), "link", "set", "eth0", "down")
    holder = "gpu1"
    wait_for("job re-leased to the other GPU host and done", lambda: mmi("job", train_id)[1]["state"] == "done",
             timeout=30)
    st, job = mmi("job", train_id)
    check(job["attempts"] >= 1, "the cut host's attempt counted: %r" % job)
    r = c.request("titanic.reply", train_id)
    check(r[0] == b"200" and r[1] == b"model-on:PRICES-2026", "train result after the cut: %r" % r)
    check("lease expired" in (job.get("last_error") or ""), "lease expiry recorded: %r" % job)

    # ---------------------------------------------------------------- our own worker runtime over CURVE
    kit_env = {"PREDICTORS_BROKER": "tcp://%s:5555" % HOSTS["broker"], "TESTKIT_STATE": os.path.join(TMP, "kit"),
               "PREDICTORS_ARTIFACTS_ROOT": os.path.join(TMP, "artifacts"),
               "PREDICTORS_WORKER_CURVE_SECRET": os.path.join(KEYS, "kit_secret"),
               "PREDICTORS_WORKER_CURVE_SERVER": os.path.join(KEYS, "broker")}
    testkit = os.path.join(BIN, "worker-testkit")
    spawn("rogue", "kit-rogue", [testkit, "--service", "echo"],
          env=dict(kit_env, PREDICTORS_WORKER_CURVE_SECRET=os.path.join(KEYS, "rogue_secret")))
    spawn("cloud", "kit", [testkit, "--service", "echo"], env=kit_env)
    wait_for("bin/worker-testkit registered over CURVE", lambda: mmi("service", "echo")[0] == "200", timeout=60)
    import msgpack
    import uuid
    body = {"v": 1, "id": uuid.uuid4().hex, "run": "multihost", "step": "kit", "attempt": 1, "deadline": 0,
            "service": "echo", "needs_gpu": False, "params": {"word": "curve"}}
    r = c.request("titanic.request", "echo", msgpack.packb(body))
    check(r[0] == b"200", "submit echo: %r" % r)
    kit_id = r[1]
    done = wait_for("echo done by the testkit on the cloud host", lambda: (lambda x: x if x[0] == b"200" else None)(
        c.request("titanic.reply", kit_id)), timeout=60)
    result = msgpack.unpackb(done[1], raw=False)
    check(result.get("status") == "done" and result.get("outputs", {}).get("param.word") == "curve",
          "testkit result over CURVE: %r" % (result,))
    check(mmi("queues")[1]["echo"]["workers"] == 1, "the rogue testkit (key not allowed) is not registered")
    ran = open(os.path.join(TMP, "kit", "executions.log")).read().splitlines()
    check(len(ran) == 1, "the echo job ran once, on the allowed worker: %r" % ran)
    check("curve=off" not in open(os.path.join(TMP, "kit-rogue.log")).read(), "the rogue testkit used its key")

    # ---------------------------------------------------------------- admit and revoke without restart
    # Admitting a host: copy its public certificate into the allow-list directory and start
    # its worker; czmq re-reads the directory at each handshake, so the broker runs on.
    late.kill()
    late.wait()
    allow("late")
    late = worker("cloud", "late", "fetch", "echo")
    wait_for("late key admitted without a broker restart", lambda: mmi("queues")[1]["fetch"]["workers"] == 2,
             timeout=30)
    # Revoking it: remove the certificate; its next connection is refused.
    os.remove(os.path.join(ALLOW, "late.cert"))
    late.kill()
    late.wait()
    wait_for("broker drops the stopped worker", lambda: mmi("queues")[1]["fetch"]["workers"] == 1, timeout=30)
    worker("cloud", "late", "fetch", "echo")
    time.sleep(3)
    check(mmi("queues")[1]["fetch"]["workers"] == 1, "the revoked key is refused on its next connection")
    # A key limited to train may not serve fetch (certificate metadata "services").
    before = mmi("stats")[1].get("not_allowed", 0)
    worker("gpu2", "gpu2", "fetch", "echo")
    wait_for("READY for a service the key may not serve refused",
             lambda: mmi("stats")[1].get("not_allowed", 0) > before, timeout=20)
    check(mmi("queues")[1]["fetch"]["workers"] == 1, "no fetch worker added by a train key")

    # ---------------------------------------------------------------- what the monitor saw
    wait_for("monitor recorded the re-lease", lambda: "lease expired" in (rcli("HGET", "pred:job:" + train_id.decode(),
                                                                               "last_error") or "")
             or rcli("HGET", "pred:job:" + train_id.decode(), "state") == "done", timeout=20)
    check(rcli("HGET", "pred:job:" + train_id.decode(), "state") == "done", "monitor: train job done")
    live = len(mmi("workers")[1])
    wait_for("monitor: the broker's %d workers, no ghost of gpu1" % live,
             lambda: int(rcli("ZCARD", "pred:workers") or 0) == live, timeout=20)
    stream = rcli("XRANGE", "pred:events", "-", "+").split("\n")
    leased_by = set()
    for i in range(len(stream)):
        if stream[i] == "id" and stream[i + 1] == train_id.decode() and "leased" in stream[max(0, i - 4):i]:
            j = stream.index("worker", i)
            leased_by.add(stream[j + 1])
    check(len(leased_by) == 2 and first.upper() in {w.upper() for w in leased_by},
          "monitor: the train job was leased by two workers, first %s: %r" % (first, leased_by))
    metrics = sh(*in_ns("broker", "curl", "-s", "http://127.0.0.1:9464/metrics"))
    check("predictors_broker_up 1" in metrics, "monitor talks mmi.* over CURVE")
    check('predictors_jobs_total{service="train",outcome="done"} 1' in metrics, "train done once in /metrics")
    print("ok: CURVE across namespaces, refused and admitted keys, link cut re-lease (holder %s), monitor view"
          % holder)
finally:
    teardown()
    left = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    if TAG in left:
        print("t_fail: namespaces left behind: " + left, file=sys.stderr)
        sys.exit(1)
