#!/usr/bin/python3
"""An independent Majordomo implementation in Python, written from the ZeroMQ
RFCs (7/MDP 0.1, 18/MDP 0.2, 8/MMI, 9/TSP), not from our C code: the stock
client and worker that anybody could write with pyzmq. The broker tests use
it to prove that outside peers work unchanged.

As a program:
  mdp.py worker EP SERVICE [--mode echo|upper|crash|hang|sleep:S|fail|retry|partial] [--v2] [--max N]
                [--hb SECONDS] [--keys CERT SERVERCERT]
  mdp.py call EP SERVICE [BODY...]          one request, prints the reply frames
"""
import os
import sys
import time

import zmq

MDPC01, MDPW01 = b"MDPC01", b"MDPW01"
MDPC02, MDPW02 = b"MDPC02", b"MDPW02"
# RFC 7 command bytes
READY, REQUEST, REPLY, HEARTBEAT, DISCONNECT = b"\x01", b"\x02", b"\x03", b"\x04", b"\x05"
# RFC 18 command bytes
W2 = dict(READY=b"\x01", REQUEST=b"\x02", PARTIAL=b"\x03", FINAL=b"\x04", HEARTBEAT=b"\x05", DISCONNECT=b"\x06")
C2 = dict(REQUEST=b"\x01", PARTIAL=b"\x02", FINAL=b"\x03")

HEARTBEAT_INTERVAL = 2.5   # seconds, as the guide's implementations
HEARTBEAT_LIVENESS = 3


def curve_options(sock, keys):
    """keys: dict(public, secret, server) of z85 strings, or None."""
    if keys:
        sock.curve_publickey = keys["public"].encode()
        sock.curve_secretkey = keys["secret"].encode()
        sock.curve_serverkey = keys["server"].encode()


def dealer(ctx, endpoint, keys, old=None):
    """A fresh DEALER connected to endpoint (closing old): how both peers (re)connect."""
    if old:
        old.close(linger=0)
    sock = ctx.socket(zmq.DEALER)
    sock.linger = 0
    curve_options(sock, keys)
    sock.connect(endpoint)
    return sock


def load_cert(path):
    """Reads a czmq certificate file (ZPL text): returns dict with public/secret and metadata."""
    out = {}
    for line in open(path):
        line = line.strip()
        if "=" in line and not line.startswith("#"):
            k, v = line.split("=", 1)
            out[k.strip()] = v.strip().strip('"')
    return {"public": out.get("public-key"), "secret": out.get("secret-key")}


class Client:
    """MDP 0.1 client (RFC 7): DEALER, ["", "MDPC01", service, body...]."""

    def __init__(self, endpoint, timeout=5.0, retries=3, keys=None, version=1):
        self.endpoint, self.timeout, self.retries, self.keys = endpoint, timeout, retries, keys
        self.version = version
        self.ctx = zmq.Context.instance()
        self.sock = None
        self.connect()

    def connect(self):
        self.sock = dealer(self.ctx, self.endpoint, self.keys, self.sock)

    def send(self, service, *body):
        if isinstance(service, str):
            service = service.encode()
        body = [b if isinstance(b, bytes) else str(b).encode() for b in body]
        if self.version == 1:
            self.sock.send_multipart([b"", MDPC01, service] + body)
        else:
            self.sock.send_multipart([MDPC02, C2["REQUEST"], service] + body)

    def recv(self, timeout=None, partials=None):
        """Returns the reply body frames (after service), or None on timeout."""
        deadline = time.time() + (self.timeout if timeout is None else timeout)
        while True:
            left = deadline - time.time()
            if left <= 0 or not self.sock.poll(int(left * 1000)):
                return None
            msg = self.sock.recv_multipart()
            if self.version == 1:
                assert msg[0] == b"" and msg[1] == MDPC01, msg
                return msg[3:]
            assert msg[0] == MDPC02, msg
            if msg[1] == C2["PARTIAL"]:
                if partials is not None:
                    partials.append(msg[3:])
                continue
            assert msg[1] == C2["FINAL"], msg
            return msg[3:]

    def request(self, service, *body, timeout=None):
        """Sends and waits, reconnecting and resending on timeout (the RFC's
        recommended client strategy). Returns the body frames or None."""
        for _ in range(self.retries):
            self.send(service, *body)
            reply = self.recv(timeout)
            if reply is not None:
                return reply
            self.connect()
        return None

    def close(self):
        self.sock.close(linger=0)


