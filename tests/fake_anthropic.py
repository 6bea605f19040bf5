#!/usr/bin/python3
"""A local stand-in for the Anthropic Messages API, for tests only.

It speaks the real request, response and error shapes and headers
(../shared/FACTS.md, "Anthropic Messages API"): POST /v1/messages with
x-api-key, anthropic-version and content-type: application/json; replies
{id, type: message, role, model, content: [...], stop_reason, usage} with
request-id and anthropic-ratelimit-* headers; errors {type: error, error:
{type, message}, request_id}. Like the real API it refuses a request that
does not have that shape (400 invalid_request_error) or lacks a key (401),
so a client that drifts from the format fails its tests.

What it answers is a script the test sets through a control endpoint:
  POST /_script   JSON list of steps, consumed one per /v1/messages request:
                  {"tool_input": {...}}          200, one tool_use block
                  {"text": "..."}                200, one text block
                  {"status": N, "error_type": T, "message": M, "headers": {...}}
                  {"raw": "...", "status": 200}  a body that is not JSON
  GET  /_log      JSON list of every /v1/messages request seen: headers, body
  POST /_reset    empties script and log
With the script empty it answers 500 api_error "script exhausted".

Data files for feasibility probes (HEAD and GET):
  /data/ok.csv (text/csv, 1234 bytes), /data/huge.csv (HEAD says 2 GiB),
  /data/page.html (text/html), /data/redirect-private (302 to the cloud
  metadata address), /data/redirect-file (302 to file:///etc/passwd),
  /data/redirect-ok (302 to /data/ok.csv),
  /data/nohead.csv (405 on HEAD, 206 with Content-Range on a ranged GET).

Usage: fake_anthropic.py PORTFILE   (binds 127.0.0.1:0, writes the port)
"""
import json
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

STATE = {"script": [], "log": [], "n": 0}
LOCK = threading.Lock()
CSV = b"date,value\n" + b"2020-01-01,1\n" * 94 + b"2020-01-02,22\n"


def error_body(etype, message, rid):
    return {"type": "error", "error": {"type": etype, "message": message}, "request_id": rid}


