"""A TCP proxy on loopback that breaks one connection at an exact byte count.

It forwards every connection to `target`. The first time the bytes sent towards the
target (over all connections) reach `cut_at`, it forwards exactly that many and then
breaks that connection (both sides reset); with `stall=True` it first waits until the
test calls `release()` (the test can act meanwhile, e.g. kill the receiver). Later
connections pass untouched. `upstream` counts the bytes forwarded towards the target.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Iterator
from contextlib import contextmanager

from tests.support.processes import LOOPBACK, free_port

READ_SIZE = 256 * 1024


class CuttingProxy:
    def __init__(self, target: int, cut_at: int, *, stall: bool = False) -> None:
        self.target = target
        self.cut_at = cut_at
        self.stall = stall
        self.port = free_port()
        self.upstream = 0
        self.cuts = 0
        self.reached = threading.Event()
        self._release = threading.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()

    def release(self) -> None:
        self._release.set()

    # -- running -------------------------------------------------------------------
    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="cutting-proxy", daemon=True)
        self._thread.start()
        if not self._ready.wait(10):
            raise RuntimeError("the proxy did not start")

    def stop(self) -> None:
        self._release.set()
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self._loop.stop)
        if self._thread is not None:
            self._thread.join(10)

    def _run(self) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        server = loop.run_until_complete(asyncio.start_server(self._handle, LOOPBACK, self.port))
        self._ready.set()
        try:
            loop.run_forever()
        finally:
            server.close()
            loop.close()

    async def _handle(self, client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
        try:
            target_r, target_w = await asyncio.open_connection(LOOPBACK, self.target)
        except OSError:
            client_w.transport.abort()
            return
        writers = (client_w, target_w)
        await asyncio.gather(
            self._pump_up(client_r, target_w, writers),
            self._pump(target_r, client_w),
            return_exceptions=True,
        )
        for w in writers:
            w.transport.abort()

    async def _pump(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while data := await reader.read(READ_SIZE):
            writer.write(data)
            await writer.drain()
        with contextlib.suppress(OSError):
            writer.write_eof()

    async def _pump_up(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        writers: tuple[asyncio.StreamWriter, ...],
    ) -> None:
        while data := await reader.read(READ_SIZE):
            if self.cuts == 0 and self.upstream + len(data) >= self.cut_at:
                data = data[: self.cut_at - self.upstream]
                self.cuts += 1
                self.upstream += len(data)
                writer.write(data)
                await writer.drain()
                self.reached.set()
                if self.stall:
                    await asyncio.get_running_loop().run_in_executor(None, self._release.wait)
                for w in writers:
                    w.transport.abort()
                return
            self.upstream += len(data)
            writer.write(data)
            await writer.drain()
        with contextlib.suppress(OSError):
            writer.write_eof()


@contextmanager
def proxied(proxy: CuttingProxy) -> Iterator[CuttingProxy]:
    proxy.start()
    try:
        yield proxy
    finally:
        proxy.stop()
