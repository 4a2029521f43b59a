#!/usr/bin/env python3
"""Loopback TCP relay that adds a fixed delay to every chunk, in each direction.

It owns one thing: for every connection accepted on a listening port it opens one
connection to that port's upstream (one of nginx's ports) and copies bytes both ways,
holding each chunk it reads for --delay seconds before writing it on. With the default
10 ms a request/response round trip through it takes about 20 ms longer than direct (the
RTT of a nearby server, on loopback, without touching any qdisc, sysctl or interface). The
event loop waits in select(2), whose timeout has microsecond resolution (epoll's is whole
milliseconds, which made every hold up to a millisecond too long); waking still costs a
fraction of a millisecond, more on a busy machine, so the bench measures the added RTT and
calibrates --delay. select(2) limits the relay to file descriptors below 1024, i.e. about
500 connections at once: far more than the -j 16 workloads need. It does not
throttle: chunks are read as soon as they arrive and queued (up to QUEUE_CHUNKS per
direction, far above what a 10 ms delay needs at loopback speeds), so bandwidth is limited
only by the relay's CPU. TLS passes through untouched: the relay sees only TCP bytes.

To show whether it kept up, it counts, per direction and chunk, how late each write was
against its due time, and its own CPU; on SIGUSR1 it appends those figures since the last
SIGUSR1 as one JSON line to --stats and starts counting afresh. It listens on loopback
addresses only and exits on SIGTERM or SIGINT. Stdlib only (asyncio).
"""
import argparse
import asyncio
import json
import os
import selectors
import signal
import sys
import time

CHUNK = 64 * 1024
QUEUE_CHUNKS = 1024
LATE_MS = 2.0  # a write more than this late counts as late


class Stats:
    def __init__(self):
        self.reset()

    def reset(self):
        self.t0 = time.monotonic()
        self.cpu0 = time.process_time()
        self.chunks = 0
        self.bytes = 0
        self.late = 0
        self.late_sum = 0.0
        self.late_max = 0.0
        self.conns = 0

    def add(self, nbytes, late_s):
        self.chunks += 1
        self.bytes += nbytes
        late_ms = max(0.0, late_s * 1000)
        self.late_sum += late_ms
        self.late_max = max(self.late_max, late_ms)
        if late_ms > LATE_MS:
            self.late += 1

    def dump(self):
        wall = time.monotonic() - self.t0
        cpu = time.process_time() - self.cpu0
        return {"wall": wall, "cpu": cpu, "conns": self.conns, "chunks": self.chunks, "bytes": self.bytes,
                "late_chunks": self.late, "late_max_ms": self.late_max,
                "late_mean_ms": self.late_sum / self.chunks if self.chunks else 0.0}


STATS = Stats()


def parse_addr(text):
    host, _, port = text.rpartition(":")
    if host not in ("127.0.0.1", "localhost", "::1", "[::1]"):
        raise SystemExit(f"latency: refusing non-loopback address {text!r}")
    return host.strip("[]"), int(port)


async def pump(reader, writer, delay):
    """Copy reader -> writer, each chunk held until delay after it was read."""
    loop = asyncio.get_running_loop()
    queue = asyncio.Queue(maxsize=QUEUE_CHUNKS)

    async def read_side():
        try:
            while True:
                data = await reader.read(CHUNK)
                await queue.put((loop.time() + delay, data))
                if not data:
                    return
        except (OSError, asyncio.IncompleteReadError):
            await queue.put((loop.time() + delay, None))  # reset: abort the other side

    async def write_side():
        while True:
            due, data = await queue.get()
            wait = due - loop.time()
            if wait > 0:
                await asyncio.sleep(wait)
            if data is None:
                writer.transport.abort()
                return
            if not data:
                if writer.can_write_eof():
                    writer.write_eof()
                return
            STATS.add(len(data), loop.time() - due)
            writer.write(data)
            await writer.drain()

    reading = asyncio.ensure_future(read_side())
    try:
        await write_side()
    except OSError:
        writer.transport.abort()
    finally:
        reading.cancel()


async def handle(client_r, client_w, upstream_addr, delay):
    STATS.conns += 1
    try:
        up_r, up_w = await asyncio.wait_for(asyncio.open_connection(*upstream_addr), 10)
    except (OSError, asyncio.TimeoutError) as err:
        print(f"latency: connect to {upstream_addr} failed: {err}", file=sys.stderr, flush=True)
        client_w.transport.abort()
        return
    try:
        await asyncio.gather(pump(client_r, up_w, delay), pump(up_r, client_w, delay))
    finally:
        for w in (client_w, up_w):
            w.close()


async def main_async(args):
    loop = asyncio.get_running_loop()
    stop = loop.create_future()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, lambda: stop.done() or stop.set_result(None))

    def dump():
        with open(args.stats, "a") as f:
            f.write(json.dumps(STATS.dump()) + "\n")
        STATS.reset()

    loop.add_signal_handler(signal.SIGUSR1, dump)
    servers = []
    for pair in args.pair:
        listen, _, upstream = pair.partition("=")
        host, port = parse_addr(listen)
        upstream_addr = parse_addr(upstream)
        servers.append(await asyncio.start_server(
            lambda r, w, u=upstream_addr: handle(r, w, u, args.delay),
            host, port, reuse_address=True, backlog=1024))
    print("ready", flush=True)
    await stop
    for s in servers:
        s.close()


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pair", action="append", required=True,
                        help="127.0.0.1:LISTEN=127.0.0.1:UPSTREAM (repeatable)")
    parser.add_argument("--delay", type=float, default=0.010, help="seconds added each way (default 0.010)")
    parser.add_argument("--stats", required=True, help="file to append a JSON line to on SIGUSR1")
    args = parser.parse_args()
    loop = asyncio.SelectorEventLoop(selectors.SelectSelector())
    asyncio.set_event_loop(loop)
    loop.run_until_complete(main_async(args))
    os._exit(0)  # do not wait for open connections


if __name__ == "__main__":
    main()
