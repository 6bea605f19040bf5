#!/usr/bin/python3
"""Disk full and an unwritable journal: the broker refuses new submissions
with a clear error, keeps serving everything else (workers finish, mmi
answers), and accepts work again once space returns; what it acknowledged
survives kill -9 throughout. The full disk is a real one: a small tmpfs
(needs root; otherwise a per-process file size limit, RLIMIT_FSIZE)."""
import os
import subprocess
import sys
import time

from broker_harness import Broker, BIN, TMP, check, mmi, spawn_worker, wait_for
import mdp

# An unwritable journal location stops the start with a clear message.
notdir = os.path.join(TMP, "plainfile")
open(notdir, "w").close()
r = subprocess.run([os.path.join(BIN, "broker"), "--bind", "tcp://127.0.0.1:0", "--events", "",
                    "--journal", os.path.join(notdir, "journal")], capture_output=True, text=True, timeout=30)
check(r.returncode == 1 and "cannot create directory" in r.stderr and "Not a directory" in r.stderr,
      "unwritable journal: rc=%d %s" % (r.returncode, r.stderr))

disk = os.path.join(TMP, "disk")
os.makedirs(disk, exist_ok=True)
mounted = not os.environ.get("T_BROKER_DISK_RLIMIT") and subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", disk],
                         capture_output=True).returncode == 0
prefix = [] if mounted else ["prlimit", "--fsize=262144:unlimited"]
print("full disk by", "tmpfs of 1 MiB" if mounted else "RLIMIT_FSIZE of 256 KiB")
b = None
procs = []
try:
    b = Broker("disk", journal=os.path.join(disk, "journal"), prefix=prefix)
    c = mdp.Client(b.endpoint, timeout=30)   # a slow reply is not a lost one: no needless resend
    first = [c.request("titanic.request", "later", b"first-%d" % i)[1] for i in range(20)]

    # Fill the disk (or hit the file size limit) with submissions of 8 KiB.
    filler = os.path.join(disk, "filler")
    if mounted:
        fd = os.open(filler, os.O_WRONLY | os.O_CREAT, 0o644)
        try:
            while True:
                os.write(fd, b"\0" * 4096)
        except OSError:
            pass
        os.close(fd)
    refused = None
    accepted = []
    for i in range(200):
        r = c.request("titanic.request", "later", b"x" * 8192)
        if r[0] != b"200":
            refused = r
            break
        accepted.append(r[1])
    check(refused is not None, "the journal never filled up")
    check(refused[0] == b"500" and b"journal unavailable" in refused[1], "refusal: %r" % refused)
    reason = refused[1].decode()
    print("refused:", reason)
    check("No space left" in reason or "File too large" in reason, "clear reason: " + reason)
    st, stats = mmi(c, "stats")
    check(stats["journal_errors"] >= 1, "journal errors counted %r" % stats)
    if mounted:
        # (With only a file size limit, the recovery checkpoint writes a
        # fresh, smaller segment and may succeed at once: that is fine.)
        r = c.request("titanic.request", "later", b"small")
        check(r[0] == b"500", "still refusing while full: %r" % r)
        check(mmi(c, "stats")[1]["journal_ok"] == 0, "journal_ok 0 while full")

    # Everything else keeps working: a worker drains the queue.
    procs.append(spawn_worker(b.endpoint, "later", "--hb", "0.5"))
    wait_for("queue drained while the disk is full",
             lambda: mmi(c, "queues")[1].get("later", {}).get("queued", 1) == 0, timeout=30)
    if mounted:
        check(c.request("titanic.reply", first[0])[0] == b"500", "titanic.* refused while the journal is down")

    # Space returns: the broker takes work again by itself.
    if mounted:
        os.unlink(filler)
    else:
        subprocess.run(["prlimit", "--pid", str(b.proc.pid), "--fsize=unlimited:unlimited"], check=True)
    wait_for("journal back", lambda: mmi(c, "stats")[1]["journal_ok"] == 1, timeout=60)
    check("journal writable again" in b.log(), "recovery logged")
    r = c.request("titanic.request", "later", b"after")
    check(r[0] == b"200", "accepting again: %r" % r)
    after = r[1]

    # What was acknowledged, and the work done meanwhile, survive kill -9.
    b.kill9()
    for p in procs:
        p.kill()
        p.wait()
    b.prefix = []
    b.start()
    for jid in first + accepted:
        r = c.request("titanic.reply", jid)
        check(r[0] == b"200", "job %s after the full disk and kill -9: %r" % (jid, r))
    check(c.request("titanic.reply", after)[0] in (b"200", b"300"), "job after recovery kept")
finally:
    for p in procs:
        p.kill()
    if b:
        b.stop()
    if mounted:
        subprocess.run(["umount", disk])
print("ok")
