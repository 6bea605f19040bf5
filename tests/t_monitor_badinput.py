#!/usr/bin/python3
"""Bad input to bin/monitor, each handled with a clear error and nothing
crashing: malformed events (from a publisher of our own standing in for a
broken broker), an HTTP request with a huge header, paths outside the
dashboard, actions without a token configured, with a missing or wrong
token, with a bad body; and the right token really requeues a dead job
through the real broker. The compiled-in page matches monitoring/www/."""
import os
import socket
import subprocess
import sys
import time

import msgpack
import zmq

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from broker_harness import Broker, check, fail, free_port, mmi, spawn_worker, wait_for  # noqa: E402
from monitor_harness import Monitor, Redis  # noqa: E402
import mdp  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))

# 0. The page compiled into the monitor is the one in monitoring/www/.
gen = subprocess.run([os.path.join(HERE, "..", "monitoring", "gen_assets.sh")], capture_output=True, text=True)
check(gen.returncode == 0, "gen_assets.sh failed: " + gen.stderr)
committed = open(os.path.join(HERE, "..", "monitoring", "mn_assets.c")).read()
check(gen.stdout == committed, "monitoring/mn_assets.c is stale: run monitoring/gen_assets.sh > monitoring/mn_assets.c")

redis = Redis()
ctx = zmq.Context.instance()

# 1. Malformed events from a publisher of our own.
pub = ctx.socket(zmq.PUB)
pub_port = free_port()
pub.bind("tcp://127.0.0.1:%d" % pub_port)


class FakeBrokerEndpoints:
    endpoint = "tcp://127.0.0.1:%d" % free_port()      # nobody answers mmi.*
    events = "tcp://127.0.0.1:%d" % pub_port


m = Monitor(redis.url, FakeBrokerEndpoints, name="monitor-events")
try:
    good = msgpack.packb({"v": 1, "ev": "worker.up", "t": int(time.time() * 1e6), "service": "probe",
                          "worker": "AB01", "proto": "MDPW01"})
    # The SUB connects asynchronously: publish the good event until it shows.
    wait_for("monitor subscribed", lambda: pub.send_multipart([b"worker.up", good]) or
             redis.cli("EXISTS", "pred:worker:AB01") == "1")
    bad = [
        [b"queued"],                                                    # one frame
        [b"queued", b"\x81", b"extra"],                                 # three frames
        [b"queued", b"\xc1\xc1\xc1"],                                   # not msgpack
        [b"queued", msgpack.packb([1, 2, 3])],                          # not a map
        [b"queued", msgpack.packb({"v": 2, "ev": "queued", "t": 1})],   # wrong version
        [b"queued", msgpack.packb({"v": 1, "ev": "queued", "t": 1, "id": "zz", "service": "x", "attempt": 0})],
        [b"done", msgpack.packb({"v": 1, "ev": "queued", "t": 1, "id": "0" * 32, "service": "x", "attempt": 0})],
        [b"done", msgpack.packb({"v": 1, "ev": "done", "t": 1, "id": "0" * 32, "service": "x"})],  # no worker
        [b"queued", msgpack.packb({"v": 1, "ev": "queued", "t": "soon", "id": "0" * 32, "service": "x",
                                   "attempt": 0})],
        [b"queued", msgpack.packb({"v": 1, "ev": "queued", "t": 1, "id": "0" * 32, "service": "x",
                                   "attempt": 0}) + b"\x00"],                                       # trailing
        [b"queued", b"\xdf\xff\xff\xff\xff"],                           # map claiming 4 G entries
    ]
    for frames in bad:
        pub.send_multipart(frames)
    good2 = msgpack.packb({"v": 1, "ev": "worker.up", "t": int(time.time() * 1e6), "service": "probe",
                           "worker": "AB02", "proto": "MDPW02"})
    pub.send_multipart([b"worker.up", good2])
    wait_for("good event after the bad ones", lambda: redis.cli("EXISTS", "pred:worker:AB02") == "1")
    check(m.alive(), "monitor survived malformed events")
    st, text = m.http("/metrics")
    check(m.metric(text, "predictors_monitor_bad_events_total") == len(bad),
          "bad events counted: %s" % m.metric(text, "predictors_monitor_bad_events_total"))
    check(redis.cli("EXISTS", "pred:job:" + "0" * 32) == "0", "nothing written for a bad event")
    log = m.log()
    for what in ("1 frames", "3 frames", "not msgpack", "not a non-empty map", "v (must be 1)",
                 "id (must be 32 lowercase hex", "does not match ev", "without key worker", "trailing bytes"):
        check(what in log, "log explains a malformed event: %r missing" % what)
    check(m.metric(text, "predictors_broker_up") == 0, "no broker answering mmi: broker_up 0")
finally:
    m.stop()
    pub.close(linger=0)

