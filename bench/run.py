#!/usr/bin/env python3
"""notesd side by side with nginx (issue 8): `make bench`, `make bench-smoke`.

What it does, in order:
  1. makes a temp folder with secrets (notesd gen-secrets), a certificate
     (notesd gen-cert), a database with one user, one token and N notes
     (through the real API), and an nginx prefix whose one worker answers
     every request with a constant 200-byte JSON body and the same security
     headers notesd sends (read from src/http_response.c);
  2. per scenario starts both servers fresh, pinned to core 0 (taskset), and
     runs wrk pinned to core 1, alternating targets A B A B; each run warms
     up, then measures for a fixed time while /proc/PID/stat and VmHWM of
     the server are read around the measured window;
  3. times start-up (spawn to the first answered /healthz) on an empty and
     on a ~100 MB database, and measures the stripped binary;
  4. prints the medians and, for the full run, writes bench/RESULTS.md.

Readiness is never a sleep: notesd reports READY=1 (with X_NOTESD_PORT) on
a NOTIFY_SOCKET datagram socket made here; nginx is started as a daemon,
whose start-up command returns once its listening socket exists, and one
request then proves the worker answers.

Numbers are reported, never asserted: the smoke run only checks that every
scenario produced answers and that the harness itself works.
"""
import argparse
import json
import os
import platform
import re
import resource
import select
import shutil
import signal
import socket
import ssl
import statistics
import subprocess
import sys
import tempfile
import time
import http.client

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
CLK_TCK = os.sysconf("SC_CLK_TCK")
SERVER_CPU = "0"
CLIENT_CPU = "1"
USER = "benchuser"
PASSWORD = "bench correct horse battery staple"
# The storm logs in as its own user: an account keeps its newest 16 tokens
# (NOTES_USER_MAX_SESSIONS), and the GETs' token must not be one it ends.
STORM_USER = "benchstorm"
# Scenario 2 spreads its notes over this many accounts (at most 10,000 notes
# each, NOTES_USER_MAX_NOTES): room for 1.28 M POSTs, some 25,000/s over the
# warm-ups and runs.
POST_USERS = 128
NGINX_BODY_BYTES = 200


def log(msg):
    print("bench: " + msg, file=sys.stderr, flush=True)


def die(msg):
    log("FAIL: " + msg)
    sys.exit(1)


# ---- /proc ---------------------------------------------------------------

def cpu_ticks(pid):
    """utime + stime of the whole process (all threads), in clock ticks."""
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])


def status_kib(pid, key):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1])
    return 0


def reset_hwm(pid):
    """Writing 5 to clear_refs resets VmHWM to the current RSS (Linux >= 4.0)."""
    try:
        with open("/proc/%d/clear_refs" % pid, "w") as f:
            f.write("5")
    except OSError:
        pass


def established(port):
    """Server-side ESTABLISHED TCP connections on 127.0.0.1:port."""
    n = 0
    with open("/proc/net/tcp") as f:
        next(f)
        for line in f:
            local, _, state = line.split()[1:4]
            if state == "01" and int(local.split(":")[1], 16) == port:
                n += 1
    return n


def wait_pid_exit(pid, timeout):
    """Wait for a process that is not our child to end (pidfd, no polling)."""
    try:
        fd = os.pidfd_open(pid)
    except ProcessLookupError:
        return True
    try:
        r, _, _ = select.select([fd], [], [], timeout)
        return bool(r)
    finally:
        os.close(fd)


# ---- servers -------------------------------------------------------------

class Notesd:
    name = "notesd"

    def __init__(self, h):
        self.h = h
        self.proc = None
        self.log_path = None

    def start(self, tag):
        h = self.h
        sock_path = os.path.join(h.tmp, "notify.sock")
        if os.path.exists(sock_path):
            os.unlink(sock_path)
        ns = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        ns.bind(sock_path)
        # Started as root, notesd announces READY after dropping to NOTES_USER.
        os.chmod(sock_path, 0o666)
        env = dict(h.notesd_env)
        env["NOTIFY_SOCKET"] = sock_path
        self.log_path = os.path.join(h.tmp, "notesd-%s.log" % tag)
        logf = open(self.log_path, "wb")
        self.proc = subprocess.Popen(
            ["taskset", "-c", SERVER_CPU, h.notesd, "serve"], env=env,
            stdin=subprocess.DEVNULL, stdout=logf, stderr=subprocess.STDOUT)
        logf.close()
        deadline = time.monotonic() + 30
        port = None
        try:
            while port is None:
                left = deadline - time.monotonic()
                if left <= 0 or self.proc.poll() is not None:
                    die("notesd did not report READY (log: %s)\n%s"
                        % (self.log_path, open(self.log_path).read()[-2000:]))
                r, _, _ = select.select([ns], [], [], min(left, 0.5))
                if not r:
                    continue
                msg = ns.recv(4096).decode()
                fields = dict(l.split("=", 1) for l in msg.split("\n") if "=" in l)
                if fields.get("READY") == "1":
                    port = int(fields["X_NOTESD_PORT"])
        finally:
            ns.close()
            os.unlink(sock_path)
        self.port = port
        self.pid = self.proc.pid
        return port

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    def handshakes(self):
        """(handshakes, resumed, suites) from the debug log of this start."""
        total = resumed = 0
        suites = {}
        with open(self.log_path, errors="replace") as f:
            for line in f:
                m = re.search(r'TLS handshake done: ([^\s"]+) ([^\s"]+)', line)
                if m:
                    total += 1
                    suites[m.group(1) + " " + m.group(2)] = 1
                    if "(resumed)" in line:
                        resumed += 1
        return total, resumed, sorted(suites)


class Nginx:
    name = "nginx"

    def __init__(self, h):
        self.h = h
        self.master = None

    def start(self, tag, access_log=False, keepalive_timeout=60):
        h = self.h
        prefix = os.path.join(h.tmp, "nginx-" + tag)
        os.makedirs(prefix, exist_ok=True)
        self.prefix = prefix
        self.port = free_port()
        self.access_log = os.path.join(prefix, "access.log") if access_log else None
        conf = os.path.join(prefix, "nginx.conf")
        with open(conf, "w") as f:
            f.write(nginx_conf(h, prefix, self.port, self.access_log, keepalive_timeout))
        # As a daemon, `nginx` returns once the master has bound the socket.
        subprocess.run(["taskset", "-c", SERVER_CPU, h.nginx, "-p", prefix, "-c", conf],
                       check=True, stdin=subprocess.DEVNULL)
        # One answered request proves the worker runs (and the pidfile exists).
        st, _ = https_get(self.port, h.cafile, "/")
        if st != 200:
            die("nginx answered %d" % st)
        with open(os.path.join(prefix, "nginx.pid")) as f:
            self.master = int(f.read().strip())
        with open("/proc/%d/task/%d/children" % (self.master, self.master)) as f:
            workers = [int(x) for x in f.read().split()]
        if len(workers) != 1:
            die("expected one nginx worker, found %r" % workers)
        self.pid = workers[0]
        return self.port

    def stop(self):
        if self.master:
            try:
                os.kill(self.master, signal.SIGQUIT)   # graceful: flushes logs
            except ProcessLookupError:
                pass
            if not wait_pid_exit(self.master, 15):
                os.kill(self.master, signal.SIGKILL)
                wait_pid_exit(self.master, 5)
        self.master = None

    def handshakes(self):
        total = resumed = 0
        suites = {}
        if not self.access_log or not os.path.exists(self.access_log):
            return 0, 0, []
        with open(self.access_log) as f:
            for line in f:
                parts = line.split()
                if len(parts) < 3:
                    continue
                # One line per request; a connection's handshake is counted
                # at its first request.
                if parts[1] != "1":
                    continue
                total += 1
                suites[parts[2] + " " + parts[3]] = 1
                if parts[0] == "r":
                    resumed += 1
        return total, resumed, sorted(suites)


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def security_headers():
    """The header lines notesd adds to every TLS response, from src/http_response.c."""
    src = open(os.path.join(ROOT, "src", "http_response.c")).read()
    out = []
    for var in ("hsts_header", "security_headers"):
        m = re.search(r"static const char %s\[\]\s*=\s*((?:\s*\"(?:[^\"\\]|\\.)*\")+)\s*;" % var, src)
        if not m:
            die("cannot find %s in src/http_response.c" % var)
        text = "".join(re.findall(r"\"((?:[^\"\\]|\\.)*)\"", m.group(1)))
        text = text.replace("\\r\\n", "\n")
        for line in text.split("\n"):
            if line.strip():
                name, _, value = line.partition(":")
                out.append((name.strip(), value.strip()))
    return out


