#!/usr/bin/python3
"""bin/monitor against the real bin/broker and stock Majordomo workers
(tests/mdp.py): events land in Redis under the documented keys with their
caps and TTLs, /metrics passes `promtool check metrics` and counts what
happened, Redis killed mid-job leaves the broker unaffected and the monitor
repairs Redis from mmi.* when it is back, and a monitor restarted after a
worker vanished shows no ghost."""
import datetime
import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from broker_harness import Broker, check, mmi, spawn_worker, wait_for  # noqa: E402
from monitor_harness import Monitor, Redis, promtool_check  # noqa: E402
import mdp  # noqa: E402

redis = Redis()
b = Broker("mon-broker", env={"PREDICTORS_BROKER_ATTEMPTS": "2"})
m = Monitor(redis.url, b)
workers = {}
try:
    workers["fetch"] = spawn_worker(b.endpoint, "fetch", "--mode", "echo")
    workers["train"] = spawn_worker(b.endpoint, "train", "--mode", "partial", "--v2")
    workers["bad"] = spawn_worker(b.endpoint, "bad", "--mode", "fail")
    workers["slow"] = spawn_worker(b.endpoint, "slow", "--mode", "sleep:3")
    wait_for("4 workers in pred:workers", lambda: redis.cli("ZCARD", "pred:workers") == "4")
    for wid in redis.cli("ZRANGE", "pred:workers", "0", "-1").split("\n"):
        w = redis.hgetall("pred:worker:" + wid)
        check(w.get("service") in workers and w.get("state") == "idle" and w.get("proto") in ("MDPW01", "MDPW02"),
              "worker hash %s: %r" % (wid, w))
        check(0 < int(redis.cli("TTL", "pred:worker:" + wid)) <= 60, "worker hash has a TTL")

    c = mdp.Client(b.endpoint, timeout=30)   # a slow reply is not a lost one: no needless resend
    ids = {}
    for svc in ("fetch", "train", "bad"):
        r = c.request("titanic.request", svc, b"payload")
        check(r[0] == b"200", "titanic.request %s: %r" % (svc, r))
        ids[svc] = r[1].decode()

    def state(svc):
        return redis.hgetall("pred:job:" + ids[svc]).get("state")
    wait_for("fetch job done in Redis", lambda: state("fetch") == "done")
    wait_for("train job done in Redis", lambda: state("train") == "done")
    wait_for("bad job dead in Redis", lambda: state("bad") == "dead")
    train = redis.hgetall("pred:job:" + ids["train"])
    check(train.get("percent") == "100" and train.get("stage") == "work", "train progress recorded: %r" % train)
    bad = redis.hgetall("pred:job:" + ids["bad"])
    check("cannot do this" in bad.get("last_error", ""), "dead job keeps its last error: %r" % bad)
    check(redis.cli("ZSCORE", "pred:dead", ids["bad"]) not in (None, ""), "dead job in pred:dead")
    check(int(redis.cli("TTL", "pred:job:" + ids["fetch"])) > 86400, "job hash has the job TTL")
    check(redis.cli("ZSCORE", "pred:jobs:active", ids["fetch"]) == "", "finished job not active")
    day = datetime.datetime.utcnow().strftime("%Y-%m-%d")
    check(redis.cli("HGET", "pred:stat:" + day, "fetch:processed") == "1", "daily processed counter")
    check(redis.cli("HGET", "pred:stat:" + day, "bad:dead") == "1", "daily dead counter")
    check(int(redis.cli("TTL", "pred:stat:" + day)) > 0, "daily counters expire")
    check(int(redis.cli("XLEN", "pred:events")) >= 9, "events stream")
    wait_for("queue hash from mmi.queues", lambda: redis.hgetall("pred:queue:fetch").get("workers") == "1")
    check(redis.hgetall("pred:monitor").get("pid") == str(m.proc.pid), "monitor heartbeat hash")

    # /metrics: valid exposition, counts what happened, no job ids.
    # The gauges come from the monitor's last mmi.* snapshot, which a loaded machine can time
    # out (monitor.mmi_timeout): take a /metrics from after one the broker answered.
    def answered_metrics():
        st, text = m.http("/metrics")
        check(st == 200, "/metrics status %d" % st)
        return text if m.metric(text, "predictors_broker_up") == 1 else None
    text = wait_for("a /metrics after an answered mmi.* snapshot", answered_metrics, timeout=60)
    ok, out = promtool_check(text)
    check(ok, "promtool check metrics:\n" + out)
    check(m.metric(text, 'predictors_jobs_total{service="fetch",outcome="done"}') == 1, "fetch done counted")
    check(m.metric(text, 'predictors_jobs_total{service="bad",outcome="dead"}') == 1, "bad dead counted")
    check(m.metric(text, 'predictors_job_duration_seconds_count{service="train"}') == 1, "train duration observed")
    check(m.metric(text, 'predictors_workers{service="train"}') == 1, "train worker up")
    check(m.metric(text, "predictors_broker_up") == 1, "broker up")
    check(m.metric(text, "predictors_nvml_available") is not None, "NVML presence stated")
    for jid in ids.values():
        check(jid not in text, "no job id in /metrics")
    # The shipped Grafana dashboard and scrape config: valid PromQL, names that exist.
    import re
    import subprocess
    import tempfile
    root = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
    dash = json.load(open(os.path.join(root, "monitoring", "grafana-dashboard.json")))
    exprs = [t["expr"] for p in dash["panels"] for t in p["targets"]]
    check(len(exprs) >= 10, "dashboard has its panels")
    with tempfile.NamedTemporaryFile("w", suffix=".yml", delete=False) as f:
        f.write("groups:\n- name: grafana\n  rules:\n")
        for i, e in enumerate(exprs):
            f.write("  - record: predictors:panel%d\n    expr: %s\n" % (i, json.dumps(e)))
    r = subprocess.run(["promtool", "check", "rules", f.name], capture_output=True, text=True)
    check(r.returncode == 0, "dashboard PromQL: " + r.stdout + r.stderr)
    r = subprocess.run(["promtool", "check", "config", os.path.join(root, "monitoring", "prometheus.yml")],
                       capture_output=True, text=True)
    check(r.returncode == 0, "prometheus.yml: " + r.stdout + r.stderr)
    families = set(re.findall(r"^# TYPE (\S+) ", text, re.M))
    gpu_absent = m.metric(text, "predictors_nvml_available") == 0
    names = set(re.findall(r"predictors_[a-z_]*[a-z](?![a-z_(])", " ".join(exprs)))
    for alts in re.findall(r"predictors_broker_\(([a-z_|]+)\)_total", " ".join(exprs)):
        names |= {"predictors_broker_%s_total" % a for a in alts.split("|")}
    for name in names:
        base = re.sub(r"_(bucket|sum|count)$", "", name)
        if gpu_absent and name.startswith("predictors_gpu_"):
            continue
        check(name in families or base in families, "dashboard uses %s, which /metrics does not export" % name)

    st, body = m.http("/api/state")
    doc = json.loads(body)
    check(st == 200 and len(doc["workers"]) == 4 and doc["dead"][0]["id"] == ids["bad"], "/api/state: %s" % body[:300])

    # Redis dies while a job runs: the broker does not notice; the monitor
    # repairs Redis from mmi.* once Redis is back.
    r = c.request("titanic.request", "slow", b"x")
    slow = r[1].decode()
    wait_for("slow job leased in Redis", lambda: redis.hgetall("pred:job:" + slow).get("state") == "leased")
    redis.kill9()
    r = c.request("titanic.request", "fetch", b"during outage")
    check(r[0] == b"200", "broker accepts work with Redis down: %r" % r)
    during = r[1]
    wait_for("job done with Redis down", lambda: c.request("titanic.reply", during)[0] == b"200")
    wait_for("slow job done with Redis down", lambda: c.request("titanic.reply", slow)[0] == b"200", timeout=30)
    check(m.alive(), "monitor alive with Redis down")
    wait_for("redis_up 0", lambda: m.metric(m.http("/metrics")[1], "predictors_monitor_redis_up") == 0)
    st, body = m.http("/api/state")
    check(st == 200 and "redis: down" in body, "/api/state says Redis is down: %s" % body[:200])
    check(redis.hgetall("pred:job:" + slow) == {}, "redis is really down")
    redis.start()
    check(redis.hgetall("pred:job:" + slow).get("state") == "leased", "Redis came back with the stale state")
    wait_for("slow job repaired from mmi.job", lambda: redis.hgetall("pred:job:" + slow).get("state") == "done",
             timeout=30)
    wait_for("catch-up logged", lambda: m.log().count("caught up from the broker") >= 2)
    check(m.metric(m.http("/metrics")[1], "predictors_monitor_redis_up") == 1, "redis_up back to 1")

    # The monitor is down while a worker vanishes: after its restart no ghost.
    m.stop()
    workers["fetch"].kill()
    workers["fetch"].wait()
    wait_for("broker drops the fetch worker", lambda: mmi(c, "service", "fetch")[0] == "404")
    check(redis.cli("ZCARD", "pred:workers") == "4", "the ghost is in Redis while the monitor is down")
    m.start()
    wait_for("ghost worker removed", lambda: redis.cli("ZCARD", "pred:workers") == "3")
    services = {redis.hgetall("pred:worker:" + w).get("service")
                for w in redis.cli("ZRANGE", "pred:workers", "0", "-1").split("\n")}
    check(services == {"train", "bad", "slow"}, "workers after restart: %r" % services)
    check(redis.hgetall("pred:job:" + ids["train"]).get("state") == "done", "history survives the restart")
    check(m.stop() == 0, "monitor exits 0 on SIGTERM")

    # --gpu-only (for GPU hosts): NVML gauges on /metrics and nothing else, no stores needed.
    import subprocess as sp
    from broker_harness import BIN, free_port
    port = free_port()
    g = sp.Popen([os.path.join(BIN, "monitor"), "--gpu-only", "--port", str(port)],
                 env=dict(os.environ, REDIS_URL="redis://127.0.0.1:1/0"), stdout=sp.DEVNULL, stderr=sp.DEVNULL)
    try:
        import urllib.request
        import urllib.error
        def get(path):
            try:
                with urllib.request.urlopen("http://127.0.0.1:%d%s" % (port, path), timeout=5) as r:
                    return r.status, r.read().decode()
            except urllib.error.HTTPError as e:
                return e.code, e.read().decode()
            except OSError:
                return None, ""
        wait_for("gpu-only monitor", lambda: get("/healthz")[0] == 200)
        st, text = get("/metrics")
        ok, out = promtool_check(text)
        check(st == 200 and ok and "predictors_nvml_available" in text and "predictors_jobs_total" not in text,
              "gpu-only /metrics: %s %s" % (st, out))
        st, text = get("/")
        check(st == 404 and "gpu-only" in text, "gpu-only serves no dashboard: %s %s" % (st, text))
    finally:
        g.terminate()
        g.wait()
    print("ok: events, caps and TTLs, promtool, Redis outage and repair, restart without ghosts")
finally:
    for p in workers.values():
        p.kill()
    m.stop()
    b.stop()
    redis.stop()
