#!/usr/bin/python3
"""One broker benchmark run: 1 producer, 2 consumers each holding one job at a
time (reserve -> ack), 200-byte jobs; prints one JSON line with jobs/s and the
enqueue -> ack latency percentiles. Called by tests/bench/broker.sh, which
starts and stops the servers.

  broker_bench.py SYSTEM ADDRESS MODE JOBS MAX_SECONDS
    SYSTEM   predictors | beanstalkd | redis
    MODE     sync (the producer waits for each put's acknowledgement),
             inflight64 (64 puts outstanding), paced (1,000 puts/s)
The same Python client structure is used for every system (a raw TCP socket
speaking the system's protocol; ours ZMTP 3.0 via zmtp.py, or pyzmq with
BENCH_PYZMQ=1), so client costs are alike; latency = the consumer's receipt
of the job - the producer's send time, both CLOCK_MONOTONIC on this host;
seconds run until the last job was handled. The JSON also gives the CPU
seconds of the producer and of the consumers.
"""
import json
import math
import multiprocessing as mp
import os
import socket
import sys
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

BODY = 200


def s_cpu():
    t = os.times()
    return t.user + t.system


def body(now):
    head = b"%.9f " % now
    return head + b"x" * (BODY - len(head))


# ----------------------------------------------------------------- beanstalkd
class Beanstalk:
    def __init__(self, addr):
        host, port = addr.split(":")
        self.s = socket.create_connection((host, int(port)))
        self.s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.f = self.s.makefile("rb")

    def put_send(self, data):
        self.s.sendall(b"put 0 0 600 %d\r\n%s\r\n" % (len(data), data))

    def put_recv(self):
        line = self.f.readline()
        assert line.startswith(b"INSERTED"), line

    def reserve(self):
        self.s.sendall(b"reserve-with-timeout 1\r\n")
        line = self.f.readline().split()
        if line[0] == b"TIMED_OUT":
            return None, None
        assert line[0] == b"RESERVED", line
        data = self.f.read(int(line[2]) + 2)[:-2]
        return line[1], data

    def ack(self, jid):
        self.s.sendall(b"delete %s\r\n" % jid)
        line = self.f.readline()
        assert line.startswith(b"DELETED"), line


# ----------------------------------------------------------------- redis
class Redis:
    def __init__(self, addr, name="c"):
        host, port = addr.split(":")
        self.s = socket.create_connection((host, int(port)))
        self.s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.f = self.s.makefile("rb")
        self.processing = b"bench:processing:" + name.encode()

    def cmd(self, *args):
        out = [b"*%d\r\n" % len(args)]
        for a in args:
            a = a if isinstance(a, bytes) else str(a).encode()
            out.append(b"$%d\r\n%s\r\n" % (len(a), a))
        self.s.sendall(b"".join(out))

    def reply(self):
        line = self.f.readline()
        t, rest = line[:1], line[1:-2]
        if t in (b"+", b":"):
            return rest
        if t == b"-":
            raise RuntimeError(rest)
        if t == b"$":
            n = int(rest)
            return None if n < 0 else self.f.read(n + 2)[:-2]
        if t == b"*":
            n = int(rest)
            return None if n < 0 else [self.reply() for _ in range(n)]
        raise RuntimeError(line)

    def put_send(self, data):
        self.cmd("LPUSH", "bench:jobs", data)

    def put_recv(self):
        self.reply()

    def reserve(self):
        self.cmd("BLMOVE", "bench:jobs", self.processing, "RIGHT", "LEFT", 1)
        data = self.reply()
        return (None, None) if data is None else (data, data)

    def ack(self, data):
        self.cmd("LREM", self.processing, 1, data)
        self.reply()


# ----------------------------------------------------------------- predictors
# Clients on a raw socket speaking ZMTP 3.0 (tests/bench/zmtp.py), like the
# peers' clients; BENCH_PYZMQ=1 uses pyzmq and tests/mdp.py instead (libzmq
# with its I/O thread in each client process).
PYZMQ = os.environ.get("BENCH_PYZMQ") == "1"


class Predictors:
    def __init__(self, addr):
        host, port = addr.split(":")
        if PYZMQ:
            import zmq
            self.s = zmq.Context.instance().socket(zmq.DEALER)
            self.s.connect("tcp://" + addr)
        else:
            import zmtp
            self.s = zmtp.Dealer(host, port)

    def put_send(self, data):
        self.s.send_multipart([b"", b"MDPC01", b"titanic.request", b"bench", data])

    def put_recv(self):
        msg = self.s.recv_multipart()
        assert msg[3] == b"200", msg


