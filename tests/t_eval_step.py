#!/usr/bin/python3
"""The evaluate and deploy steps through the worker runtime, with a ROUTER playing the broker.

Real artifacts: a synthetic dataset (worker-train synth) and real xgboost, rf and ensemble
models (worker-train fit). worker-eval and worker-deploy run with --once against a ZeroMQ
ROUTER speaking MDP 0.2 as proto/PROTOCOL.md fixes it, on a fresh PostgreSQL database and
the test Redis. Checks: the evaluate job's result (outputs, metrics) and what it stored; the
deploy job promotes the first model, rejects the same model next week (production re-scored
on the same rows), replays a decided run unchanged, and fails permanently (code "refused")
on a truncated model artifact, leaving production alone.
"""
import hashlib, json, os, shutil, subprocess, sys, time
import msgpack, psycopg2, zmq

BIN = os.environ["PREDICTORS_BIN"]
ROOT = os.environ["ROOT"]
TMP = os.environ["T_TMP"]
base = os.environ["DATABASE_URL"].rsplit("/", 1)[0]
db = f"t_evalstep_{os.getpid()}"
subprocess.run(["psql", "-X", "-q", f"{base}/postgres", "-c", f"drop database if exists {db}",
                "-c", f"create database {db}"], check=True, stdout=subprocess.DEVNULL)
DB = f"{base}/{db}"
subprocess.run([f"{ROOT}/deploy/migrate", DB], check=True, stdout=subprocess.DEVNULL)
ART = os.path.join(TMP, "artifacts")
env = dict(os.environ, DATABASE_URL=DB, PREDICTORS_ARTIFACTS_ROOT=ART,
           PREDICTORS_DEPLOY_DIR=os.path.join(TMP, "deploy"), PREDICTORS_LOG_LEVEL="warn")
REDIS = os.environ["REDIS_URL"]


def rcli(*args):
    return subprocess.run(["redis-cli", "-u", REDIS, *args], capture_output=True, text=True,
                          check=True).stdout.strip()


rcli("del", "pred:model:synth:production")


def fail(msg):
    print("t_fail:", msg)
    sys.exit(1)


def put(path):
    h = hashlib.sha256(open(path, "rb").read()).hexdigest()
    d = os.path.join(ART, "sha256", h[:2])
    os.makedirs(d, exist_ok=True)
    shutil.copy(path, os.path.join(d, h))
    return f"file://{d}/{h}"


def run(*args):
    r = subprocess.run([f"{BIN}/{args[0]}", *args[1:]], env=env, capture_output=True, text=True)
    if r.returncode:
        fail(f"{args}: {r.stderr}")
    return r.stdout.strip().splitlines()[-1]


run("worker-train", "synth", "--rows", "3000", "--cols", "6", "--seed", "5", "--valid", "0.2",
    "--test", "0.25", "-o", os.path.join(TMP, "ds.bin"))
D = put(os.path.join(TMP, "ds.bin"))
X = run("worker-train", "fit", "-f", "xgboost", "-d", D, "-p", "rounds=30")
R = run("worker-train", "fit", "-f", "rf", "-d", D, "-p", "trees=20", "-p", "max_depth=5")
E = run("worker-train", "fit", "-f", "ensemble", "-d", D, "--members", f"{X},{R}")
# A model trained on other columns: it cannot score these rows and must be left out, said so.
run("worker-train", "synth", "--rows", "1000", "--cols", "8", "--seed", "6", "--valid", "0.2",
    "--test", "0.2", "-o", os.path.join(TMP, "other.bin"))
O = run("worker-train", "fit", "-f", "xgboost", "-d", put(os.path.join(TMP, "other.bin")), "-p", "rounds=5")

ctx = zmq.Context()