class Worker:
    """MDP worker (RFC 7, or RFC 18 with version=2), single-threaded like the
    guide's: it does not heartbeat while its handler runs."""

    def __init__(self, endpoint, service, handler, version=1, keys=None,
                 heartbeat=HEARTBEAT_INTERVAL, liveness=HEARTBEAT_LIVENESS):
        self.endpoint, self.service, self.handler = endpoint, service.encode(), handler
        self.version, self.keys = version, keys
        self.heartbeat, self.liveness = heartbeat, liveness
        self.ctx = zmq.Context.instance()
        self.sock = None
        self.disconnects = 0
        self.connect()

    def _send(self, command, *frames):
        if self.version == 1:
            self.sock.send_multipart([b"", MDPW01, command] + list(frames))
        else:
            self.sock.send_multipart([MDPW02, command] + list(frames))

    def _cmd(self, name):
        if self.version == 1:
            return dict(READY=READY, REQUEST=REQUEST, FINAL=REPLY, HEARTBEAT=HEARTBEAT, DISCONNECT=DISCONNECT)[name]
        return W2[name]

    def connect(self):
        self.sock = dealer(self.ctx, self.endpoint, self.keys, self.sock)
        self._send(self._cmd("READY"), self.service)
        self.live = self.liveness
        self.hb_at = time.time() + self.heartbeat

    def partial(self, address, *body):
        assert self.version == 2
        self._send(W2["PARTIAL"], address, b"", *body)

    def serve(self, max_requests=None, stop_after=None):
        served = 0
        start = time.time()
        while max_requests is None or served < max_requests:
            if stop_after and time.time() - start > stop_after:
                return served
            if self.sock.poll(int(self.heartbeat * 1000)):
                msg = self.sock.recv_multipart()
                self.live = self.liveness
                if self.version == 1:
                    assert msg[0] == b"" and msg[1] == MDPW01, msg
                    cmd, rest = msg[2], msg[3:]
                else:
                    assert msg[0] == MDPW02, msg
                    cmd, rest = msg[1], msg[2:]
                if cmd == self._cmd("REQUEST"):
                    address, empty, body = rest[0], rest[1], rest[2:]
                    assert empty == b""
                    reply = self.handler(self, address, body)
                    if reply is not None:
                        self._send(self._cmd("FINAL"), address, b"", *reply)
                    served += 1
                elif cmd == self._cmd("HEARTBEAT"):
                    pass
                elif cmd == self._cmd("DISCONNECT"):
                    self.disconnects += 1
                    self.connect()
            else:
                self.live -= 1
                if self.live == 0:
                    time.sleep(self.heartbeat)
                    self.connect()
            if time.time() > self.hb_at:
                self._send(self._cmd("HEARTBEAT"))
                self.hb_at = time.time() + self.heartbeat
        return served

    def close(self):
        self.sock.close(linger=0)


def titanic_submit(client, service, *body, options=()):
    reply = client.request("titanic.request", *options, service, *body)
    assert reply is not None, "titanic.request: no reply"
    return reply


def result_map(status, job_id="", error=None, outputs=None):
    """Our result body (proto/pr_job.h) as msgpack."""
    import msgpack
    m = {"v": 1, "id": job_id, "status": status, "outputs": outputs or {}, "metrics": {}}
    if error:
        m["error"] = {"code": error[0], "message": error[1]}
    return msgpack.packb(m, use_bin_type=True)


def _handler_for(mode):
    def handler(worker, address, body):
        if mode == "echo":
            return body
        if mode == "upper":
            return [b.upper() for b in body]
        if mode == "crash":
            os._exit(3)
        if mode == "hang":
            time.sleep(3600)
        if mode.startswith("sleep:"):
            time.sleep(float(mode[6:]))
            return body
        if mode == "fail":
            return [result_map("fail", address.decode(), ("bad_params", "cannot do this"))]
        if mode == "retry":
            return [result_map("retry", address.decode(), ("busy", "try later"))]
        if mode == "partial":
            import msgpack
            for pct in (25, 50, 75):
                worker.partial(address, msgpack.packb({"v": 1, "id": address.decode(), "percent": pct,
                                                       "stage": "work", "message": "", "metrics": {}}))
            return [result_map("done", address.decode())]
        raise SystemExit("unknown mode " + mode)
    return handler


def main(argv):
    if len(argv) >= 3 and argv[0] == "worker":
        ep, service = argv[1], argv[2]
        mode, version, max_n, keys, hb = "echo", 1, None, None, HEARTBEAT_INTERVAL
        i = 3
        while i < len(argv):
            if argv[i] == "--mode":
                mode = argv[i + 1]; i += 2
            elif argv[i] == "--v2":
                version = 2; i += 1
            elif argv[i] == "--hb":
                hb = float(argv[i + 1]); i += 2
            elif argv[i] == "--max":
                max_n = int(argv[i + 1]); i += 2
            elif argv[i] == "--keys":   # CERT SERVERCERT
                mine, server = load_cert(argv[i + 1] + "_secret"), load_cert(argv[i + 2])
                keys = {"public": mine["public"], "secret": mine["secret"], "server": server["public"]}
                i += 3
            else:
                raise SystemExit("bad argument " + argv[i])
        w = Worker(ep, service, _handler_for(mode), version=version, keys=keys, heartbeat=hb)
        w.serve(max_n)
        return 0
    if len(argv) >= 3 and argv[0] == "call":
        c = Client(argv[1])
        reply = c.request(argv[2], *argv[3:])
        if reply is None:
            print("no reply", file=sys.stderr)
            return 1
        for f in reply:
            print(f.decode(errors="replace"))
        return 0
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
