#!/usr/bin/python3
"""The journal does not grow without bound: jobs that are finished and closed
leave it at the next checkpoint (old segments are removed), while open jobs
survive checkpoints and kill -9."""
import glob
import os

from broker_harness import Broker, shutdown, check, mmi, spawn_worker, wait_for
import mdp

b = Broker("journal", env={"PREDICTORS_BROKER_CHECKPOINT": "64KiB"})
procs = [spawn_worker(b.endpoint, "work", "--hb", "0.5")]


def journal_bytes():
    return sum(os.path.getsize(f) for f in glob.glob(os.path.join(b.journal, "*.jnl")))


try:
    c = mdp.Client(b.endpoint, timeout=30)   # a slow reply is not a lost one: no needless resend
    keep = [c.request("titanic.request", "later", b"keep-%d" % i)[1] for i in range(10)]
    peak = 0
    total = 0
    for round_ in range(10):
        ids = [c.request("titanic.request", "work", b"x" * 1000)[1] for _ in range(100)]
        for jid in ids:
            wait_for("job", lambda: c.request("titanic.reply", jid)[0] == b"200")
            check(c.request("titanic.close", jid) == [b"200"], "close")
        total += 100 * 2 * 1000
        peak = max(peak, journal_bytes())
    st, stats = mmi(c, "stats")
    print("history ~%d KiB, journal peak %d KiB, now %d KiB, %d segments, %d checkpoints"
          % (total // 1024, peak // 1024, journal_bytes() // 1024,
             len(glob.glob(os.path.join(b.journal, "*.jnl"))), stats["checkpoints"]))
    check(stats["checkpoints"] >= 5, "checkpoints ran: %r" % stats["checkpoints"])
    check(peak < 400 * 1024, "journal stayed small: peak %d bytes for %d bytes of history" % (peak, total))
    check(len(glob.glob(os.path.join(b.journal, "*.jnl"))) <= 2, "old segments removed")
    b.kill9()
    b.start()
    for jid in keep:
        check(c.request("titanic.reply", jid) == [b"300"], "open job %s survived checkpoints and kill -9" % jid)
finally:
    shutdown(procs, b)
print("ok")