def nginx_body():
    head = '{"id":1,"title":"bench note","created_at":"2025-01-01T00:00:00Z","content":"'
    tail = '"}'
    return head + "x" * (NGINX_BODY_BYTES - len(head) - len(tail) - 1) + tail + "\n"


def nginx_conf(h, prefix, port, access_log, keepalive_timeout):
    user = ""
    if os.geteuid() == 0:
        # As root nginx would switch its worker to "nobody"; stay the
        # current user so the temp prefix needs no other permissions.
        import pwd
        import grp
        pw = pwd.getpwuid(os.getuid())
        user = "user %s %s;" % (pw.pw_name, grp.getgrgid(pw.pw_gid).gr_name)
    add = "\n".join("        add_header %s \"%s\" always;" % (n, v) for n, v in security_headers())
    if access_log:
        logline = ("    log_format bench '$ssl_session_reused $connection_requests "
                   "$ssl_protocol $ssl_cipher';\n"
                   "    access_log %s bench buffer=64k;" % access_log)
    else:
        logline = "    access_log off;"
    return """# made by bench/run.py
%(user)s
worker_processes 1;
worker_rlimit_nofile 24000;
pid %(prefix)s/nginx.pid;
error_log %(prefix)s/error.log warn;
events { worker_connections 20000; }
http {
    client_body_temp_path %(prefix)s/body;
    proxy_temp_path %(prefix)s/proxy;
    fastcgi_temp_path %(prefix)s/fastcgi;
    uwsgi_temp_path %(prefix)s/uwsgi;
    scgi_temp_path %(prefix)s/scgi;
%(logline)s
    server_tokens off;
    keepalive_requests 100000000;
    keepalive_timeout %(kat)ds;
    types { }
    default_type "application/json; charset=utf-8";
    server {
        listen 127.0.0.1:%(port)d ssl;
        ssl_certificate %(cert)s;
        ssl_certificate_key %(key)s;
        ssl_protocols TLSv1.2 TLSv1.3;
        # notesd follows the client's suite preference; so does this.
        ssl_ciphers ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-ECDSA-CHACHA20-POLY1305;
        ssl_conf_command Ciphersuites TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256;
        ssl_ecdh_curve X25519:prime256v1:secp384r1;
        ssl_session_tickets on;
        location / {
%(add)s
        add_header X-Request-Id $request_id always;
        return 200 '%(body)s';
        }
    }
}
""" % dict(user=user, prefix=prefix, logline=logline, port=port, cert=h.cert, key=h.key,
           add=add, body=nginx_body(), kat=keepalive_timeout)


# ---- HTTP helpers (seeding, readiness) -----------------------------------

def https_ctx(cafile):
    return ssl.create_default_context(cafile=cafile)


def https_get(port, cafile, path, timeout=30, ctx=None):
    c = http.client.HTTPSConnection("localhost", port, context=ctx or https_ctx(cafile),
                                    timeout=timeout)
    c.request("GET", path)
    r = c.getresponse()
    body = r.read()
    c.close()
    return r.status, body


# ---- start-up and size ----------------------------------------------------

def healthz_answers(port, ctx):
    """None once GET /healthz on port answers 200, else why not (yet).

    Any socket, TLS or HTTP error only means "not yet": a server still
    starting may refuse, reset, or be slow to finish the handshake; the
    caller's deadline decides when that becomes a failure."""
    try:
        st, _ = https_get(port, None, "/healthz", timeout=2, ctx=ctx)
    except (OSError, http.client.HTTPException) as e:
        return "%s: %s" % (type(e).__name__, e)
    return None if st == 200 else "answered %d" % st


