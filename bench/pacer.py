#!/usr/bin/env python3
"""Loopback TCP relay that caps each client connection's send rate in the kernel.

It owns one thing: for every connection accepted on --listen it opens one connection to
--upstream (nginx's plain port) and relays both ways, with SO_MAX_PACING_RATE set on the
client-facing socket. Since Linux 4.13 TCP paces such a socket itself (no fq qdisc needed),
so the cap holds per connection however many requests the client sends on it - unlike
nginx's per-request limit_rate. It must not touch any qdisc or sysctl, must not listen on
anything but the loopback address it is given, and exits on SIGTERM or SIGINT.

The response direction uses splice(2) through a pipe, so bytes never enter Python and the
relay costs little CPU next to the clients being measured. Stdlib only.
"""
import argparse
import fcntl
import os
import signal
import socket
import sys
import threading

# Not exported by every Python build; the value is the same on every Linux architecture.
SO_MAX_PACING_RATE = getattr(socket, "SO_MAX_PACING_RATE", 47)
F_SETPIPE_SZ = getattr(fcntl, "F_SETPIPE_SZ", 1031)
CHUNK = 256 * 1024
# Small buffers on the relay's two sockets: whatever nginx has pushed into the relay when a
# client closes a connection counts as served in nginx's log without ever being delivered,
# so the less the relay holds, the closer "served" stays to what clients received.
UPSTREAM_RCVBUF = 256 * 1024
CLIENT_SNDBUF = 512 * 1024


def parse_addr(text):
    host, _, port = text.rpartition(":")
    if host not in ("127.0.0.1", "localhost", "::1", "[::1]"):
        raise SystemExit(f"pacer: refusing non-loopback address {text!r}")
    return host.strip("[]"), int(port)


def forward_requests(client, upstream):
    """Client -> upstream: small request heads, plain copies are enough."""
    try:
        while True:
            data = client.recv(65536)
            if not data:
                break
            upstream.sendall(data)
    except OSError:
        pass
    try:
        upstream.shutdown(socket.SHUT_WR)
    except OSError:
        pass


def forward_responses(upstream, client):
    """Upstream -> client through a pipe with splice; the paced socket sets the speed."""
    rfd, wfd = os.pipe()
    try:
        try:
            fcntl.fcntl(wfd, F_SETPIPE_SZ, CHUNK)
        except OSError:
            pass  # a smaller pipe only means more calls
        while True:
            n = os.splice(upstream.fileno(), wfd, CHUNK, flags=os.SPLICE_F_MOVE)
            if n == 0:
                break
            while n > 0:
                n -= os.splice(rfd, client.fileno(), n, flags=os.SPLICE_F_MOVE)
    except OSError:
        pass
    finally:
        os.close(rfd)
        os.close(wfd)


def handle(client, upstream_addr, rate):
    upstream = None
    try:
        client.setsockopt(socket.SOL_SOCKET, SO_MAX_PACING_RATE, rate)
        client.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        client.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, CLIENT_SNDBUF)
        upstream = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        upstream.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, UPSTREAM_RCVBUF)  # before connect
        upstream.settimeout(10)
        upstream.connect(upstream_addr)
        upstream.settimeout(None)
        upstream.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    except OSError as err:
        print(f"pacer: connection setup failed: {err}", file=sys.stderr)
        client.close()
        if upstream is not None:
            upstream.close()
        return
    requests = threading.Thread(target=forward_requests, args=(client, upstream), daemon=True)
    requests.start()
    forward_responses(upstream, client)
    # Wake the request thread (a blocked recv ignores close from another thread).
    for sock in (client, upstream):
        try:
            sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
    requests.join(timeout=5)
    client.close()
    upstream.close()


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--listen", required=True, help="127.0.0.1:PORT")
    parser.add_argument("--upstream", required=True, help="127.0.0.1:PORT")
    parser.add_argument("--rate", type=int, required=True, help="bytes per second per connection")
    args = parser.parse_args()
    listen_addr = parse_addr(args.listen)
    upstream_addr = parse_addr(args.upstream)

    signal.signal(signal.SIGTERM, lambda *_: os._exit(0))
    signal.signal(signal.SIGINT, lambda *_: os._exit(0))

    server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    server.bind(listen_addr)
    server.listen(256)
    print("ready", flush=True)
    while True:
        client, _ = server.accept()
        threading.Thread(target=handle, args=(client, upstream_addr, args.rate), daemon=True).start()


if __name__ == "__main__":
    main()
