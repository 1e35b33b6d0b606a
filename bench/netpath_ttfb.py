#!/usr/bin/env python3
"""bench/netpath_ttfb.py HOST PORT HELLO_FILE SIZE - one short connection
through the bench protocol (bench/pattern.h): connect, send the ClientHello
and a CPS request for SIZE bytes, read to the end. Prints one JSON line with
the time to connect, to the first reply byte and to the end of the reply
(ms, from the connect() call), and errors=1 if a byte is wrong or missing.
Run by bench/netpath.sh inside the client's namespace."""
import json
import socket
import struct
import sys
import time

MAGIC, MODE_CPS = 0x534E4950, 1


def main():
    host, port, hello_file, size = sys.argv[1], int(sys.argv[2]), sys.argv[3], int(sys.argv[4])
    hello = open(hello_file, "rb").read()
    expected = bytes(((i * 131) >> 3) & 0xFF for i in range(size))
    sock = socket.socket()
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    start = time.monotonic()
    sock.connect((host, port))
    connected = time.monotonic()
    sock.sendall(hello + struct.pack("<IIQ", MAGIC, MODE_CPS, size))
    got = bytearray()
    first = None
    while True:
        chunk = sock.recv(65536)
        if not chunk:
            break
        if first is None:
            first = time.monotonic()
        got += chunk
    end = time.monotonic()
    sock.close()
    ms = lambda t: round((t - start) * 1000, 2) if t else -1
    print(json.dumps({"connect_ms": ms(connected), "first_byte_ms": ms(first), "end_ms": ms(end),
                      "bytes": len(got), "errors": int(bytes(got) != expected)}))


main()