# 2. HTTP bad input and actions, against the real broker.
b = Broker("bad-broker", env={"PREDICTORS_BROKER_ATTEMPTS": "1"})
w = spawn_worker(b.endpoint, "bad", "--mode", "fail")
TOKEN = "s3cret-token-for-tests"
m = Monitor(redis.url, b, env={"PREDICTORS_MONITOR_TOKEN": TOKEN}, name="monitor-http")
ro = Monitor(redis.url, b, name="monitor-readonly")
try:
    c = mdp.Client(b.endpoint, timeout=30)   # a slow reply is not a lost one: no needless resend
    jid = c.request("titanic.request", "bad", b"x")[1].decode()
    wait_for("dead job", lambda: mmi(c, "job", jid)[1]["state"] == "dead")

    # A huge header: refused by libmicrohttpd with 431 (or the connection closed), monitor alive.
    s = socket.create_connection(("127.0.0.1", m.port), timeout=10)
    s.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\nX-Huge: " + b"a" * 200000 + b"\r\n\r\n")
    try:
        answer = s.recv(4096)
    except (ConnectionResetError, BrokenPipeError):
        answer = b""
    s.close()
    check(answer == b"" or answer.split(b" ")[1] in (b"431", b"413", b"414", b"400"),
          "huge header answer: %r" % answer[:80])
    # Many header lines, each small.
    st, _ = m.http("/api/state", headers={"X-H%d" % i: "v" * 100 for i in range(400)})
    check(st in (431, 413, 400), "many headers: %d" % st)
    check(m.alive() and m.http("/healthz")[0] == 200, "monitor serves after a huge header")

    # Paths outside the dashboard: 404, never a file.
    for path in ("/../../etc/passwd", "/etc/passwd", "/%2e%2e/%2e%2e/etc/passwd", "/index.html/../../x",
                 "/api/../../../etc/shadow", "/app.js%00.html"):
        s = socket.create_connection(("127.0.0.1", m.port), timeout=10)
        s.sendall(b"GET " + path.encode() + b" HTTP/1.0\r\n\r\n")
        answer = b""
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            answer += chunk
        s.close()
        status = answer.split(b" ")[1] if answer else b""
        check(status in (b"404", b"400"), "path %s: %r" % (path, answer[:100]))
        check(b"root:" not in answer, "no file content for %s" % path)
    st, body = m.http("/metrics", method="POST", body=b"x")
    check(st == 405, "POST /metrics is 405, got %d" % st)
    st, body = m.http("/api/requeue")
    check(st == 405, "GET on an action is 405, got %d" % st)

    # Actions: read-only monitor refuses; missing / wrong token refused; bad body refused.
    body = ('{"id": "%s"}' % jid).encode()
    st, text = ro.http("/api/requeue", method="POST", body=body, headers={"Authorization": "Bearer " + TOKEN})
    check(st == 403 and "read-only" in text, "read-only monitor: %d %s" % (st, text))
    st, text = m.http("/api/requeue", method="POST", body=body)
    check(st == 403 and "missing" in text, "missing token: %d %s" % (st, text))
    st, text = m.http("/api/requeue", method="POST", body=body, headers={"Authorization": "Bearer wrong"})
    check(st == 403 and "wrong" in text, "wrong token: %d %s" % (st, text))
    st, text = m.http("/api/requeue", method="POST", body=body, headers={"Authorization": "Bearer " + TOKEN + "x"})
    check(st == 403, "longer token: %d" % st)
    check(mmi(c, "job", jid)[1]["state"] == "dead", "refused actions changed nothing")
    st, text = m.http("/api/requeue", method="POST", body=b"{not json", headers={"Authorization": "Bearer " + TOKEN})
    check(st == 400, "bad body: %d %s" % (st, text))
    st, text = m.http("/api/cancel", method="POST", body=b'{"id": "../../x"}', headers={"Authorization": "Bearer " + TOKEN})
    check(st == 400, "bad id: %d %s" % (st, text))
    st, text = m.http("/api/cancel", method="POST", body=('{"id": "%s"}' % ("f" * 32)).encode(),
                      headers={"Authorization": "Bearer " + TOKEN})
    check(st == 404, "unknown job: %d %s" % (st, text))
    check("wrong action token" in m.log() and TOKEN not in m.log(), "refusals logged, token never logged")

    # The right token cancels a job waiting for a worker that does not exist.
    waiting = c.request("titanic.request", "nobody-serves-this", b"x")[1].decode()
    st, text = m.http("/api/cancel", method="POST", body=('{"id": "%s"}' % waiting).encode(),
                      headers={"Authorization": "Bearer " + TOKEN})
    check(st == 200, "cancel: %d %s" % (st, text))
    check(mmi(c, "job", waiting)[1]["state"] == "cancelled", "the broker cancelled it")
    st, text = m.http("/api/cancel", method="POST", body=('{"id": "%s"}' % waiting).encode(),
                      headers={"Authorization": "Bearer " + TOKEN})
    check(st == 409, "cancel twice: %d %s" % (st, text))

    # The right token: the dead job goes back to its queue (and fails again).
    st, text = m.http("/api/requeue", method="POST", body=body, headers={"Authorization": "Bearer " + TOKEN})
    check(st == 200, "requeue: %d %s" % (st, text))
    wait_for("requeued event in Redis", lambda: "requeued" in (redis.cli("XREVRANGE", "pred:events", "+", "-",
                                                                          "COUNT", "20") or ""))
    check(m.alive() and ro.alive(), "monitors alive")
    print("ok: malformed events, huge headers, paths, tokens, requeue")
finally:
    w.kill()
    m.stop()
    ro.stop()
    b.stop()
    redis.stop()
