"""The dashboard in Chromium agrees to permessage-deflate and reads the compressed frames."""

from __future__ import annotations

import asyncio
import contextlib
import json
from typing import Any, Final

import aiohttp

from tests.support.gateway import next_traffic, receive_until, subscribe
from tests.support.timing import eventually, seconds
from tests.support.web import Dashboard

# Records, from inside the page, each websocket's agreed extensions and the traffic frames it
# got for the office router (the page's first view: frames of about 1.4 KB, deflated).
SOCKET_LOG: Final = """
(() => {
  const Native = window.WebSocket;
  const log = (window.socketLog = []);
  window.WebSocket = class extends Native {
    constructor(...args) {
      super(...args);
      const entry = { extensions: null, traffic: [] };
      log.push(entry);
      this.addEventListener("open", () => { entry.extensions = this.extensions; });
      this.addEventListener("message", (event) => {
        if (entry.traffic.length < 50 && event.data.startsWith('{"type":"traffic","v":1,'
            + '"router":"office"')) {
          entry.traffic.push(event.data);
        }
      });
    }
  };
})();
"""
ANSWER: Final = "permessage-deflate; server_no_context_takeover"


async def test_chromium_agrees_to_deflate_and_reads_the_frames_right(
    dashboard: Dashboard,
) -> None:
    """Chromium offers permessage-deflate by itself; the gateway agrees with
    server_no_context_takeover, and the frames the page gets (compressed: they are over the
    gateway's threshold) are, seq by seq, those a plain client gets."""
    url = dashboard.gateway.url
    plain: dict[int, Any] = {}
    async with aiohttp.ClientSession() as http:
        ws = await http.ws_connect(f"{url}ws", compress=0)
        await receive_until(ws, "hello")
        await subscribe(ws, "office", history=0)

        async def collect() -> None:
            while True:
                frame = await next_traffic(ws, seconds(10))
                plain[frame["seq"]] = frame

        # Owned here: cancelled and awaited before the connection closes.
        reader = asyncio.create_task(collect())
        try:
            page = dashboard.page
            await page.add_init_script(SOCKET_LOG)
            await page.goto(url)

            async def frames() -> list[Any]:
                log = await dashboard.evaluate("window.socketLog")
                return [json.loads(text) for text in log[0]["traffic"]] if log else []

            async def enough() -> bool:
                got = await frames()
                return sum(frame["seq"] in plain for frame in got) >= 3

            await eventually(
                enough, timeout=seconds(15), interval=0.2, message="frames in the page"
            )
            log = await dashboard.evaluate("window.socketLog")
            assert log[0]["extensions"] == ANSWER
            got = await frames()
            common = [frame for frame in got if frame["seq"] in plain]
            assert common == [plain[frame["seq"]] for frame in common]
            assert all(len(json.dumps(frame)) > 512 for frame in common)
        finally:
            reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await reader
            await ws.close()
