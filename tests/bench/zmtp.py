"""A minimal ZeroMQ peer over a plain TCP socket, written from the ZMTP 3.0
specification (ZeroMQ RFC 23/ZMTP, NULL mechanism, RFC 37 framing), not
from libzmq: one DEALER connection, whole messages as lists of frames.

The broker benchmark uses it so that our broker's clients are built like the
peers' (beanstalkd, Redis): Python on a raw socket, no I/O thread in between.
"""
import socket
import struct

_MORE, _LONG, _COMMAND = 0x01, 0x02, 0x04


class Dealer:
    def __init__(self, host, port):
        self.s = socket.create_connection((host, int(port)))
        self.s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buf = bytearray()
        # Greeting (64 bytes): signature, version 3.0, mechanism NULL, as-server 0.
        greeting = b"\xff" + b"\x00" * 8 + b"\x7f" + b"\x03\x00" + b"NULL".ljust(20, b"\x00") + b"\x00" + b"\x00" * 31
        assert len(greeting) == 64
        self.s.sendall(greeting + self._command(b"READY", {b"Socket-Type": b"DEALER"}))
        peer = self._read(64)
        if peer[0] != 0xFF or peer[9] != 0x7F or peer[10] < 3 or peer[12:16] != b"NULL":
            raise RuntimeError("not a ZMTP 3 NULL peer: %r" % bytes(peer[:16]))
        flags, body = self._frame()
        if not flags & _COMMAND or body[:6] != b"\x05READY":
            raise RuntimeError("expected READY, got %r" % bytes(body[:16]))

    @staticmethod
    def _command(name, props):
        body = bytes([len(name)]) + name
        for k, v in props.items():
            body += bytes([len(k)]) + k + struct.pack(">I", len(v)) + v
        return bytes([_COMMAND]) + bytes([len(body)]) + body

    def _read(self, n):
        while len(self.buf) < n:
            chunk = self.s.recv(65536)
            if not chunk:
                raise ConnectionError("peer closed the connection")
            self.buf += chunk
        out = self.buf[:n]
        del self.buf[:n]
        return out

    def _frame(self):
        flags = self._read(1)[0]
        size = struct.unpack(">Q", self._read(8))[0] if flags & _LONG else self._read(1)[0]
        return flags, bytes(self._read(size))

    def pending(self):
        """True when bytes already buffered may hold a message."""
        return len(self.buf) > 0

    def send_multipart(self, frames):
        out = []
        last = len(frames) - 1
        for i, f in enumerate(frames):
            more = _MORE if i < last else 0
            if len(f) > 255:
                out.append(struct.pack(">BQ", more | _LONG, len(f)))
            else:
                out.append(bytes([more, len(f)]))
            out.append(f)
        self.s.sendall(b"".join(out))

    def recv_multipart(self):
        frames = []
        while True:
            flags, body = self._frame()
            if flags & _COMMAND:        # PING and the like: not part of a message
                continue
            frames.append(body)
            if not flags & _MORE:
                return frames

    def close(self):
        self.s.close()