def predictors_consumer(addr, done, sent_v, finished, lat_q):
    lats, last = [], [0.0]

    def handler(address, frames):
        now = time.monotonic()
        lats.append(now - float(frames[0].split(b" ", 1)[0]))
        last[0] = now
        with done.get_lock():
            done.value += 1
        return [b"ok"]
    if PYZMQ:
        import mdp
        w = mdp.Worker("tcp://" + addr, "bench", lambda worker, address, frames: handler(address, frames))
        while not (finished.value and done.value >= sent_v.value):
            w.serve(stop_after=0.2)
    else:
        # An MDP 0.1 worker (RFC 7) as the RFC describes it: READY, then
        # REQUEST -> REPLY; a HEARTBEAT when 2.5 s pass without sending.
        import select
        import zmtp
        host, port = addr.split(":")
        w = zmtp.Dealer(host, port)
        w.send_multipart([b"", b"MDPW01", b"\x01", b"bench"])
        sent_at = time.monotonic()
        while not (finished.value and done.value >= sent_v.value):
            if not w.pending() and not select.select([w.s], [], [], 0.2)[0]:
                pass
            else:
                msg = w.recv_multipart()
                assert msg[0] == b"" and msg[1] == b"MDPW01", msg
                if msg[2] == b"\x02":           # REQUEST: address, empty, body
                    reply = handler(msg[3], msg[5:])
                    w.send_multipart([b"", b"MDPW01", b"\x03", msg[3], b""] + reply)
                    sent_at = time.monotonic()
                elif msg[2] == b"\x05":         # DISCONNECT
                    raise SystemExit("broker sent DISCONNECT")
            if time.monotonic() - sent_at > 2.5:
                w.send_multipart([b"", b"MDPW01", b"\x04"])
                sent_at = time.monotonic()
    time.sleep(0.2)             # the last reply leaves before the socket closes
    lat_q.put((lats, s_cpu(), last[0]))


def queue_consumer(system, addr, done, sent_v, finished, lat_q, name):
    q = Beanstalk(addr) if system == "beanstalkd" else Redis(addr, name)
    lats, last = [], [0.0]
    while not (finished.value and done.value >= sent_v.value):
        jid, data = q.reserve()
        if jid is None:
            continue
        now = time.monotonic()
        lats.append(now - float(data.split(b" ", 1)[0]))
        q.ack(jid)
        last[0] = time.monotonic()
        with done.get_lock():
            done.value += 1
    lat_q.put((lats, s_cpu(), last[0]))


def producer(system, addr, mode, n, deadline):
    q = {"beanstalkd": Beanstalk, "redis": Redis, "predictors": Predictors}[system](addr)
    sent = 0
    if mode == "sync":
        while sent < n and time.monotonic() < deadline:
            q.put_send(body(time.monotonic()))
            q.put_recv()
            sent += 1
        return sent
    if system == "predictors" and PYZMQ:
        # A ZeroMQ socket belongs to one thread: send and receive in turn.
        window = 64 if mode == "inflight64" else 4096
        outstanding = 0
        start = time.monotonic()
        while sent < n and time.monotonic() < deadline:
            due = start + sent / 1000.0 if mode == "paced" else 0
            now = time.monotonic()
            if outstanding < window and now >= due:
                q.put_send(body(now))
                sent += 1
                outstanding += 1
                continue
            wait = max(0.0, due - now) if outstanding < window else 1.0
            if outstanding == 0:
                time.sleep(wait)        # as the other systems' producers do
                continue
            # poll's timeout is in whole ms: round up rather than spin (a
            # spinning producer takes a core from the server and consumers).
            if q.s.poll(max(1, math.ceil(wait * 1000))):
                q.put_recv()
                outstanding -= 1
        while outstanding:
            q.put_recv()
            outstanding -= 1
        return sent
    # Pipelined: a reader thread takes the acknowledgements.
    window = threading.Semaphore(64 if mode == "inflight64" else 4096)
    got = [0]

    def reader():
        while got[0] < n:
            q.put_recv()
            got[0] += 1
            window.release()
    t = threading.Thread(target=reader, daemon=True)
    t.start()
    start = time.monotonic()
    while sent < n and time.monotonic() < deadline:
        if mode == "paced":
            due = start + sent / 1000.0
            delay = due - time.monotonic()
            if delay > 0:
                time.sleep(delay)
        window.acquire()
        q.put_send(body(time.monotonic()))
        sent += 1
    return sent


def main():
    system, addr, mode, n, max_s = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), float(sys.argv[5])
    done, sent_v, finished = mp.Value("l", 0), mp.Value("l", 0), mp.Value("i", 0)
    lat_q = mp.Queue()
    if system == "predictors":
        consumers = [mp.Process(target=predictors_consumer, args=(addr, done, sent_v, finished, lat_q))
                     for _ in range(2)]
    else:
        consumers = [mp.Process(target=queue_consumer, args=(system, addr, done, sent_v, finished, lat_q, "c%d" % i))
                     for i in range(2)]
    for c in consumers:
        c.start()
    time.sleep(1.0)             # consumers connected and waiting
    start = time.monotonic()
    sent = producer(system, addr, mode, n, start + max_s)
    sent_v.value = sent
    finished.value = 1
    producer_cpu = s_cpu()
    lats, consumer_cpu, last = [], 0.0, start
    for c in consumers:
        got, cpu, t = lat_q.get(timeout=120)
        lats.extend(got)
        consumer_cpu += cpu
        last = max(last, t)
    # Until the last job was handled: not the consumers' own time to notice
    # the end (a poll or reserve timeout, different for each system).
    elapsed = (last if lats else time.monotonic()) - start
    for c in consumers:
        c.join(5)
        if c.is_alive():
            c.terminate()
    lats.sort()
    acked = len(lats)

    def pct(p):
        return lats[min(len(lats) - 1, int(p * len(lats)))] * 1000 if lats else float("nan")
    print(json.dumps({"system": system, "mode": mode, "sent": sent, "acked": acked,
                      "seconds": round(elapsed, 2), "jobs_per_s": round(acked / elapsed, 1),
                      "p50_ms": round(pct(0.50), 2), "p99_ms": round(pct(0.99), 2),
                      "producer_cpu_s": round(producer_cpu, 2), "consumer_cpu_s": round(consumer_cpu, 2)}))


if __name__ == "__main__":
    main()
