#!/usr/bin/python3
"""Stock Majordomo peers (tests/mdp.py, written from RFC 7/18/8/9 in Python)
work with bin/broker unchanged: direct requests, titanic request/reply/close,
mmi.*, MDP 0.2 partial replies as progress, events on the PUB socket."""
import threading
import time

import msgpack
import zmq

from broker_harness import Broker, check, fail, mmi, wait_for
import mdp

# The guide's heartbeat (2.5 s) on both sides: nothing tuned for the test.
b = Broker("mdp", env={"PREDICTORS_BROKER_HEARTBEAT": "2.5s"})
try:
    ctx = zmq.Context.instance()
    events = ctx.socket(zmq.SUB)
    events.setsockopt(zmq.SUBSCRIBE, b"")
    events.connect(b.events)

    stop = threading.Event()

    def run_worker(service, handler, version=1):
        w = mdp.Worker(b.endpoint, service, handler, version=version)
        while not stop.is_set():
            w.serve(stop_after=0.2)
        w.close()

    threads = [threading.Thread(target=run_worker, args=("echo", lambda w, a, body: body)),
               threading.Thread(target=run_worker, args=("upper", lambda w, a, body: [x.upper() for x in body])),
               threading.Thread(target=run_worker, args=("prog", mdp._handler_for("partial"), 2))]
    for t in threads:
        t.start()

    c = mdp.Client(b.endpoint, timeout=30)   # a slow reply is not a lost one: no needless resend
    wait_for("workers", lambda: mmi(c, "service", "prog")[0] == "200" and mmi(c, "service", "echo")[0] == "200")

    # Direct request, several body frames, through a stock client.
    r = c.request("upper", b"hello", b"world")
    check(r == [b"HELLO", b"WORLD"], "direct request: %r" % r)

    # Titanic.
    r = c.request("titanic.request", "echo", b"durable", b"job")
    check(r[0] == b"200" and len(r[1]) == 32, "titanic.request: %r" % r)
    jid = r[1]

    def collected():
        r = c.request("titanic.reply", jid)
        check(r[0] in (b"200", b"300"), "titanic.reply: %r" % r)
        return r if r[0] == b"200" else None
    r = wait_for("titanic reply", collected)
    check(r[1:] == [b"durable", b"job"], "titanic body: %r" % r)
    st, job = mmi(c, "job", jid)
    check(st == "200" and job["state"] == "done" and job["service"] == "echo", "mmi.job: %r" % job)
    check(c.request("titanic.close", jid) == [b"200"], "titanic.close")
    check(c.request("titanic.reply", jid) == [b"400"], "reply after close is 400")
    check(c.request("titanic.close", jid) == [b"200"], "close is idempotent")
    check(c.request("titanic.reply", "0" * 32) == [b"400"], "unknown id is 400")

    # No worker yet: accepted, pending.
    r = c.request("titanic.request", "nobody.yet", b"x")
    check(r[0] == b"200", "request for a service without workers is accepted")
    check(c.request("titanic.reply", r[1]) == [b"300"], "pending is 300")
    st, q = mmi(c, "queues")
    check(st == "200" and q["nobody.yet"]["queued"] == 1, "mmi.queues: %r" % q)

    # MMI
    check(mmi(c, "service", "echo")[0] == "200", "mmi.service echo")
    check(mmi(c, "service", "nobody.yet")[0] == "404", "mmi.service 404")
    check(c.request("mmi.nonsense") == [b"501"], "unknown mmi is 501")
    st, ws = mmi(c, "workers")
    check(st == "200" and sorted(w["service"] for w in ws) == ["echo", "prog", "upper"], "mmi.workers: %r" % ws)
    check({w["proto"] for w in ws} == {"MDPW01", "MDPW02"}, "protocols: %r" % ws)

    # MDP 0.2 worker with PARTIAL progress: events and mmi.job.
    r = c.request("titanic.request", "prog", b"{}")
    pid = r[1].decode()
    seen = []
    deadline = time.time() + 60     # a sanitizer build on a loaded machine
    while time.time() < deadline and "done" not in [e for e, _ in seen]:
        if events.poll(200):
            topic, body = events.recv_multipart()
            ev = msgpack.unpackb(body, raw=False)
            check(ev["v"] == 1 and ev["ev"] == topic.decode(), "event shape %r" % ev)
            if ev.get("id") == pid:
                seen.append((ev["ev"], ev))
    names = [e for e, _ in seen]
    check(names.count("progress") == 3 and "leased" in names and "done" in names, "events: %r" % names)
    prog = [ev for e, ev in seen if e == "progress"][-1]
    check(msgpack.unpackb(prog["body"], raw=False)["percent"] == 75, "progress body")
    st, job = mmi(c, "job", pid)
    check(job["state"] == "done" and msgpack.unpackb(job["progress"], raw=False)["percent"] == 75, "mmi.job progress")

    # MDP 0.2 client: partials then final.
    c2 = mdp.Client(b.endpoint, version=2, timeout=60)
    parts = []
    c2.send("prog", b"{}")
    final = c2.recv(partials=parts)
    check(final is not None and len(parts) == 3, "0.2 client partials=%d final=%r" % (len(parts), final))
    check(msgpack.unpackb(final[0], raw=False)["status"] == "done", "0.2 final")
    st, stats = mmi(c, "stats")
    check(stats["done"] >= 4 and stats["bad_frames"] == 0, "stats %r" % stats)

    stop.set()
    for t in threads:
        t.join()
finally:
    rc = b.stop()
check(rc == 0, "SIGTERM exit status %s" % rc)
check("journal synced" in b.log(), "clean stop logged")
check("curve=off" in b.log() and "recovered=0" in b.log(), "start line")
print("ok")
