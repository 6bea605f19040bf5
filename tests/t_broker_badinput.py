#!/usr/bin/python3
"""Every bad input the broker issue lists gets an error reply or a logged
rejection and a counter, and the broker keeps serving without losing what
it accepted: garbage frames, wrong protocol header, unknown command, REPLY
without a request, second READY, truncated and oversize msgpack, titanic.reply
for an unknown id, a client that vanishes mid-request, a journal with a
flipped byte or a torn last record."""
import glob
import os
import threading
import time

import msgpack
import zmq

from broker_harness import Broker, shutdown, check, mmi, spawn_worker, wait_for
import mdp

# Retries wait 30-60 s: a job whose result was malformed stays delayed (attempts 1) while
# the test looks at it, instead of going back to a test worker that no longer serves.
b = Broker("bad", env={"PREDICTORS_BROKER_MAX_MESSAGE": "64KiB", "PREDICTORS_BROKER_MAX_FRAMES": "16",
                       "PREDICTORS_BROKER_RETRY_BASE": "60s", "PREDICTORS_BROKER_RETRY_MAX": "60s"})
ctx = zmq.Context.instance()
procs = []


def raw():
    s = ctx.socket(zmq.DEALER)
    s.linger = 0
    s.connect(b.endpoint)
    return s


def recv(s, timeout=30.0):
    """The next message on S, skipping broker HEARTBEATs (MDP allows one at any time to a
    registered worker); None after TIMEOUT s (generous: a sanitizer build under load)."""
    deadline = time.time() + timeout
    while s.poll(max(0, int((deadline - time.time()) * 1000))):
        m = s.recv_multipart()
        if m != [b"", b"MDPW01", b"\x04"]:
            return m
    return None


def stats():
    return mmi(c, "stats")[1]


def still_serving():
    r = c.request("echo", b"still", b"here")
    check(r == [b"still", b"here"], "broker stopped serving: %r" % r)


def counter_grew(name, before):
    wait_for("counter %s" % name, lambda: stats()[name] > before[name], timeout=30)


