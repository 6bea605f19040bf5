#!/usr/bin/python3
"""A training job end to end through the real broker: bin/broker, bin/worker-train
serving `train`, and a stock MDP 0.2 client (tests/mdp.py) sending a job
envelope. The client sees progress (PARTIALs with round, losses, metric,
samples/s, ETA) and a result naming the stored model; a job that needs a GPU
and a job with a bad hyperparameter fail permanently with their codes."""
import os
import signal
import subprocess
import sys
import time
import uuid

import msgpack

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import mdp  # noqa: E402
from broker_harness import BIN, TMP, Broker, check, fail, mmi, wait_for  # noqa: E402

store = os.path.join(TMP, "store")
ds = os.path.join(TMP, "ds.pdset")
subprocess.run([os.path.join(BIN, "worker-train"), "synth", "--rows", "4000", "--cols", "8",
                "--seed", "2", "--valid", "0.2", "--test", "0.1", "-o", ds], check=True,
               stdout=subprocess.DEVNULL)
broker = Broker()
env = dict(os.environ, PREDICTORS_ARTIFACTS_ROOT=store, PREDICTORS_TRAIN_THREADS="2",
           PREDICTORS_TRAIN_PROGRESS_EVERY="0s", PREDICTORS_BROKER_HEARTBEAT="0.5s")
log = open(os.path.join(TMP, "worker-train.log"), "w")
worker = subprocess.Popen([os.path.join(BIN, "worker-train"), "-b", broker.endpoint], env=env,
                          stdout=log, stderr=log)
client = mdp.Client(broker.endpoint, timeout=10, version=2)
try:
    wait_for("worker-train to register 'train'", lambda: mmi(client, "service", "train")[0] == "200",
             timeout=30)

    def job(step, params, needs_gpu=False):
        body = {"v": 1, "id": uuid.uuid4().hex, "run": "e2e", "step": step, "attempt": 1,
                "deadline": 0, "service": "train", "needs_gpu": needs_gpu, "params": params}
        partials = []
        client.send("train", msgpack.packb(body))
        reply = client.recv(timeout=300, partials=partials)
        check(reply is not None, "no result for " + step)
        return msgpack.unpackb(reply[0], raw=False), [msgpack.unpackb(p[0], raw=False) for p in partials]

    result, progress = job("train_xgboost", {"model": "xgboost", "fetch.dataset": ds, "rounds": 40,
                                             "seed": 3})
    check(result["status"] == "done", "xgboost job: %r" % (result,))
    uri = result["outputs"].get("model", "")
    check(uri.startswith("file://") and os.path.exists(uri[len("file://"):]), "no model at %r" % uri)
    check(result["metrics"].get("val_auc", 0) > 0.7, "val_auc %r" % result["metrics"].get("val_auc"))
    rounds = [p for p in progress if "round" in p.get("message", "")]
    check(rounds, "no progress with rounds among %d partials" % len(progress))
    last = rounds[-1]["message"]
    for word in ("train_loss", "val_loss", "samples/s", "ETA"):
        check(word in last, "progress message lacks %s: %r" % (word, last))

    # A permanent failure comes back from the broker as "dead", with the
    # worker's code heading the message.
    def failed_with(result, code):
        err = result["error"]
        return result["status"] == "fail" and (err["code"] == code or err["message"].startswith(code + ":"))

    result, _ = job("train_gpu", {"model": "xgboost", "fetch.dataset": ds}, needs_gpu=True)
    check(failed_with(result, "no_gpu"), "GPU job on a CPU trainer: %r" % (result,))
    result, _ = job("train_bad", {"model": "rf", "fetch.dataset": ds, "max_depth": 99})
    check(failed_with(result, "bad_params") and "max_depth" in result["error"]["message"],
          "bad hyperparameter: %r" % (result,))
    print("train through the broker: model %s, %d progress reports" % (uri, len(progress)))
finally:
    client.close()
    if worker.poll() is None:
        worker.send_signal(signal.SIGTERM)
        try:
            worker.wait(30)
        except subprocess.TimeoutExpired:
            worker.kill()
            fail("worker-train did not stop on SIGTERM")
    broker.stop()