def check_request(headers, body):
    """Returns None or (status, type, message) as the real API would."""
    if not headers.get("x-api-key"):
        return (401, "authentication_error", "x-api-key header is required")
    if not headers.get("anthropic-version"):
        return (400, "invalid_request_error", "anthropic-version: header is required")
    if not headers.get("content-type", "").startswith("application/json"):
        return (400, "invalid_request_error", "content-type must be application/json")
    if not isinstance(body, dict):
        return (400, "invalid_request_error", "request body is not valid JSON")
    for field, kind in (("model", str), ("max_tokens", int), ("messages", list)):
        if not isinstance(body.get(field), kind):
            return (400, "invalid_request_error", "%s: Field required" % field)
    known = {"model", "max_tokens", "messages", "system", "tools", "tool_choice", "output_config",
             "temperature", "metadata", "stop_sequences", "stream", "top_k", "top_p"}
    for field in body:
        if field not in known:
            return (400, "invalid_request_error", "%s: Extra inputs are not permitted" % field)
    msgs = body["messages"]
    if not msgs or msgs[0].get("role") != "user":
        return (400, "invalid_request_error", "messages: first message must use the user role")
    tool_ids = set()
    for i, m in enumerate(msgs):
        want = "user" if i % 2 == 0 else "assistant"
        if m.get("role") != want:
            return (400, "invalid_request_error", "messages: roles must alternate between user and assistant")
        content = m.get("content")
        if isinstance(content, str):
            continue
        if not isinstance(content, list) or not content:
            return (400, "invalid_request_error", "messages.%d.content: must be a string or a list" % i)
        for block in content:
            t = block.get("type")
            if t == "tool_use":
                tool_ids.add(block.get("id"))
            elif t == "tool_result":
                if block.get("tool_use_id") not in tool_ids:
                    return (400, "invalid_request_error",
                            "messages.%d: tool_result block(s) provided when previous message does not "
                            "contain a matching tool_use" % i)
            elif t != "text":
                return (400, "invalid_request_error", "messages.%d: unknown content type %s" % (i, t))
    choice = body.get("tool_choice")
    if choice is not None:
        names = [t.get("name") for t in body.get("tools", [])]
        if choice.get("type") == "tool" and choice.get("name") not in names:
            return (400, "invalid_request_error", "tool_choice: tool %s not found in tools" % choice.get("name"))
        for t in body.get("tools", []):
            if not isinstance(t.get("input_schema"), dict) or t["input_schema"].get("type") != "object":
                return (400, "invalid_request_error", "tools: input_schema must be a JSON schema object")
    oc = body.get("output_config")
    if oc is not None:
        fmt = oc.get("format", {})
        if fmt.get("type") != "json_schema" or not isinstance(fmt.get("schema"), dict):
            return (400, "invalid_request_error", "output_config.format: json_schema with a schema required")
    return None


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def send(self, status, body, headers=None, ctype="application/json"):
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        self.send_response(status)
        self.send_header("content-type", ctype)
        self.send_header("content-length", str(len(data)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    def data(self):
        p = self.path
        if p == "/data/ok.csv":
            rng = self.headers.get("range")
            if rng == "bytes=0-0" and self.command == "GET":
                return self.send(206, CSV[:1], {"content-range": "bytes 0-0/%d" % len(CSV)}, "text/csv")
            return self.send(200, CSV, None, "text/csv")
        if p == "/data/huge.csv":
            self.send_response(200)
            self.send_header("content-type", "text/csv")
            self.send_header("content-length", str(2 << 30))
            self.end_headers()
            return
        if p == "/data/page.html":
            return self.send(200, b"<html>hello</html>", None, "text/html; charset=utf-8")
        if p == "/data/redirect-private":
            return self.send(302, b"", {"location": "http://169.254.169.254/latest/meta-data/"}, "text/plain")
        if p == "/data/redirect-file":
            return self.send(302, b"", {"location": "file:///etc/passwd"}, "text/plain")
        if p == "/data/redirect-ok":
            return self.send(302, b"", {"location": "/data/ok.csv"}, "text/plain")
        if p == "/data/nohead.csv":
            if self.command == "HEAD":
                return self.send(405, b"", None, "text/plain")
            return self.send(206, CSV[:1], {"content-range": "bytes 0-0/%d" % len(CSV)}, "text/csv")
        return self.send(404, b"not found", None, "text/plain")

    def do_HEAD(self):
        if self.path.startswith("/data/"):
            return self.data()
        return self.send(405, {"error": "HEAD"})

    def do_GET(self):
        if self.path == "/_log":
            with LOCK:
                return self.send(200, STATE["log"])
        if self.path.startswith("/data/"):
            return self.data()
        return self.send(404, error_body("not_found_error", "Not found", "req_nf"))

    def do_POST(self):
        length = int(self.headers.get("content-length", "0"))
        raw = self.rfile.read(length)
        if self.path == "/_script":
            with LOCK:
                STATE["script"] = json.loads(raw)
            return self.send(200, {"ok": True})
        if self.path == "/_reset":
            with LOCK:
                STATE["script"], STATE["log"] = [], []
            return self.send(200, {"ok": True})
        if self.path != "/v1/messages":
            return self.send(404, error_body("not_found_error", "Not found", "req_nf"))
        headers = {k.lower(): v for k, v in self.headers.items()}
        try:
            body = json.loads(raw)
        except ValueError:
            body = None
        with LOCK:
            STATE["n"] += 1
            n = STATE["n"]
            STATE["log"].append({"headers": headers, "body": body if body is not None else raw.decode("latin-1")})
            step = STATE["script"].pop(0) if STATE["script"] else None
        rid = "req_%04d" % n
        common = {"request-id": rid, "anthropic-ratelimit-requests-limit": "50",
                  "anthropic-ratelimit-requests-remaining": "49",
                  "anthropic-ratelimit-requests-reset": "2026-11-22T00:00:00Z"}
        bad = check_request(headers, body)
        if bad:
            return self.send(bad[0], error_body(bad[1], bad[2], rid), common)
        if step is None:
            return self.send(500, error_body("api_error", "script exhausted", rid), common)
        if "status" in step and "raw" not in step:
            hdrs = dict(common)
            hdrs.update(step.get("headers", {}))
            message = step.get("message", "error").replace("{key}", headers.get("x-api-key", ""))
            return self.send(step["status"], error_body(step["error_type"], message, rid), hdrs)
        if "raw" in step:
            return self.send(step.get("status", 200), step["raw"].encode(), common)
        if "tool_input" in step:
            name = (body.get("tool_choice") or {}).get("name") or "propose_task"
            content = [{"type": "tool_use", "id": "toolu_%04d" % n, "name": name, "input": step["tool_input"]}]
            stop = "tool_use"
        else:
            content = [{"type": "text", "text": step["text"]}]
            stop = step.get("stop_reason", "end_turn")
        reply = {"id": "msg_%04d" % n, "type": "message", "role": "assistant", "model": body["model"],
                 "content": content, "stop_reason": stop, "stop_sequence": None,
                 "usage": {"input_tokens": 321, "output_tokens": 123}}
        return self.send(200, reply, common)


def main():
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    with open(sys.argv[1] + ".tmp", "w") as f:
        f.write(str(server.server_address[1]))
    import os
    os.rename(sys.argv[1] + ".tmp", sys.argv[1])
    server.serve_forever()


if __name__ == "__main__":
    main()
