#!/usr/bin/env python3
"""Which hosts an agent tries to reach, from inside a loopback-only namespace.

Run as root in the namespace (bare.sh does it with NETLOG=1), after
/etc/resolv.conf there says `nameserver 127.0.0.1`:
  * DNS on 127.0.0.1:53: logs every query name; A queries get 127.0.0.2, the
    rest an empty answer;
  * sinks on 127.0.0.2:80 and :443: log the TLS server name or the HTTP
    request line of whatever connects, then close;
  * a proxy recorder on 127.0.0.1:PROXY_PORT: logs the request line (CONNECT
    host:port or a proxied URL), answers 502.
Nothing is forwarded anywhere. Each event is one JSON line in LOG.

usage: netlog.py LOG PROXY_PORT
"""
import json
import socket
import struct
import sys
import threading
import time

LOG, PROXY_PORT = sys.argv[1], int(sys.argv[2])
LOCK = threading.Lock()


def log(record):
    record["t"] = round(time.time(), 3)
    with LOCK, open(LOG, "a") as f:
        f.write(json.dumps(record) + "\n")


def dns():
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("127.0.0.1", 53))
    while True:
        data, peer = s.recvfrom(4096)
        try:
            qid = struct.unpack(">H", data[:2])[0]
            i, labels = 12, []
            while data[i]:
                labels.append(data[i + 1:i + 1 + data[i]].decode("ascii", "replace"))
                i += 1 + data[i]
            qtype = struct.unpack(">H", data[i + 1:i + 3])[0]
            question = data[12:i + 5]
            log({"kind": "dns", "name": ".".join(labels), "qtype": qtype})
            if qtype == 1:
                answer = b"\xc0\x0c" + struct.pack(">HHIH", 1, 1, 5, 4) + socket.inet_aton("127.0.0.2")
                header = struct.pack(">HHHHHH", qid, 0x8180, 1, 1, 0, 0)
            else:
                answer, header = b"", struct.pack(">HHHHHH", qid, 0x8180, 1, 0, 0, 0)
            s.sendto(header + question + answer, peer)
        except (IndexError, struct.error) as e:
            log({"kind": "dns-error", "error": repr(e)})


def server_name(hello):
    """The SNI of a TLS ClientHello, or None."""
    try:
        if hello[0] != 0x16:
            return None
        i = 5 + 4 + 2 + 32
        i += 1 + hello[i]
        i += 2 + struct.unpack(">H", hello[i:i + 2])[0]
        i += 1 + hello[i]
        end = i + 2 + struct.unpack(">H", hello[i:i + 2])[0]
        i += 2
        while i < end:
            kind, length = struct.unpack(">HH", hello[i:i + 4])
            if kind == 0:
                return hello[i + 9:i + 4 + length].decode()
            i += 4 + length
    except (IndexError, struct.error, UnicodeDecodeError):
        return None
    return None


def serve(address, kind, handle):
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(address)
    s.listen(64)
    while True:
        c, _ = s.accept()
        threading.Thread(target=handle, args=(c, kind, address[1]), daemon=True).start()


def sink(c, kind, port):
    c.settimeout(3)
    try:
        first = c.recv(4096)
        name = server_name(first)
        log({"kind": kind, "port": port, "sni": name,
             "line": None if name else first.split(b"\r\n")[0].decode("latin1")[:300]})
        if kind == "proxy":
            c.sendall(b"HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
    except OSError as e:
        log({"kind": kind, "port": port, "error": repr(e)})
    finally:
        c.close()


if __name__ == "__main__":
    threading.Thread(target=dns, daemon=True).start()
    for port in (80, 443):
        threading.Thread(target=serve, args=(("127.0.0.2", port), "sink", sink), daemon=True).start()
    serve(("127.0.0.1", PROXY_PORT), "proxy", sink)
