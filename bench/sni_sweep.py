#!/usr/bin/env python3
"""Open one connection per SNI name through a proxy and close it after the
hello: fills the per-route and per-server metrics of a scale config.
  bench/sni_sweep.py HOST:PORT COUNT [PARALLEL] [--upstreams N]
Names are those of bench/scale_config.py (svcNNNNNN.tenantNNN.example.net).
"""
import socket, ssl, sys, concurrent.futures

CTX = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
CTX.check_hostname = False
CTX.verify_mode = ssl.CERT_NONE

def hello(name):
    ctx = CTX
    inc, out = ssl.MemoryBIO(), ssl.MemoryBIO()
    obj = ctx.wrap_bio(inc, out, server_hostname=name)
    try:
        obj.do_handshake()
    except ssl.SSLWantReadError:
        pass
    return out.read()

def one(args):
    host, port, i = args
    name = f"svc{i:06d}.tenant{i % 997:03d}.example.net"
    try:
        s = socket.create_connection((host, port), timeout=5)
        s.sendall(hello(name))
        s.settimeout(0.2)
        try:
            s.recv(1)
        except OSError:
            pass
        s.close()
        return 0
    except OSError:
        return 1

host, port = sys.argv[1].rsplit(":", 1)
count = int(sys.argv[2])
par = int(sys.argv[3]) if len(sys.argv) > 3 else 32
with concurrent.futures.ThreadPoolExecutor(par) as ex:
    errors = sum(ex.map(one, ((host, int(port), i) for i in range(count))))
print(f"{count} connections, {errors} errors")
