#!/usr/bin/env python3
"""Open N TLS keep-alive connections, send one request on each, then hold
them silent until stdin closes (bench/run.py, scenario 6).

Prints one line "open N SECONDS" once every connection has its answer; the
harness then measures the server and closes our stdin, and we exit."""
import argparse
import resource
import socket
import ssl
import sys
import time


def read_response(s):
    """Read one HTTP/1.1 response with a Content-Length body."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = s.recv(4096)
        if not chunk:
            raise ConnectionError("closed before the response")
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value.strip())
    while len(body) < length:
        chunk = s.recv(4096)
        if not chunk:
            raise ConnectionError("closed inside the body")
        body += chunk
    status = int(head.split(b" ", 2)[1])
    return status


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--cafile", required=True)
    ap.add_argument("--count", type=int, required=True)
    ap.add_argument("--path", default="/healthz")
    a = ap.parse_args()

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    need = a.count + 64
    if soft < need:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(max(need, soft), hard), hard))

    ctx = ssl.create_default_context(cafile=a.cafile)
    req = ("GET %s HTTP/1.1\r\nHost: localhost\r\n\r\n" % a.path).encode()
    conns = []
    t0 = time.monotonic()
    for _ in range(a.count):
        raw = socket.create_connection(("127.0.0.1", a.port), timeout=30)
        s = ctx.wrap_socket(raw, server_hostname="localhost")
        s.sendall(req)
        status = read_response(s)
        if status != 200:
            raise SystemExit("idle: status %d" % status)
        conns.append(s)
    print("open %d %.2f" % (len(conns), time.monotonic() - t0), flush=True)
    sys.stdin.read()   # hold until the harness closes our stdin
    for s in conns:
        s.close()


if __name__ == "__main__":
    main()
