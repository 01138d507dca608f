#!/usr/bin/python3
"""Loopback TCP proxy that adds latency, for the cpfs benchmark.

    delayproxy.py --target-port N --delay-ms D [--window-kib W] --port-file F

Listens on 127.0.0.1 (port written to --port-file) and forwards every
connection to 127.0.0.1:N.  Each direction is a pipeline: a chunk read at
time t is written out at t + D (the one-way delay), so throughput is not
stop-and-wait.  A new connection pays one round trip (2 D) before its first
byte moves, like a TCP handshake.

Per direction at most W KiB are "in flight": a chunk's credit comes back
one more one-way delay after it was delivered (the ACK's trip back), so
one connection moves at most W / (2 D) — what a TCP connection with a
W-byte window does on a path with that round trip.  Without the window a
proxy that terminates TCP on both sides would make one stream as fast as
loopback, shifted by D, and parallel connections would not matter.

Python stdlib only.  Stops on SIGTERM/SIGINT.
"""

import argparse
import asyncio
import os
import signal
import sys

CHUNK = 256 * 1024


async def pump(reader, writer, delay, window, loop):
    q = asyncio.Queue()
    state = {"inflight": 0}
    credit = asyncio.Event()
    credit.set()

    def release(n):
        state["inflight"] -= n
        if state["inflight"] < window:
            credit.set()

    async def rx():
        try:
            while True:
                while state["inflight"] >= window:
                    credit.clear()
                    await credit.wait()
                room = max(4096, min(CHUNK, window - state["inflight"]))
                data = await reader.read(room)
                if not data:
                    break
                state["inflight"] += len(data)
                q.put_nowait((loop.time() + delay, data))
        except (ConnectionError, OSError):
            pass
        q.put_nowait((loop.time() + delay, None))

    async def tx():
        try:
            while True:
                due, data = await q.get()
                wait = due - loop.time()
                if wait > 0:
                    await asyncio.sleep(wait)
                if data is None:
                    if writer.can_write_eof():
                        writer.write_eof()
                    break
                writer.write(data)
                await writer.drain()
                loop.call_at(due + delay, release, len(data))
        except (ConnectionError, OSError):
            pass

    await asyncio.gather(rx(), tx())


async def handle(creader, cwriter, args, loop):
    delay = args.delay_ms / 1000.0
    window = args.window_kib * 1024
    try:
        await asyncio.sleep(2 * delay)  # the handshake's round trip
        ureader, uwriter = await asyncio.open_connection(
            "127.0.0.1", args.target_port)
    except OSError:
        cwriter.close()
        return
    try:
        await asyncio.gather(pump(creader, uwriter, delay, window, loop),
                             pump(ureader, cwriter, delay, window, loop))
    finally:
        for w in (cwriter, uwriter):
            try:
                w.close()
            except Exception:
                pass


async def main(args):
    loop = asyncio.get_running_loop()
    server = await asyncio.start_server(
        lambda r, w: handle(r, w, args, loop), "127.0.0.1", args.port,
        limit=CHUNK, backlog=256)
    port = server.sockets[0].getsockname()[1]
    tmp = args.port_file + ".tmp"
    with open(tmp, "w") as fh:
        fh.write("%d\n" % port)
    os.replace(tmp, args.port_file)
    stop = asyncio.Event()
    for s in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(s, stop.set)
    async with server:
        await stop.wait()


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--target-port", type=int, required=True)
    ap.add_argument("--delay-ms", type=float, required=True,
                    help="one-way delay added in each direction")
    ap.add_argument("--window-kib", type=int, default=4096)
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--port-file", required=True)
    sys.exit(asyncio.run(main(ap.parse_args())))