def time_startup(h, env, port):
    """Milliseconds from spawning notesd to its first answered /healthz.

    Not the READY datagram: the client-visible moment is what counts. The
    poll is bounded (10 s); a refused connection costs microseconds. The TLS
    context is made once, before the clock starts: loading the CA file takes
    about 1 ms, which would otherwise be counted in every run and double the
    poll period."""
    ctx = https_ctx(h.cafile)
    t0 = time.monotonic()
    proc = subprocess.Popen(["taskset", "-c", SERVER_CPU, h.notesd, "serve"], env=env,
                            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    try:
        while True:
            why = healthz_answers(port, ctx)
            if why is None:
                break
            if proc.poll() is not None or time.monotonic() - t0 > 10:
                die("notesd did not answer /healthz within 10 s (exit %r; last: %s)"
                    % (proc.poll(), why))
            time.sleep(0.001)
        return (time.monotonic() - t0) * 1000
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def startup_db(h, name, mib):
    """An environment whose database holds USER and about `mib` MiB of notes."""
    env = dict(h.notesd_env)
    os.mkdir(os.path.join(h.tmp, "data", name), 0o700)
    env["NOTES_DB"] = os.path.join(h.tmp, "data", name, "notes.db")
    env["NOTES_AUDIT_DIR"] = os.path.join(h.tmp, "data", name, "audit")
    env["NOTES_MAX_BODY"] = "16777216"
    run_cmd([h.notesd, "user", "add", USER, "--role", "user"], env=env,
            input=(PASSWORD + "\n").encode())
    if mib:
        srv = Notesd(h)
        saved, h.notesd_env = h.notesd_env, dict(env, NOTES_REGISTRATION="open")
        try:
            port = srv.start("startup-seed")
            c, hdr = api_login(h, port)
            content = "s" * 60000              # near the 64 KiB content limit
            for i in range(mib * 1048576 // len(content) + 1):
                if i and i % 90 == 0:          # an account holds at most 6 MiB
                    name = "%s%d" % (USER, i)
                    register(c, name)
                    hdr = api_login(h, port, name, c)[1]
                post_note(c, hdr, "big %d" % i, content)
            c.close()
        finally:
            srv.stop()
            h.notesd_env = saved
    return env


def run_startup(h, mib, runs):
    dbs = []
    for name, size in (("startup-empty", 0), ("startup-big", mib)):
        t0 = time.monotonic()
        env = startup_db(h, name, size)
        port = free_port()
        env["NOTES_LISTEN"] = "127.0.0.1:%d" % port
        db_mib = os.path.getsize(env["NOTES_DB"]) / 1048576
        log("  %s: database %.2f MiB, made in %.1f s" % (name, db_mib, time.monotonic() - t0))
        dbs.append(dict(db=name, db_mib=db_mib, env=env, port=port, runs=[]))
    # Both databases exist before the first run and the runs alternate
    # (empty, big, empty, big): measured one block after the other, the
    # first block ran seconds earlier than the second and drift on a shared
    # machine showed up as a difference between the databases.
    for _ in range(runs):
        for d in dbs:
            d["runs"].append(time_startup(h, d["env"], d["port"]))
    out = []
    for d in dbs:
        ms = d["runs"]
        log("  %s: start-up to /healthz median %.1f ms, max %.1f ms"
            % (d["db"], statistics.median(ms), max(ms)))
        out.append(dict(db=d["db"], db_mib=d["db_mib"], runs=ms,
                        median_ms=statistics.median(ms), max_ms=max(ms)))
    return out


def binary_size(h):
    """Bytes of the notesd binary as built and stripped (a copy is stripped)."""
    copy = os.path.join(h.tmp, "notesd-stripped")
    shutil.copyfile(h.notesd, copy)
    run_cmd(["strip", copy])
    return dict(built=os.path.getsize(h.notesd), stripped=os.path.getsize(copy))


# ---- wrk -----------------------------------------------------------------

class Wrk:
    """One wrk process pinned to the client core, summary via wrk.lua."""

    def __init__(self, h, port, env, conns, seconds, out, shim_stats=None):
        self.out = out
        if os.path.exists(out):
            os.unlink(out)
        e = dict(os.environ)
        e.update(env)
        e["BENCH_OUT"] = out
        if shim_stats:
            e["LD_PRELOAD"] = h.shim
            e["BENCH_TLS_STATS"] = shim_stats
        cmd = ["taskset", "-c", CLIENT_CPU, "wrk", "-t1", "-c%d" % conns, "-d%ds" % seconds,
               "--timeout", "10s", "--latency", "-s", os.path.join(HERE, "wrk.lua"),
               "https://localhost:%d/" % port]
        self.proc = subprocess.Popen(cmd, env=e, stdin=subprocess.DEVNULL,
                                     stdout=subprocess.PIPE, stderr=subprocess.STDOUT)

    def wait(self):
        text = self.proc.communicate()[0].decode(errors="replace")
        if self.proc.returncode != 0 or not os.path.exists(self.out):
            die("wrk failed (%d):\n%s" % (self.proc.returncode, text))
        with open(self.out) as f:
            return json.load(f)

    def interrupt(self):
        """Stop early; wrk prints its summary on SIGINT."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
        return self.wait()


# ---- scenarios -----------------------------------------------------------

SCENARIOS = [
    ("get", "1. keep-alive GET /v1/notes/{id} (auth)"),
    ("post", "2. keep-alive POST /v1/notes"),
    ("full", "3. full handshakes (Connection: close, no resumption)"),
    ("resumed", "4. resumed handshakes (Connection: close, tickets)"),
    ("storm", "5. GET as in 1 while 8 clients log in"),
]
# Measured by their own code, not by wrk A/B runs; the binary's size is
# always reported (it costs one strip).
OTHER_SCENARIOS = ("idle", "startup")


def scenario_env(h, target, scn):
    """The wrk environment of scenario scn against target."""
    # nginx gets the very same requests (it ignores what it does not use).
    if scn in ("get", "storm"):
        return dict(BENCH_MODE="get", BENCH_PATH="/v1/notes/", BENCH_IDS=h.ids_file,
                    BENCH_TOKEN=h.token), h.conns
    if scn == "post":
        return dict(BENCH_MODE="post", BENCH_PATH="/v1/notes", BENCH_TOKENS=h.post_tokens), h.conns
    if scn in ("full", "resumed"):
        return dict(BENCH_MODE="plain", BENCH_PATH="/healthz", BENCH_CLOSE="1",
                    BENCH_TLS_RESUME="0" if scn == "full" else "1"), h.hs_conns
    raise ValueError(scn)


def one_run(h, srv, scn, rep):
    env, conns = scenario_env(h, srv.name, scn)
    shim = scn in ("full", "resumed")
    stats = os.path.join(h.tmp, "shim-%s-%s-%d.txt" % (scn, srv.name, rep)) if shim else None
    out = os.path.join(h.tmp, "wrk.json")
    if h.warmup > 0:
        Wrk(h, srv.port, env, conns, h.warmup, out, stats).wait()
    storm = None
    if scn == "storm":
        lenv = dict(BENCH_MODE="login", BENCH_PATH="/v1/auth/login", BENCH_USER=STORM_USER,
                    BENCH_PASSWORD=PASSWORD)
        storm = Wrk(h, srv.port, lenv, 8, h.duration + 30, os.path.join(h.tmp, "wrk-login.json"))
    perf = None
    if h.perf and srv.name == "notesd":
        # Profile of the measured window (cpu-clock: this VM has no PMU).
        perf = subprocess.Popen(
            ["perf", "record", "-q", "-e", "cpu-clock", "-F", "999", "--call-graph", "dwarf,16384",
             "-p", str(srv.pid), "-o", os.path.join(h.perf, "perf-%s-%d.data" % (scn, rep))],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    floor = None
    if shim and srv.name == "notesd":
        # The floor moves with the machine (steal time, clocks): measured
        # right before each handshake run, on the server's core, so the
        # ratio compares like with like.
        floor = crypto_floor(h, h.floor_secs)
        if scn == "full" and not h.smoke:
            # Issue 8's own floor too (~30 s: the program runs every curve).
            floor["benchmark"] = mbedtls_benchmark(h)
    elif scn == "get" and srv.name == "notesd":
        floor = crypto_floor(h, h.floor_secs, request=True)
    reset_hwm(srv.pid)
    c0 = cpu_ticks(srv.pid)
    t0 = time.monotonic()
    res = Wrk(h, srv.port, env, conns, h.duration, out, stats).wait()
    if h.smoke and res["requests"] == 0 and scn != "storm":
        # A busy machine can starve a one-second run; one longer try.
        log("  %s/%s: no answer in %d s, trying once more for 3 s" % (scn, srv.name, h.duration))
        c0 = cpu_ticks(srv.pid)
        t0 = time.monotonic()
        res = Wrk(h, srv.port, env, conns, 3, out, stats).wait()
    c1 = cpu_ticks(srv.pid)
    wall = time.monotonic() - t0
    if perf:
        perf.send_signal(signal.SIGINT)
        perf.wait()
    if storm:
        lres = storm.interrupt()
        res["logins"] = lres["requests"]
        res["login_errors"] = lres["err_status"] + lres["err_connect"] + lres["err_read"] + lres["err_timeout"]
    res["cpu_s"] = (c1 - c0) / CLK_TCK
    res["wall_s"] = wall
    res["hwm_kib"] = status_kib(srv.pid, "VmHWM")
    n = res["requests"]
    res["rps"] = n / (res["duration_us"] / 1e6) if res["duration_us"] else 0
    res["cpu_us_per_req"] = res["cpu_s"] * 1e6 / n if n else float("nan")
    if floor:
        key = {"full": "full_x25519_us", "resumed": "resumed_x25519_us"}.get(scn, "request_us")
        res["floor_us"] = floor[key]
        res["floor_ratio"] = res["cpu_us_per_req"] / res["floor_us"]
        if "benchmark" in floor:
            res["issue_floor_us"] = floor["benchmark"]["full_us"]
            res["issue_floor_ratio"] = res["cpu_us_per_req"] / res["issue_floor_us"]
        if scn == "get":
            res["floor_parts"] = [floor["request_%s_us" % k] for k in ("tls", "columns", "audit")]
    if shim and os.path.exists(stats):
        hs = rs = 0
        for line in open(stats):
            m = re.match(r"handshakes=(\d+) resumed=(\d+)", line)
            if m:
                hs += int(m.group(1))
                rs += int(m.group(2))
        res["client_handshakes"], res["client_resumed"] = hs, rs
    errs = res["err_connect"] + res["err_read"] + res["err_write"] + res["err_timeout"] + res["err_status"]
    res["errors"] = errs
    log("  %-7s %-7s rep %d: %8.0f req/s  p50 %6.0f us  p99 %7.0f us  cpu %6.1f us/req  "
        "hwm %6d KiB  errors %d%s"
        % (scn, srv.name, rep + 1, res["rps"], res["p50_us"], res["p99_us"],
           res["cpu_us_per_req"], res["hwm_kib"], errs,
           ("  logins %d (errors %d)" % (res["logins"], res["login_errors"])) if storm else ""))
    if storm and res["logins"] == 0:
        log("  WARNING: no login was answered during the run: it measured no storm")
    # Wrong answers always stop the run: the numbers would describe
    # something else than asked. Starvation (no answer, time-outs) is what a
    # busy machine does to a full run: warned about and recorded there; the
    # smoke run, which only checks the harness, stops.
    if res["err_status"]:
        die("%s/%s: %d answers were not 2xx/3xx" % (scn, srv.name, res["err_status"]))
    problem = None
    if n == 0 and scn != "storm":
        problem = "no request answered"
    elif errs:
        problem = "wrk counted errors: " + json.dumps(
            {k: v for k, v in res.items() if k.startswith("err_") and v})
    if problem:
        if h.smoke:
            die("%s/%s: %s" % (scn, srv.name, problem))
        log("  WARNING: %s/%s run %d: %s" % (scn, srv.name, rep + 1, problem))
        h.warnings.append("%s/%s run %d: %s" % (scn, srv.name, rep + 1, problem))
    return res


def run_scenario(h, scn):
    notesd, nginx = Notesd(h), Nginx(h)
    notesd.start(scn)
    nginx.start(scn, access_log=scn in ("full", "resumed"))
    runs = {"notesd": [], "nginx": []}
    try:
        for rep in range(h.repeats):
            for srv in (notesd, nginx):        # A B A B: drift hits both
                runs[srv.name].append(one_run(h, srv, scn, rep))
    finally:
        notesd.stop()
        nginx.stop()
    summary = {}
    for srv in (notesd, nginx):
        rs = runs[srv.name]
        ok = [r for r in rs if r["requests"] > 0] or rs
        med = lambda k: statistics.median(r[k] for r in ok)
        s = dict(rps=med("rps"), p50_us=med("p50_us"), p99_us=med("p99_us"),
                 cpu_us_per_req=med("cpu_us_per_req"), hwm_kib=max(r["hwm_kib"] for r in rs),
                 requests=sum(r["requests"] for r in rs), errors=sum(r["errors"] for r in rs),
                 runs=rs)
        if any("floor_us" in r for r in rs):
            s["floor_us"] = statistics.median(r["floor_us"] for r in rs if "floor_us" in r)
            s["floor_ratio"] = statistics.median(r["floor_ratio"] for r in rs if "floor_ratio" in r)
        if any("issue_floor_us" in r for r in rs):
            s["issue_floor_us"] = statistics.median(r["issue_floor_us"] for r in rs if "issue_floor_us" in r)
            s["issue_floor_ratio"] = statistics.median(r["issue_floor_ratio"] for r in rs if "issue_floor_ratio" in r)
        if any("floor_parts" in r for r in rs):
            parts = [r["floor_parts"] for r in rs if "floor_parts" in r]
            s["floor_parts"] = [statistics.median(p[i] for p in parts) for i in range(3)]
        if scn == "storm":
            s["logins_per_s"] = statistics.median(r["logins"] / r["wall_s"] for r in rs)
        hs, rsmd, suites = srv.handshakes()
        if scn in ("full", "resumed"):
            s["server_handshakes"], s["server_resumed"], s["suites"] = hs, rsmd, suites
            s["client_handshakes"] = sum(r.get("client_handshakes", 0) for r in rs)
            s["client_resumed"] = sum(r.get("client_resumed", 0) for r in rs)
            log("  %s %s: server saw %d handshakes, %d resumed (%.1f%%); client %d/%d; %s"
                % (scn, srv.name, hs, rsmd, 100.0 * rsmd / max(hs, 1), s["client_resumed"],
                   s["client_handshakes"], ", ".join(suites)))
            if hs == 0:
                die("%s/%s: the server logged no handshake" % (scn, srv.name))
            share = rsmd / hs
            if scn == "full" and share > 0.01:
                die("%s/%s: %.1f%% of handshakes resumed; the shim did not work"
                    % (scn, srv.name, 100 * share))
            # Each connection's first handshake is a full one.
            if scn == "resumed" and share < 0.9 and hs > 20 * h.hs_conns:
                log("  WARNING: only %.1f%% resumed in the resumption scenario" % (100 * share))
        summary[srv.name] = s
    return summary


def run_idle(h):
    out = {}
    for cls in (Notesd, Nginx):
        srv = cls(h)
        if cls is Nginx:
            srv.start("idle", keepalive_timeout=600)
            path = "/"
        else:
            srv.start("idle")
            path = "/healthz"
        try:
            st, _ = https_get(srv.port, h.cafile, path)
            rss0 = status_kib(srv.pid, "VmRSS")
            t0 = time.monotonic()
            p = subprocess.Popen(
                ["taskset", "-c", CLIENT_CPU, sys.executable, os.path.join(HERE, "idle.py"),
                 "--port", str(srv.port), "--cafile", h.cafile, "--count", str(h.idle),
                 "--path", path],
                stdin=subprocess.PIPE, stdout=subprocess.PIPE)
            line = p.stdout.readline().decode().split()
            if not line or line[0] != "open":
                p.kill()
                p.wait()
                die("idle client failed against %s" % srv.name)
            rss1, held = status_kib(srv.pid, "VmRSS"), established(srv.port)
            hwm = status_kib(srv.pid, "VmHWM")
            p.stdin.close()
            p.wait()
            r = dict(conns=h.idle, held=held, rss_before_kib=rss0, rss_after_kib=rss1,
                     kib_per_conn=(rss1 - rss0) / h.idle, hwm_kib=hwm,
                     open_s=time.monotonic() - t0)
            log("  idle    %-7s: %d connections, %d held, RSS %d -> %d KiB: %.1f KiB/conn"
                % (srv.name, h.idle, held, rss0, rss1, r["kib_per_conn"]))
            if held < h.idle:
                die("idle/%s: only %d of %d connections held" % (srv.name, held, h.idle))
            out[srv.name] = r
        finally:
            srv.stop()
    return out


# ---- set-up --------------------------------------------------------------

class Harness:
    pass


def crypto_floor(h, secs, request=False):
    """mbedTLS's own cost of one handshake's crypto (and, with request, of
    one scenario-1 request's: its TLS records, the note's two columns, the
    audit line's MAC and hash), on the server's core."""
    args = ["taskset", "-c", SERVER_CPU, h.cryptofloor, h.key, secs]
    if request:
        args += [str(h.req_sizes[k]) for k in ("req", "resp", "line", "title", "content")]
    return json.loads(run_cmd(args))


def mbedtls_benchmark(h):
    """Issue 8's floor as it defines it: mbedTLS's own benchmark program
    (programs/test/benchmark.c from the pinned source, built with the
    project's configuration), on the server's core. Its ECDHE-x25519 makes
    the share and agrees through the legacy ECDH API, both on Everest
    (HACL*); the PSA path mbedTLS's TLS code takes (cryptofloor) does too
    since notesd routes the share's export to HACL* (src/tls_x25519.c), so
    the two floors differ only by PSA's key handling."""
    out = run_cmd(["taskset", "-c", SERVER_CPU, h.mbedtls_benchmark, "ecdh", "ecdsa"])
    rates = {}
    for line in out.splitlines():
        m = re.match(r"\s*(ECDHE-x25519|ECDSA-secp256r1)\s*:\s*(\d+)\s+(ephemeral handshake|sign)/s", line)
        if m and int(m.group(2)) > 0:
            rates[m.group(1)] = int(m.group(2))
    if len(rates) != 2:
        die("mbedTLS's benchmark program printed no ECDHE-x25519 or ECDSA-secp256r1 sign rate:\n" + out)
    ecdhe, sign = 1e6 / rates["ECDHE-x25519"], 1e6 / rates["ECDSA-secp256r1"]
    return {"ecdhe_x25519_us": ecdhe, "ecdsa_p256_sign_us": sign, "full_us": ecdhe + sign}


def run_cmd(args, env=None, input=None):
    r = subprocess.run(args, env=env, input=input, capture_output=True)
    if r.returncode != 0:
        die("%s failed (%d): %s" % (" ".join(args), r.returncode, r.stderr.decode(errors="replace")))
    return r.stdout.decode()


def api_login(h, port, user=USER, c=None):
    """A keep-alive connection logged in as user, and its request headers."""
    c = c or http.client.HTTPSConnection("localhost", port, context=https_ctx(h.cafile), timeout=60)
    hdr = {"Content-Type": "application/json"}
    c.request("POST", "/v1/auth/login", json.dumps({"username": user, "password": PASSWORD}), hdr)
    r = c.getresponse()
    body = r.read()
    if r.status != 200:
        die("login answered %d: %s" % (r.status, body[:200]))
    hdr["Authorization"] = "Bearer " + json.loads(body)["token"]
    return c, hdr


def register(c, name):
    c.request("POST", "/v1/auth/register", json.dumps({"username": name, "password": PASSWORD}),
              {"Content-Type": "application/json"})
    r = c.getresponse()
    body = r.read()
    if r.status != 201:
        die("register answered %d: %s" % (r.status, body[:200]))


def post_tokens(h, port, n):
    """n accounts registered and logged in: their tokens, one per line, in a
    file for wrk.lua (BENCH_TOKENS)."""
    c = http.client.HTTPSConnection("localhost", port, context=https_ctx(h.cafile), timeout=60)
    tokens = []
    for i in range(n):
        name = "benchpost%d" % i
        register(c, name)
        tokens.append(api_login(h, port, name, c)[1]["Authorization"].split(" ", 1)[1])
    c.close()
    path = os.path.join(h.tmp, "post-tokens.txt")
    with open(path, "w") as f:
        f.write("".join("%s\n" % t for t in tokens))
    return path


def post_note(c, hdr, title, content):
    c.request("POST", "/v1/notes", json.dumps({"title": title, "content": content}), hdr)
    r = c.getresponse()
    body = r.read()
    if r.status != 201:
        die("POST /v1/notes answered %d: %s" % (r.status, body[:200]))
    return json.loads(body)["id"]


def setup(h):
    h.cert_dir = os.path.join(h.tmp, "cert")
    run_cmd([h.notesd, "gen-cert", "--host", "localhost", "--out", h.cert_dir])
    h.cert = os.path.join(h.cert_dir, "cert.pem")
    h.key = os.path.join(h.cert_dir, "key.pem")
    h.cafile = h.cert
    secrets = {}
    for line in run_cmd([h.notesd, "gen-secrets"]).splitlines():
        if "=" in line and not line.startswith("#"):
            k, v = line.split("=", 1)
            secrets[k.strip()] = v.strip()
    env = {"PATH": "/usr/bin:/bin", "NOTES_TLS_CERT": h.cert, "NOTES_TLS_KEY": h.key,
           "NOTES_DB": os.path.join(h.tmp, "data", "notes.db"),
           "NOTES_AUDIT_DIR": os.path.join(h.tmp, "data", "audit"),
           "NOTES_LISTEN": "127.0.0.1:0", "NOTES_LOG_LEVEL": "debug",
           "NOTES_RATE_LIMITS": "off", "NOTES_MAX_CONNECTIONS": str(h.max_conns),
           "NOTES_MAX_CONNECTIONS_PER_IP": str(h.max_conns), "NOTES_TIMEOUT_KEEPALIVE": "600",
           "NOTES_SHUTDOWN_GRACE": "2"}
    env.update(secrets)
    h.notesd_env = env
    for user in (USER, STORM_USER):
        run_cmd([h.notesd, "user", "add", user, "--role", "user"], env=env,
                input=(PASSWORD + "\n").encode())

    # Seed through the API: one login (one token), then the notes; the
    # accounts of scenario 2 register (open only while seeding).
    h.notesd_env = dict(env, NOTES_REGISTRATION="open")
    srv = Notesd(h)
    port = srv.start("seed")
    h.notesd_env = env
    try:
        h.post_tokens = post_tokens(h, port, 4 if h.smoke else POST_USERS)
        c, hdr = api_login(h, port)
        h.token = hdr["Authorization"].split(" ", 1)[1]
        # Sized so a note's JSON is about as long as nginx's constant body.
        ids = [post_note(c, hdr, "note %d" % i, "c" * 64) for i in range(h.notes)]
        c.request("GET", "/v1/notes/%s" % ids[0], headers={"Authorization": hdr["Authorization"]})
        r = c.getresponse()
        body = r.read()
        h.note_body_bytes = len(body)
        c.close()
    finally:
        srv.stop()
    # What one scenario-1 request moves, for its crypto floor: wrk's request,
    # the whole response, the GET's audit line, a seeded note's columns.
    head = "HTTP/1.1 %d %s\r\n%s\r\n" % (r.status, r.reason,
                                         "".join("%s: %s\r\n" % kv for kv in r.getheaders()))
    with open(os.path.join(env["NOTES_AUDIT_DIR"], "audit.log")) as f:
        line = [x for x in f.read().splitlines() if '"event":"note.read"' in x][-1]
    h.req_sizes = dict(req=len("GET /v1/notes/%s HTTP/1.1\r\nHost: localhost:%d\r\n"
                               "Authorization: Bearer %s\r\n\r\n" % (ids[0], port, h.token)),
                       resp=len(head) + len(body), line=len(line), title=len("note 0"), content=64)
    h.ids_file = os.path.join(h.tmp, "ids.txt")
    with open(h.ids_file, "w") as f:
        f.write("".join("%s\n" % i for i in ids))
    with open(h.post_tokens) as f:
        posters = len(f.read().split())
    log("seeded 1 user, 1 token, %d notes, a storm user and %d accounts for POSTs; a note's JSON is %d bytes, "
        "nginx's body %d" % (len(ids), posters, h.note_body_bytes, len(nginx_body())))


def machine():
    def first(cmd):
        try:
            return subprocess.run(cmd, capture_output=True, text=True).stdout.strip()
        except OSError:
            return "?"
    model = "?"
    for line in first(["lscpu"]).splitlines():
        if line.startswith("Model name:"):
            model = line.split(":", 1)[1].strip()
    mem = "?"
    with open("/proc/meminfo") as f:
        for line in f:
            if line.startswith("MemTotal:"):
                mem = "%.1f GiB" % (int(line.split()[1]) / 1048576)
    nginx_v = subprocess.run(["nginx", "-v"], capture_output=True, text=True).stderr.strip()
    with open("/proc/loadavg") as f:
        load = " ".join(f.read().split()[:3])
    return dict(cpu=model, cores=os.cpu_count(), mem=mem, kernel=platform.release(),
                load="start %s, end %s (1/5/15 min; other work on the machine shows here)"
                % (LOAD_AT_START, load),
                os=first(["sh", "-c", ". /etc/os-release && echo $PRETTY_NAME"]),
                notesd=" / ".join(first([BENCH_NOTESD, "--version"]).splitlines()),
                nginx=nginx_v.replace("nginx version: ", ""),
                wrk=first(["sh", "-c", "wrk -v 2>&1 | head -1"]).split(" [")[0],
                openssl=first(["openssl", "version"]) or "?")


# ---- report --------------------------------------------------------------

def ratio(a, b):
    return "%.2f" % (a / b) if b else "n/a"


def report(h, results, idle, floor, mach, startup, size):
    L = []
    L.append("# notesd vs nginx: `make bench` results\n")
    L.append("Written by `bench/run.py` (issue 8). Each row: median of %d measured runs of %d s "
             "per target, targets alternated A B A B, each run after a %d s warm-up; server "
             "pinned to core %s, wrk (one thread) to core %s. notesd runs the whole "
             "application (token check, SQLite, AES-GCM, JSON); nginx (one worker) sends a "
             "constant %d-byte JSON body with the same security headers. Keep-alive rows use %d "
             "connections. Ratio = notesd/nginx."
             % (h.repeats, h.duration, h.warmup, SERVER_CPU, CLIENT_CPU, NGINX_BODY_BYTES, h.conns))
    L.append("")
    L.append("## Machine\n")
    L.append("| | |\n|---|---|")
    for k in ("cpu", "cores", "mem", "kernel", "os", "notesd", "nginx", "wrk", "openssl", "load"):
        L.append("| %s | %s |" % (k, mach[k]))
    L.append("| run | %s |" % time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()))
    L.append("")
    L.append("## Results\n")
    L.append("| scenario | target | req/s | p50 µs | p99 µs | server CPU µs/req | peak RSS KiB "
             "| ratio req/s | ratio CPU/req | crypto floor µs (per handshake or request) |")
    L.append("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for scn, title in SCENARIOS:
        if scn not in results:
            continue
        r = results[scn]
        n, g = r["notesd"], r["nginx"]
        fl = ""
        if scn in ("full", "resumed"):
            fl = "%.0f (%s), notesd at %.2f× of it" % (
                n["floor_us"], "X25519 + ECDSA P-256 sign" if scn == "full" else "X25519 only",
                n["floor_ratio"])
        elif "floor_parts" in n:
            fl = "%.1f (TLS records %.1f + note columns %.1f + audit line %.1f), notesd at %.2f× of it" % (
                (n["floor_us"],) + tuple(n["floor_parts"]) + (n["floor_ratio"],))
        for name, s in (("notesd", n), ("nginx", g)):
            L.append("| %s | %s | %.0f | %.0f | %.0f | %.1f | %d | %s | %s | %s |"
                     % (title if name == "notesd" else "", name, s["rps"], s["p50_us"],
                        s["p99_us"], s["cpu_us_per_req"], s["hwm_kib"],
                        ratio(n["rps"], g["rps"]) if name == "notesd" else "",
                        ratio(n["cpu_us_per_req"], g["cpu_us_per_req"]) if name == "notesd" else "",
                        fl if name == "notesd" else ""))
    if idle:
        n, g = idle["notesd"], idle["nginx"]
        L.append("| 6. idle TLS keep-alive connections (%d) | notesd | | | | | %d | | "
                 "KiB/conn ratio %s | |" % (n["conns"], n["hwm_kib"],
                                           ratio(n["kib_per_conn"], g["kib_per_conn"])))
        L.append("| | nginx | | | | | %d | | | |" % g["hwm_kib"])
    L.append("")
    if "get" in results and "floor_parts" in results["get"]["notesd"]:
        n, g = results["get"]["notesd"], results["get"]["nginx"]
        allowed = 1.3 * g["cpu_us_per_req"]
        L.append("Scenario 1 against its target (≤ 1.3× nginx's CPU per request, %.1f µs here): the "
                 "crypto this request cannot do without in mbedTLS (its two TLS records, the note's "
                 "two columns, the audit line's HMAC and SHA-256; no x86 SHA extensions in mbedTLS) "
                 "costs %.1f µs alone, %.2f× nginx's whole request, leaving %.1f µs for the kernel, "
                 "parsing, SQLite and JSON; notesd spends %.1f µs on them (its CPU minus the floor), "
                 "nginx about %.1f µs on all of its request."
                 % (allowed, n["floor_us"], n["floor_us"] / g["cpu_us_per_req"],
                    max(0.0, allowed - n["floor_us"]), n["cpu_us_per_req"] - n["floor_us"],
                    g["cpu_us_per_req"]))
        L.append("")
    if "full" in results:
        b, n = floor["benchmark"], results["full"]["notesd"]
        if "issue_floor_ratio" in n:
            when = ("measured like the cryptofloor column, right before each run on the server's core: "
                    "median %.0f µs; at the start of the run ECDHE-x25519 %.0f µs + ECDSA-secp256r1 sign "
                    "%.0f µs = %.0f µs" % (n["issue_floor_us"], b["ecdhe_x25519_us"], b["ecdsa_p256_sign_us"],
                                          b["full_us"]))
            r = n["issue_floor_ratio"]
        else:
            when = ("ECDHE-x25519 %.0f µs + ECDSA-secp256r1 sign %.0f µs = %.0f µs, at the start of the run"
                    % (b["ecdhe_x25519_us"], b["ecdsa_p256_sign_us"], b["full_us"]))
            r = n["cpu_us_per_req"] / b["full_us"]
        L.append("Scenario 3 against issue 8's floor as mbedTLS's benchmark program measures it "
                 "(%s): notesd at %.2f× (median of the per-run ratios when measured per run). That "
                 "program makes the ECDHE share and agrees through the legacy ECDH API; notesd goes "
                 "through PSA as mbedTLS's TLS code does, with the share's export routed to the same "
                 "HACL* code (src/tls_x25519.c), which is what the cryptofloor column measures."
                 % (when, r))
        L.append("")
    if "full" in results and "resumed" in results:
        L.append("Scenario 4 / scenario 3, server CPU per handshake: notesd %s, nginx %s."
                 % (ratio(results["resumed"]["notesd"]["cpu_us_per_req"], results["full"]["notesd"]["cpu_us_per_req"]),
                    ratio(results["resumed"]["nginx"]["cpu_us_per_req"], results["full"]["nginx"]["cpu_us_per_req"])))
        L.append("")
    if idle:
        L.append("### 6. Idle connections\n")
        L.append("| target | connections held | RSS before KiB | RSS after KiB | KiB per connection |")
        L.append("|---|---:|---:|---:|---:|")
        for name in ("notesd", "nginx"):
            s = idle[name]
            L.append("| %s | %d | %d | %d | %.1f |" % (name, s["held"], s["rss_before_kib"],
                                                     s["rss_after_kib"], s["kib_per_conn"]))
        L.append("")
    L.append("### Handshakes seen by the servers\n")
    L.append("| scenario | target | handshakes (server log) | resumed | resumed share | client saw resumed | suite |")
    L.append("|---|---|---:|---:|---:|---:|---|")
    for scn in ("full", "resumed"):
        if scn not in results:
            continue
        for name in ("notesd", "nginx"):
            s = results[scn][name]
            L.append("| %s | %s | %d | %d | %.1f%% | %d/%d | %s |"
                     % (scn, name, s["server_handshakes"], s["server_resumed"],
                        100.0 * s["server_resumed"] / max(s["server_handshakes"], 1),
                        s["client_resumed"], s["client_handshakes"], ", ".join(s["suites"])))
    L.append("")
    if "storm" in results and "get" in results:
        L.append("### 5. Login storm\n")
        L.append("| target | p99 µs alone (1) | p99 µs with logins (5) | factor | logins/s |")
        L.append("|---|---:|---:|---:|---:|")
        for name in ("notesd", "nginx"):
            a, b = results["get"][name]["p99_us"], results["storm"][name]["p99_us"]
            rate = results["storm"][name]["logins_per_s"]
            # No login answered: the GETs ran without a storm, no factor.
            L.append("| %s | %.0f | %.0f | %s | %.1f |" % (name, a, b, ratio(b, a) if rate > 0 else
                                                         "none: no login answered", rate))
        L.append("")
        L.append("nginx answers the login POSTs with its constant body: its row shows what 8 more "
                 "busy clients cost a server with nothing to hash.")
        L.append("")
    if startup:
        L.append("### 7. Start-up to the first answered /healthz\n")
        L.append("| database | size MiB | runs | median ms | max ms | target |")
        L.append("|---|---:|---:|---:|---:|---|")
        for r in startup:
            L.append("| %s | %.2f | %d | %.1f | %.1f | ≤ 100 ms |" % (r["db"], r["db_mib"], len(r["runs"]),
                                                             r["median_ms"], r["max_ms"]))
        L.append("")
    L.append("### Binary size\n")
    L.append("| notesd | bytes | MiB | target |\n|---|---:|---:|---|")
    L.append("| as built | %d | %.2f | |" % (size["built"], size["built"] / 1048576))
    L.append("| stripped | %d | %.2f | ≤ 4 MiB |" % (size["stripped"], size["stripped"] / 1048576))
    L.append("")
    L.append("### mbedTLS crypto floor (bench/cryptofloor.c, the project's static mbedTLS, at the start of the run)\n")
    L.append("| operation | µs |\n|---|---:|")
    L.append("| X25519 ECDHE, server side (key pair + export share + agreement, via PSA) | %.0f |"
             % floor["x25519_ecdhe_us"])
    L.append("| P-256 ECDHE, server side (same) | %.0f |" % floor["p256_ecdhe_us"])
    L.append("| ECDSA P-256 sign (mbedtls_pk_sign on the certificate key) | %.0f |"
             % floor["ecdsa_p256_sign_us"])
    L.append("| full handshake floor (X25519 + sign) | %.0f |" % floor["full_x25519_us"])
    L.append("| resumed handshake floor (psk_dhe_ke: X25519) | %.0f |" % floor["resumed_x25519_us"])
    b = floor["benchmark"]
    L.append("| mbedTLS's benchmark program, same source and configuration: ECDHE-x25519 "
             "(share + agreement, legacy ECDH API, both on Everest) | %.0f |" % b["ecdhe_x25519_us"])
    L.append("| mbedTLS's benchmark program: ECDSA-secp256r1 sign | %.0f |" % b["ecdsa_p256_sign_us"])
    L.append("| full handshake floor as issue 8 defines it (the two above) | %.0f |" % b["full_us"])
    L.append("")
    if h.warnings:
        L.append("### Warnings of this run\n")
        for w in h.warnings:
            L.append("- " + w)
        L.append("")
    L.append("## How to read it\n")
    L.append("- server CPU µs/req: utime+stime of the server process (all threads; nginx: its one "
             "worker) from /proc/PID/stat over the measured run, divided by the requests wrk "
             "completed. Clock ticks are 10 ms; a run is long enough for that to be < 0.5%. The "
             "keep-alive rows include the 64 handshakes of wrk's connections.")
    L.append("- peak RSS: VmHWM of the same process, reset before each measured run "
             "(/proc/PID/clear_refs), largest over the runs.")
    L.append("- p50/p99: wrk's latency percentiles (one client thread on one core, so client time "
             "is part of every latency).")
    L.append("- Handshake rows: `Connection: close` on /healthz (notesd) or / (nginx), %d "
             "connections. wrk resumes by default; the full-handshake row preloads "
             "bench/noresume.c, which drops the session before each ClientHello. The resumed "
             "share is counted from the servers' own logs (notesd's debug line `TLS handshake "
             "done ... (resumed)`, nginx's `$ssl_session_reused`)." % h.hs_conns)
    L.append("- Idle: %d connections, each with one answered request, then silent; "
             "(RSS after - RSS before) / connections." % h.idle)
    L.append("- Crypto floor column, scenario 1: bench/cryptofloor with the sizes of this run's "
             "request (%(req)d bytes), response (%(resp)d), audit line (%(line)d) and note columns "
             "(%(title)d + %(content)d), measured like the handshake floor right before each notesd "
             "run: AES-256-GCM through psa_aead_* (the suite wrk negotiates), HMAC-SHA256 and SHA-256 "
             "through psa_mac_compute/psa_hash_compute." % h.req_sizes)
    L.append("- Crypto floor column: bench/cryptofloor pinned to the server's core for 1 s right "
             "before each notesd handshake run (the machine's speed drifts between runs), median "
             "over the runs; 'notesd at N×' is the median of the per-run ratios. Issue 8's floor "
             "(mbedTLS's benchmark program, ~30 s since it runs every curve) is measured the same way "
             "before each full-handshake run, and once at the start.")
    L.append("- Start-up: wall time from spawning `notesd serve` (pinned like the other rows) to the "
             "first 200 answer of GET /healthz over TLS, polled every ~1 ms from here (the client's "
             "TLS handshake is part of it); the database is seeded through the API first, and the "
             "runs on the two databases alternate.")
    L.append("- Raw numbers of every run: `%s` (not committed)." % os.path.relpath(h.json_out, ROOT))
    L.append("")
    return "\n".join(L)


# Below this line RESULTS.md is written by hand (the optimization log with
# each change's measured effect) and kept when the tables are rewritten.
KEPT_MARKER = "<!-- kept by bench/run.py: the log below is written by hand -->"


def kept_log(path):
    try:
        old = open(path).read()
    except OSError:
        return ""
    at = old.find(KEPT_MARKER)
    return "\n" + old[at:] if at >= 0 else ""


BENCH_NOTESD = None
LOAD_AT_START = "?"


def main():
    global BENCH_NOTESD, LOAD_AT_START
    with open("/proc/loadavg") as f:
        LOAD_AT_START = " ".join(f.read().split()[:3])
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--notesd", default=os.path.join(ROOT, "build", "notesd"))
    ap.add_argument("--tools", default=os.path.join(ROOT, "build", "bench"),
                    help="folder with noresume.so and cryptofloor (built by make)")
    ap.add_argument("--smoke", action="store_true", help="a few seconds: checks the harness only")
    ap.add_argument("--duration", type=int, default=10)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--idle", type=int, default=5000)
    ap.add_argument("--notes", type=int, default=1000)
    names = [s for s, _ in SCENARIOS] + list(OTHER_SCENARIOS)
    ap.add_argument("--scenarios", default=",".join(names),
                    help="comma-separated subset of: " + ",".join(names))
    ap.add_argument("--startup-mib", type=int, default=100, help="database size of the start-up scenario")
    ap.add_argument("--startup-runs", type=int, default=5)
    ap.add_argument("--out", default=None, help="RESULTS.md to write (full run: bench/RESULTS.md)")
    ap.add_argument("--keep", action="store_true", help="keep the temp folder")
    ap.add_argument("--perf", metavar="DIR", default=None,
                    help="perf record notesd during each measured run into DIR "
                         "(its CPU numbers then include perf's overhead)")
    a = ap.parse_args()
    # A misspelt name would otherwise just leave its table out of the report.
    unknown = [s for s in a.scenarios.split(",") if s not in names]
    if unknown:
        ap.error("unknown scenario %s (known: %s)" % (",".join(unknown), ",".join(names)))

    h = Harness()
    h.smoke = a.smoke
    h.warnings = []
    h.perf = os.path.abspath(a.perf) if a.perf else None
    if h.perf:
        os.makedirs(h.perf, exist_ok=True)
    h.notesd = os.path.abspath(a.notesd)
    BENCH_NOTESD = h.notesd
    h.shim = os.path.join(os.path.abspath(a.tools), "noresume.so")
    cryptofloor = h.cryptofloor = os.path.join(os.path.abspath(a.tools), "cryptofloor")
    h.mbedtls_benchmark = os.path.join(os.path.abspath(a.tools), "mbedtls-benchmark")
    h.floor_secs = "0.2" if a.smoke else "1"
    h.nginx = shutil.which("nginx") or "/usr/sbin/nginx"
    for p in (h.notesd, h.shim, cryptofloor, h.mbedtls_benchmark, h.nginx, shutil.which("wrk") or "wrk",
              shutil.which("taskset") or "taskset"):
        if not os.path.exists(p):
            die("missing %s (make bench builds the tools; nginx and wrk come from "
                "tools/packages.txt)" % p)
    if os.cpu_count() < 2:
        die("needs two cores (server and client on different ones)")
    h.conns, h.hs_conns = 64, 16
    if a.smoke:
        h.duration, h.warmup, h.repeats, h.idle, h.notes = 1, 0, 1, 20, 20
        a.startup_mib, a.startup_runs = 2, 2
        # Fewer connections: 64 mbedTLS handshakes alone take ~0.2 s of CPU.
        h.conns, h.hs_conns = 8, 4
    else:
        h.duration, h.warmup, h.repeats, h.idle, h.notes = a.duration, a.warmup, a.repeats, a.idle, a.notes
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    need = h.idle + 1024
    if soft < need:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (max(need, soft) if hard == resource.RLIM_INFINITY
                                                        else min(max(need, soft), hard), hard))
        except (ValueError, OSError):
            pass
        soft = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
        if soft < need:
            die("RLIMIT_NOFILE %d is below the %d the idle scenario needs" % (soft, need))
    # Raised caps, but within the open files notesd can have: it refuses to
    # start when its caps and a reserve of 64 (server_life.c) exceed the
    # hard limit.
    h.max_conns = 20000 if hard == resource.RLIM_INFINITY else max(need, min(20000, hard - 64))

    h.tmp = tempfile.mkdtemp(prefix="notesd-bench-")
    # A root-started notesd drops to NOTES_USER and gets a folder of its own
    # (data/), which it must reach through this one.
    os.chmod(h.tmp, 0o711)
    os.mkdir(os.path.join(h.tmp, "data"), 0o700)
    h.json_out = os.path.join(os.path.abspath(a.tools), "results-smoke.json" if a.smoke else "results.json")
    t_start = time.monotonic()
    try:
        setup(h)
        floor = crypto_floor(h, "0.3" if a.smoke else "3")
        log("crypto floor: %s" % json.dumps(floor))
        floor["benchmark"] = mbedtls_benchmark(h)
        log("mbedTLS benchmark program: %s" % json.dumps(floor["benchmark"]))
        want = a.scenarios.split(",")
        results = {}
        for scn, title in SCENARIOS:
            if scn in want:
                log(title)
                results[scn] = run_scenario(h, scn)
        idle = None
        if "idle" in want:
            log("6. idle connections (%d)" % h.idle)
            idle = run_idle(h)
        startup = None
        if "startup" in want:
            log("7. start-up to the first answered /healthz (%d MiB database)" % a.startup_mib)
            startup = run_startup(h, a.startup_mib, a.startup_runs)
        size = binary_size(h)
        log("binary: %d bytes as built, %d stripped" % (size["built"], size["stripped"]))
        mach = machine()
        with open(h.json_out, "w") as f:
            json.dump(dict(machine=mach, floor=floor, results=results, idle=idle, startup=startup,
                           size=size, duration=h.duration, warmup=h.warmup, repeats=h.repeats),
                      f, indent=1)
        text = report(h, results, idle, floor, mach, startup, size)
        out = a.out
        if out:
            text += kept_log(out)
            with open(out, "w") as f:
                f.write(text)
            log("wrote %s" % out)
        print(text)
        log("done in %.1f s%s" % (time.monotonic() - t_start,
                                  " (smoke: harness works; numbers not checked)" if a.smoke else ""))
    finally:
        if a.keep:
            log("kept %s" % h.tmp)
        else:
            shutil.rmtree(h.tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
