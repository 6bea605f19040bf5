#!/usr/bin/python3
"""Workers that die, hang, crash on a poison job, or refuse: the broker
re-leases, expires leases, dead-letters after the attempt limit, and lets a
person requeue or cancel. Workers are the stock Python MDP peers."""
import time

import msgpack

from broker_harness import Broker, shutdown, check, mmi, spawn_worker, wait_for
import mdp

b = Broker("workers", env={
    "PREDICTORS_BROKER_SERVICE_LEASE": "hang=1s,progress=1s",
    "PREDICTORS_BROKER_SERVICE_ATTEMPTS": "poison=3,flaky=2",
})
procs = []


def worker(service, *args):
    p = spawn_worker(b.endpoint, service, "--hb", "0.5", *args)
    procs.append(p)
    return p


def job(jid):
    st, j = mmi(c, "job", jid)
    check(st == "200", "mmi.job %s: %s" % (jid, st))
    return j


def submit(service, *body, options=()):
    r = c.request("titanic.request", *options, service, *body)
    check(r and r[0] == b"200", "submit: %r" % r)
    return r[1].decode()


def reply(jid):
    return c.request("titanic.reply", jid)


try:
    c = mdp.Client(b.endpoint, timeout=30)   # a slow reply is not a lost one: no needless resend

    # 1. kill -9 a worker mid-job: the job is re-leased and completes.
    slow = worker("slow", "--mode", "sleep:30")
    wait_for("slow worker", lambda: mmi(c, "service", "slow")[0] == "200")
    jid = submit("slow", b"payload")
    wait_for("lease", lambda: job(jid)["state"] == "leased")
    slow.kill()
    slow.wait()
    wait_for("job back from the dead worker", lambda: job(jid)["state"] in ("delayed", "queued"), timeout=60)
    check(job(jid)["attempts"] == 1, "the crash counts as an attempt")
    worker("slow", "--mode", "echo")
    r = wait_for("completion after re-lease", lambda: reply(jid)[0] == b"200" and reply(jid))
    check(r[1:] == [b"payload"], "re-leased job result %r" % r)
    print("1 ok: worker killed mid-job, job re-leased and done")

    # 2. A worker that hangs past its lease (a stock worker does not
    #    heartbeat while busy): the lease expires, the job is re-queued.
    worker("hang", "--mode", "hang")
    wait_for("hang worker", lambda: mmi(c, "service", "hang")[0] == "200")
    jid = submit("hang", b"h")
    wait_for("lease", lambda: job(jid)["state"] == "leased")
    wait_for("lease expiry", lambda: job(jid)["last_error"] == "lease expired", timeout=60)
    worker("hang", "--mode", "echo")
    wait_for("hung job done elsewhere", lambda: reply(jid)[0] == b"200")
    st, stats = mmi(c, "stats")
    check(stats["lease_expired"] >= 1, "lease_expired counted")
    print("2 ok: hung worker lost its lease, job done by another")

    # 3. A poison job that crashes every worker: dead after 3 attempts, not
    #    looping; listed in mmi.dead with its error; requeue brings it back.
    jid = submit("poison", b"poison")
    deadline = time.time() + 60
    crashes = 0
    while time.time() < deadline and job(jid)["state"] != "dead":
        if not any(p.poll() is None for p in procs if p.args[4] == "poison"):
            worker("poison", "--mode", "crash")
            crashes += 1
        time.sleep(0.1)
    j = job(jid)
    check(j["state"] == "dead" and j["attempts"] == 3, "poison job: %r" % j)
    time.sleep(1.0)
    check(job(jid)["state"] == "dead", "stays dead")
    r = reply(jid)
    check(r[0] == b"200", "titanic.reply on dead: %r" % r)
    res = msgpack.unpackb(r[1], raw=False)
    check(res["status"] == "fail" and res["error"]["code"] == "dead" and res["v"] == 1, "dead result %r" % res)
    st, dead = mmi(c, "dead")
    check(st == "200" and any(d["id"] == jid and d["attempts"] == 3 for d in dead), "mmi.dead %r" % dead)
    st, dead = mmi(c, "dead", "poison")
    check(len(dead) == 1, "mmi.dead by service")
    check(c.request("mmi.requeue", jid) == [b"200"], "requeue")
    check(c.request("mmi.requeue", jid) == [b"409"], "requeue twice is 409")
    for p in procs:
        if p.args[4] == "poison":
            p.kill()
    worker("poison", "--mode", "echo")
    wait_for("requeued job done", lambda: reply(jid)[0] == b"200")
    print("3 ok: poison job dead after %d crashes, requeued, done" % crashes)

    # 4. Our result map: "fail" is permanent, "retry" retries up to the limit.
    worker("refuse", "--mode", "fail")
    jid = submit("refuse", b"x")
    wait_for("permanent failure", lambda: job(jid)["state"] == "dead")
    check(job(jid)["attempts"] == 1 and "bad_params" in job(jid)["last_error"], "fail: %r" % job(jid))
    worker("flaky", "--mode", "retry")
    jid = submit("flaky", b"x")
    wait_for("retries used up", lambda: job(jid)["state"] == "dead")
    check(job(jid)["attempts"] == 2 and "busy" in job(jid)["last_error"], "retry: %r" % job(jid))
    jid = submit("flaky", b"x", options=("attempts=3", "priority=5"))
    wait_for("retries used up", lambda: job(jid)["state"] == "dead")
    check(job(jid)["attempts"] == 3 and job(jid)["priority"] == 5, "per-job attempts %r" % job(jid))
    print("4 ok: fail is permanent, retry is bounded")

    # 5. Cancel: a queued job, then a running one (its worker is told).
    jid = submit("nobody", b"x")
    check(c.request("mmi.cancel", jid) == [b"200"], "cancel queued")
    check(c.request("mmi.cancel", jid) == [b"409"], "cancel twice")
    check(c.request("mmi.cancel", "f" * 32) == [b"404"], "cancel unknown")
    res = msgpack.unpackb(reply(jid)[1], raw=False)
    check(res["error"]["code"] == "cancelled", "cancelled result %r" % res)
    worker("long", "--mode", "sleep:2")
    jid = submit("long", b"x")
    wait_for("lease", lambda: job(jid)["state"] == "leased")
    check(c.request("mmi.cancel", jid) == [b"200"], "cancel leased")
    time.sleep(2.5)
    check(job(jid)["state"] == "cancelled", "late reply discarded: %r" % job(jid))
    st, stats = mmi(c, "stats")
    check(stats["cancelled"] == 2, "cancel counted %r" % stats)
    # titanic.close of an unfinished job cancels it.
    jid = submit("nobody", b"y", options=("delay=60",))
    check(job(jid)["state"] == "delayed", "delay option")
    check(c.request("titanic.close", jid) == [b"200"], "close pending")
    check(c.request("mmi.job", jid) == [b"404"], "closed job forgotten")
    print("5 ok: cancel and close")
    # 6. A busy worker that heartbeats, then goes silent, loses its job after
    #    liveness x heartbeat; one that sends progress keeps a lease longer
    #    than the lease timeout.
    import zmq
    ctx = zmq.Context.instance()
    raw = ctx.socket(zmq.DEALER)
    raw.linger = 0
    raw.connect(b.endpoint)
    raw.send_multipart([b"", b"MDPW01", b"\x01", b"quiet"])
    jid = submit("quiet", b"x")
    while True:
        check(raw.poll(30000), "request reaches the raw worker")
        msg = raw.recv_multipart()
        if msg[2] == b"\x02":
            break
    raw.send_multipart([b"", b"MDPW01", b"\x04"])        # heartbeat while busy, then nothing
    wait_for("silent busy worker expired", lambda: job(jid)["last_error"] == "worker silent while busy", timeout=60)
    check(c.request("mmi.cancel", jid) == [b"200"], "cancel")
    raw.close()
    v2 = ctx.socket(zmq.DEALER)
    v2.linger = 0
    v2.connect(b.endpoint)
    v2.send_multipart([b"MDPW02", b"\x01", b"progress"])  # lease 1 s
    jid = submit("progress", b"long")
    while True:
        check(v2.poll(30000), "request reaches the v2 worker")
        msg = v2.recv_multipart()
        if msg[1] == b"\x02":
            break
    address = msg[2]
    for pct in range(6):                                    # 3 s of progress, 3x the lease
        v2.send_multipart([b"MDPW02", b"\x03", address, b"", b"progress"])
        time.sleep(0.5)
    check(job(jid)["state"] == "leased" and job(jid)["attempts"] == 0, "progress extends the lease: %r" % job(jid))
    v2.send_multipart([b"MDPW02", b"\x04", address, b"", b"finished"])
    wait_for("done", lambda: job(jid)["state"] == "done")
    check(reply(jid) == [b"200", b"finished"], "v2 final")
    v2.close()
    print("6 ok: silent busy worker expired; progress extends a lease")
finally:
    shutdown(procs, b)
print("ok")
