#!/usr/bin/python3
"""worker-discover as a pipeline worker: the real broker, a discover job
submitted through Titanic with the pr_job envelope, the result read back
(status done, output "task" = the spec in the artifact store, metrics), the
task in PostgreSQL with its run; a second delivery of the same (run, step)
replays the same task. Skips when the broker is not built in this tree."""
import json
import os
import subprocess
import sys
import time

ROOT = os.environ.get("ROOT") or os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
BIN = os.environ.get("PREDICTORS_BIN") or os.path.join(ROOT, "bin")
TMP = os.environ.get("T_TMP") or "/tmp"
if not os.path.exists(os.path.join(BIN, "broker")) or not os.path.exists(os.path.join(ROOT, "tests", "broker_harness.py")):
    print("bin/broker or tests/broker_harness.py is not in this tree (broker branch not merged)")
    sys.exit(77)

import msgpack  # noqa: E402
import psycopg2  # noqa: E402

sys.path.insert(0, os.path.join(ROOT, "tests"))
from broker_harness import Broker, check, mmi, wait_for  # noqa: E402
import mdp  # noqa: E402

# A fresh migrated database.
base = os.environ["DATABASE_URL"].rsplit("/", 1)[0]
db = "t_discover_worker_%d" % os.getpid()
admin = psycopg2.connect(base + "/postgres")
admin.autocommit = True
admin.cursor().execute("drop database if exists %s" % db)
admin.cursor().execute("create database %s" % db)
url = base + "/" + db
subprocess.run([os.path.join(ROOT, "deploy", "migrate"), url], check=True, stdout=subprocess.DEVNULL)

b = Broker("discover")
env = dict(os.environ)
env.pop("ANTHROPIC_API_KEY", None)
env.pop("PREDICTORS_CONFIG", None)
env.update({"DATABASE_URL": url, "PREDICTORS_BROKER": b.endpoint, "PREDICTORS_BROKER_HEARTBEAT": "0.5s",
            "PREDICTORS_ARTIFACTS_ROOT": os.path.join(TMP, "artifacts")})
log = open(os.path.join(TMP, "worker-discover.log"), "w")
worker = subprocess.Popen([os.path.join(BIN, "worker-discover"), "-b", b.endpoint], env=env, stdout=log, stderr=log)
c = mdp.Client(b.endpoint, timeout=30)   # a slow reply is not a lost one: no needless resend


def submit(run, attempt):
    job = {"v": 1, "id": "%s/discover/%d" % (run, attempt), "run": run, "step": "discover", "attempt": attempt,
           "deadline": 0, "service": "discover", "needs_gpu": False, "params": {}}
    r = c.request("titanic.request", "discover", msgpack.packb(job))
    check(r and r[0] == b"200", "submit: %r" % r)
    jid = r[1].decode()
    r = wait_for("discover result", lambda: (lambda x: x if x and x[0] == b"200" else None)(
        c.request("titanic.reply", jid)), timeout=60)
    return msgpack.unpackb(r[-1], raw=False)


try:
    wait_for("discover worker", lambda: mmi(c, "service", "discover")[0] == "200", timeout=20)
    res = submit("run-w1", 1)
    check(res["status"] == "done", "result %r" % res)
    uri = res["outputs"]["task"]
    check(uri.startswith("file://"), "task output %r" % uri)
    spec = json.load(open(uri[len("file://"):]))
    check(spec["version"] == 1 and spec["name"], "spec %r" % spec)
    check(res["metrics"]["history"] == 0 and res["metrics"]["task_id"] >= 1, "metrics %r" % res["metrics"])
    conn = psycopg2.connect(url)
    conn.autocommit = True
    cur = conn.cursor()
    cur.execute("select name, origin from tasks where run_id = 'run-w1' and step = 'discover'")
    check(cur.fetchall() == [(spec["name"], "catalog")], "task row")

    # The same (run, step) again (a redelivery or `sched retry`): the same task, nothing new.
    again = submit("run-w1", 2)
    check(again["status"] == "done" and again["outputs"]["task"] == uri, "replay %r" % again)
    # Another run: another task, compared with the first.
    other = submit("run-w2", 1)
    check(other["status"] == "done" and other["outputs"]["task"] != uri, "second run %r" % other)
    check(other["metrics"]["history"] == 1, "history %r" % other["metrics"])
    cur.execute("select count(*) from tasks")
    check(cur.fetchone()[0] == 2, "two tasks")
    print("discover worker ok: %s, replay, then %s" % (spec["name"], json.load(open(other["outputs"]["task"][7:]))["name"]))
finally:
    worker.terminate()
    try:
        worker.wait(timeout=20)
    except subprocess.TimeoutExpired:
        worker.kill()
    b.stop()
    c.close()
