#!/usr/bin/env python3
"""Write a big nginx stream config for timing --import-nginx at scale.
  bench/scale_nginx.py ROUTES UPSTREAMS SERVERS SERVER_BLOCKS RULES"""
import sys
routes, ups, servers, blocks, rules = (int(x) for x in sys.argv[1:6])
o = ["events {}", "stream {", "  map $ssl_preread_server_name $name {", "    hostnames;"]
for i in range(routes):
    o.append(f"    svc{i:06d}.tenant{i % 997:03d}.example.net u{i % ups};")
o.append("    default u0;")
o.append("  }")
for u in range(ups):
    s = u % servers
    o.append(f"  upstream u{u} {{ server 127.{1 + s // 65000}.{(s % 65000) // 250}.{s % 250 + 1}:12990; }}")
for b in range(blocks):
    o.append(f"  server {{ listen 127.0.{1 + b // 250}.{b % 250 + 1}:443; proxy_pass $name; ssl_preread on;")
    for r in range(rules):
        o.append(f"    deny 198.51.{r // 256}.{r % 256};")
    o.append("    allow all; }")
o.append("}")
print("\n".join(o))