def job(program, service, run_id, step, params):
    """Serves one job to `program --once` through a ROUTER; returns the decoded result."""
    router = ctx.socket(zmq.ROUTER)
    port = router.bind_to_random_port("tcp://127.0.0.1")
    proc = subprocess.Popen([f"{BIN}/{program}", "--once", "-b", f"tcp://127.0.0.1:{port}"],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        if not router.poll(10000):
            fail(f"{program}: no READY")
        ident, proto, cmd, *rest = router.recv_multipart()
        if proto != b"MDPW02" or cmd != b"\x01" or rest != [service.encode()]:
            fail(f"{program}: unexpected first message {proto} {cmd} {rest}")
        body = msgpack.packb({"v": 1, "id": f"{run_id}/{step}/1", "run": run_id, "step": step,
                              "attempt": 1, "deadline": 0, "service": service,
                              "needs_gpu": False, "params": params})
        router.send_multipart([ident, b"MDPW02", b"\x02", b"client", b"", body])
        deadline = time.time() + 120
        partials = 0
        while time.time() < deadline:
            if not router.poll(500):
                router.send_multipart([ident, b"MDPW02", b"\x05"])
                continue
            ident, proto, cmd, *rest = router.recv_multipart()
            if cmd == b"\x05":
                router.send_multipart([ident, b"MDPW02", b"\x05"])
            elif cmd == b"\x03":
                partials += 1
            elif cmd == b"\x04":
                result = msgpack.unpackb(rest[2])
                result["partials"] = partials
                return result
        fail(f"{program}: no FINAL")
    finally:
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            fail(f"{program} --once did not exit after its job")
        router.close(0)


models = {"fetch.dataset": D, "train_xgboost.model": X, "train_rf.model": R, "ensemble.model": E,
          "seed": 42, "task": "synth"}
# The first week names its task only through discovery's spec, as the weekly pipeline does.
with open(os.path.join(TMP, "spec.json"), "w") as f:
    json.dump({"name": "synth", "hypothesis": "synthetic"}, f)
week1 = {k: v for k, v in models.items() if k != "task"}
week1["discover.task"] = put(os.path.join(TMP, "spec.json"))
r1 = job("worker-eval", "evaluate", "w1", "evaluate", week1)
if r1["status"] != "done":
    fail(f"evaluate w1: {r1}")
for out in ("report", "report_md", "evaluation"):
    path = r1["outputs"].get(out, "")[7:]
    if not os.path.isfile(path):
        fail(f"evaluate output {out} missing: {r1['outputs']}")
html = open(r1["outputs"]["report"][7:]).read()
for plot in ("plot-roc", "plot-calibration", "plot-equity", "plot-importance"):
    if f'id="{plot}"' not in html:
        fail(f"report lacks {plot}")
if "no analysis: no API key" not in html:
    fail("offline report does not say 'no analysis: no API key'")
if not 0.5 < r1["metrics"]["accuracy"] <= 1 or "production_version" in r1["metrics"]:
    fail(f"evaluate w1 metrics: {r1['metrics']}")
if r1["partials"] < 1:
    fail("evaluate sent no progress")
con = psycopg2.connect(DB)
con.autocommit = True
cur = con.cursor()
cur.execute("select policy, role from evaluations where run = 'w1' order by policy")
got = cur.fetchall()
if got != [("blend", "blend"), ("ensemble", "candidate"), ("rf", "model"), ("rules", "rules"), ("xgboost", "model")]:
    fail(f"stored evaluations: {got}")

d1 = job("worker-deploy", "deploy", "w1", "deploy", {"margin": 0.01})
if d1["status"] != "done" or d1["metrics"].get("promoted") != 1.0 or d1["metrics"].get("version") != 1.0:
    fail(f"deploy w1: {d1}")
ptr_version = rcli("hget", "pred:model:synth:production", "version")
ptr_path = rcli("hget", "pred:model:synth:production", "path")
if ptr_version != "1" or not os.path.isfile(ptr_path):
    fail(f"redis pointer after w1: {ptr_version} {ptr_path}")
if d1["outputs"].get("deployed") != "file://" + ptr_path:
    fail(f"deploy output: {d1['outputs']}")

# Next week, the same models: production (v1, the same ensemble) is re-scored on the same rows.
r2 = job("worker-eval", "evaluate", "w2", "evaluate", models)
if r2["status"] != "done" or r2["metrics"].get("production_version") != 1.0 or r2["metrics"]["vs_production_diff"] != 0.0:
    fail(f"evaluate w2 did not compare with production v1: {r2}")
r2b = job("worker-eval", "evaluate", "w2b", "evaluate", dict(models, **{"train_other.model": O}))
if r2b["status"] != "done":
    fail(f"evaluate with an unusable extra model failed: {r2b}")
if "Left out, unable to score the test rows: xgboost" not in open(r2b["outputs"]["report_md"][7:]).read():
    fail("the report does not say which model was left out")
d2 = job("worker-deploy", "deploy", "w2", "deploy", {"margin": 0.01})
if d2["status"] != "done" or d2["metrics"].get("promoted") != 0.0:
    fail(f"deploy w2 (no improvement) not rejected: {d2}")
# Replay of a decided run: done, nothing changes.
cur.execute("select count(*) from deploy_decisions")
n = cur.fetchone()[0]
d1b = job("worker-deploy", "deploy", "w1", "deploy", {"margin": 0.01})
cur.execute("select count(*) from deploy_decisions")
if d1b["status"] != "done" or cur.fetchone()[0] != n:
    fail(f"replayed deploy changed something: {d1b}")

# A truncated model artifact after evaluation: the deploy step fails for good.
r3 = job("worker-eval", "evaluate", "w3", "evaluate", dict(models, candidate="xgboost"))
if r3["status"] != "done":
    fail(f"evaluate w3: {r3}")
xpath = X[7:]
with open(xpath, "r+b") as f:
    f.truncate(100)
d3 = job("worker-deploy", "deploy", "w3", "deploy", {})
if d3["status"] != "fail" or d3["error"]["code"] != "refused" or "truncated or corrupt" not in d3["error"]["message"]:
    fail(f"deploy with a truncated artifact: {d3}")
if rcli("hget", "pred:model:synth:production", "version") != "1":
    fail("a refused deploy moved the pointer")
# ... and the evaluate step refuses a corrupt model too, permanently.
r4 = job("worker-eval", "evaluate", "w4", "evaluate", models)
if r4["status"] != "fail" or r4["error"]["code"] != "bad_model":
    fail(f"evaluate with a corrupt model: {r4}")
con.close()
subprocess.run(["psql", "-X", "-q", f"{base}/postgres", "-c", f"drop database if exists {db}"],
               stdout=subprocess.DEVNULL)
print("evaluate and deploy steps passed through the runtime")
