#!/usr/bin/env python3
"""Write a big snisplice config for control-plane scale checks (stdout).

  bench/scale_config.py [--servers N] [--upstreams N] [--routes N]
                        [--listens N] [--rules N] [--port P] [--backend P]
                        [--stats P] [--log PATH]

Upstreams u0..u(N-1) share the servers round-robin (servers are distinct
127.x.y.z addresses on one backend port, so each is its own metrics
entry); listen addresses are 127.0.1.1.. on ports port, port+1, ...;
rules are `deny` of TEST-NET addresses before a final `allow = all`.
"""
import argparse

p = argparse.ArgumentParser()
p.add_argument("--servers", type=int, default=2000)
p.add_argument("--upstreams", type=int, default=10000)
p.add_argument("--routes", type=int, default=100000)
p.add_argument("--listens", type=int, default=200)
p.add_argument("--rules", type=int, default=300)
p.add_argument("--ports", type=int, default=4, help="ports per listen IP")
p.add_argument("--port", type=int, default=12900)
p.add_argument("--backend", type=int, default=12990)
p.add_argument("--stats", type=int, default=0)
p.add_argument("--workers", default="2")
p.add_argument("--log", default="")
a = p.parse_args()

out = ["[global]", f"workers = {a.workers}"]
if a.stats:
    out.append(f"stats = 127.0.0.1:{a.stats}")
if a.log:
    out.append(f"access_log = {a.log}")
out.append("[listen]")
for i in range(a.listens):
    ip, port = divmod(i, a.ports)
    out.append(f"address = 127.0.{1 + ip // 250}.{ip % 250 + 1}:{a.port + port}")
for i in range(a.rules):
    out.append(f"deny = 198.51.{i // 256}.{i % 256}")
if a.rules:
    out.append("allow = all")
out.append("[routes]")
for i in range(a.routes):
    out.append(f"svc{i:06d}.tenant{i % 997:03d}.example.net = u{i % a.upstreams}")
out.append("default = u0")
servers = [f"127.{1 + s // 65000}.{(s % 65000) // 250}.{s % 250 + 1}:{a.backend}" for s in range(a.servers)]
per = max(1, a.servers // a.upstreams) if a.upstreams else 0
for u in range(a.upstreams):
    out.append(f"[upstream u{u}]")
    if a.servers >= a.upstreams:
        for k in range(per):
            out.append(f"server = {servers[(u * per + k) % a.servers]}")
    else:
        out.append(f"server = {servers[u % a.servers]}")
print("\n".join(out))