try:
    procs.append(spawn_worker(b.endpoint, "echo", "--hb", "0.5"))
    c = mdp.Client(b.endpoint, timeout=30)   # a slow reply is not a lost one: no needless resend
    wait_for("echo worker", lambda: mmi(c, "service", "echo")[0] == "200")
    s0 = stats()

    # Garbage frames and a wrong protocol header: dropped and counted.
    g = raw()
    g.send_multipart([b"GET / HTTP/1.1\r\n\r\n"])
    g.send_multipart([b"", b"MDPX01", b"echo", b"x"])
    g.send_multipart([b"\x00\xff" * 100, b"junk", b"", b""])
    counter_grew("bad_frames", s0)
    check(stats()["bad_frames"] >= s0["bad_frames"] + 3, "three bad_frames counted")
    still_serving()

    # A client request without a service frame: 500 in kind.
    g.send_multipart([b"", b"MDPC01"])
    r = recv(g)
    check(r and r[3] == b"500" and b"service" in r[4], "client without service: %r" % r)

    # Unknown worker command: DISCONNECT.
    s1 = stats()
    w = raw()
    w.send_multipart([b"", b"MDPW01", b"\x09"])
    r = recv(w)
    check(r == [b"", b"MDPW01", b"\x05"], "unknown command answered %r" % r)
    counter_grew("bad_command", s1)

    # REPLY without a request, HEARTBEAT before READY: DISCONNECT.
    w2 = raw()
    w2.send_multipart([b"", b"MDPW01", b"\x03", b"0" * 32, b"", b"result"])
    check(recv(w2) == [b"", b"MDPW01", b"\x05"], "REPLY without request")
    w3 = raw()
    w3.send_multipart([b"", b"MDPW01", b"\x04"])
    check(recv(w3) == [b"", b"MDPW01", b"\x05"], "HEARTBEAT before READY")
    # Second READY: DISCONNECT, and the worker is forgotten. The worker heartbeats while we
    # wait, so that the broker (liveness 3 x 0.5 s) does not drop it as silent first; should a
    # loaded machine stall us that long anyway, the broker's log says so (the second READY was
    # then a first one): try again with a new worker, at most 5 times.
    hb = [b"", b"MDPW01", b"\x04"]
    for attempt in range(5):
        wait_for("no twice worker left", lambda: mmi(c, "service", "twice")[0] == "404")
        silent = b.log().count('service=twice reason="worker silent"')
        w4 = raw()
        w4.send_multipart([b"", b"MDPW01", b"\x01", b"twice"])
        wait_for("registered", lambda: w4.send_multipart(hb) or mmi(c, "service", "twice")[0] == "200")
        w4.send_multipart(hb)
        w4.send_multipart([b"", b"MDPW01", b"\x01", b"twice"])
        r = recv(w4)
        forgotten = mmi(c, "service", "twice")[0] == "404"
        if b.log().count('service=twice reason="worker silent"') == silent:
            break
        print("second READY: the broker dropped the silent worker first (a stalled test); again")
        w4.close(linger=0)
    check(r == [b"", b"MDPW01", b"\x05"], "second READY")
    check(forgotten, "worker forgotten after second READY")
    # A worker may not register for the broker's own services.
    w5 = raw()
    w5.send_multipart([b"", b"MDPW01", b"\x01", b"titanic.request"])
    check(recv(w5) == [b"", b"MDPW01", b"\x05"], "READY for titanic.request refused")
    check(stats()["unexpected"] >= s1["unexpected"] + 3 and stats()["not_allowed"] >= 1, "counted")
    still_serving()

    # Oversize: too many frames, too many bytes in all.
    s2 = stats()
    g.send_multipart([b"", b"MDPC01", b"echo"] + [b"x"] * 20)
    g.send_multipart([b"", b"MDPC01", b"echo"] + [b"y" * 30000] * 3)
    wait_for("oversize", lambda: stats()["oversize"] >= s2["oversize"] + 2)
    # An oversize titanic body is refused the same way, and nothing is queued.
    g.send_multipart([b"", b"MDPC01", b"titanic.request", b"echo"] + [b"z" * 30000] * 3)
    wait_for("oversize", lambda: stats()["oversize"] >= s2["oversize"] + 3)
    check(recv(g, 0.5) is None, "no reply to an oversize message")
    still_serving()

    # Truncated and trailing-byte msgpack results from a worker: rejected by
    # the strict decoder, counted, a failed attempt; the broker serves on.
    good = msgpack.packb({"v": 1, "id": "x", "status": "done", "outputs": {}, "metrics": {}})
    bodies = [good[:-3], good + b"\xc1", msgpack.packb({"v": 1, "id": "x", "status": "done", "extra": 1})]
    for body in bodies:
        s3 = stats()
        r = c.request("titanic.request", "trunc", b"job")   # queued first: the worker serves at once
        jid = r[1]
        bw = mdp.Worker(b.endpoint, "trunc", lambda wk, a, body_, out=body: [out], heartbeat=0.5)
        bw.serve(max_requests=1)
        until = time.time() + 60
        while mmi(c, "job", jid)[1]["attempts"] != 1 and time.time() < until:
            time.sleep(0.05)
        j = mmi(c, "job", jid)[1]
        check(j["attempts"] == 1, "one failed attempt: %r" % j)
        err = mmi(c, "job", jid)[1]["last_error"]
        check(err.startswith("malformed result"), "error: %r" % err)
        check(stats()["bad_result"] == s3["bad_result"] + 1, "bad_result counted")
        check(c.request("mmi.cancel", jid) == [b"200"], "cancel")
        # Leave cleanly: a closed socket still registered would get the next job and lose it.
        bw._send(bw._cmd("DISCONNECT"))
        wait_for("trunc worker gone", lambda: mmi(c, "service", "trunc")[0] == "404")
        bw.close()
    check("does not decode" in b.log(), "malformed result logged")

    # Bad titanic requests: 500 with a reason; unknown id: 400.
    r = c.request("titanic.request")
    check(r[0] == b"500" and b"service name missing" in r[1], "no service: %r" % r)
    r = c.request("titanic.request", "priority=high", "echo", b"x")
    check(r[0] == b"500" and b"bad option" in r[1], "bad option: %r" % r)
    r = c.request("titanic.request", "bad service!", b"x")
    check(r[0] == b"500", "bad service name: %r" % r)
    r = c.request("titanic.request", "mmi.queues", b"x")
    check(r[0] == b"500" and b"reserved" in r[1], "reserved: %r" % r)
    r = c.request("titanic.reply", "not-an-id")
    check(r[0] == b"500", "bad id: %r" % r)
    check(c.request("titanic.reply", "a" * 32) == [b"400"], "unknown id 400")
    check(c.request("titanic.nonsense") == [b"501"], "unknown titanic name 501")
    check(c.request("mmi.job", "x", "y")[0] == b"500", "mmi with too many frames")
    check(stats()["bad_request"] >= 5, "bad_request counted")

    # A client that vanishes mid-request.
    procs.append(spawn_worker(b.endpoint, "slowecho", "--hb", "0.5", "--mode", "sleep:1"))
    wait_for("slow worker", lambda: mmi(c, "service", "slowecho")[0] == "200")
    s4 = stats()
    v = raw()
    v.send_multipart([b"", b"MDPC01", b"slowecho", b"bye"])
    # Vanish only once the request is with the worker (closing with linger 0 earlier could drop it unsent).
    wait_for("request dispatched", lambda: stats()["dispatched"] > s4["dispatched"], timeout=60)
    v.close(linger=0)
    wait_for("reply to a vanished client counted", lambda: stats()["send_failed"] > s4["send_failed"], timeout=60)
    still_serving()

    # Accepted durable jobs for the journal damage checks.
    ids = [c.request("titanic.request", "later", b"job-%d" % i)[1] for i in range(20)]
    check(b.stop() == 0, "clean stop")

    # A torn last record: cut, logged; everything accepted is still there.
    seg = sorted(glob.glob(os.path.join(b.journal, "*.jnl")))[-1]
    with open(seg, "ab") as f:
        f.write(b"\x40\x00\x00\x00\x12\x34")      # a record header cut short
    b.start()
    check("cutting torn or corrupt tail" in b.log(), "torn tail logged")
    for jid in ids:
        check(c.request("titanic.reply", jid) == [b"300"], "job %s survived the torn tail" % jid)
    check(stats()["journal_cut"] >= 1, "journal_cut counted")
    check(b.stop() == 0, "clean stop")

    # A flipped byte inside one record: that record is skipped, the rest kept.
    seg = sorted(glob.glob(os.path.join(b.journal, "*.jnl")))[-1]
    data = bytearray(open(seg, "rb").read())
    at = data.find(b"job-7")
    check(at > 0, "record of job-7 found in the journal")
    data[at] ^= 0xff
    open(seg, "wb").write(bytes(data))
    b.start()
    check("corrupt records skipped" in b.log(), "flipped byte logged")
    alive = sum(1 for jid in ids if c.request("titanic.reply", jid) == [b"300"])
    check(alive == 19, "all but the damaged job survived: %d" % alive)
finally:
    shutdown(procs, b)
print("ok")
