"""The emulator's network shell: an asyncio TCP server speaking the RouterOS API.

It adds to the pure session what a real router's ``api`` service does around it (a session limit)
and the faults a gateway must survive, switchable at run time: hang, slow replies, a reset in the
middle of a reply, refusing connections, ``!trap`` or ``!fatal`` on the next command, and failing
logins. Counters of connections, logins and commands let tests prove how hard a client works it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import ssl
import struct
from collections import Counter
from dataclasses import dataclass
from typing import Final, Literal, get_args

from gateway.emulator.codec import CodecError, SentenceDecoder, encode_length
from gateway.emulator.device import Device
from gateway.emulator.session import ApiSession, Stream, Words

logger = logging.getLogger(__name__)

FaultMode = Literal["none", "hang", "slow", "drop", "refuse", "trap", "fatal", "auth"]
OverLimit = Literal["close", "hang", "fatal"]
FAULT_MODES: Final[tuple[str, ...]] = get_args(FaultMode)
OVER_LIMIT_MODES: Final[tuple[str, ...]] = get_args(OverLimit)

# A real trap text seen on busy routers; used for the injected ``trap`` fault.
FAULT_TRAP: Final = (
    "action timed out - try again, if error continues contact MikroTik support "
    "and send a supout file (13)"
)
FAULT_FATAL: Final = "not enough resources"
OVER_LIMIT_FATAL: Final = "too many sessions"

TLS_HANDSHAKE_TIMEOUT: Final = 10.0
"""Seconds a client gets to finish the TLS handshake before the connection is dropped."""


@dataclass(frozen=True, slots=True)
class Fault:
    """An injected misbehaviour. ``duration`` None means until cleared, except that ``trap`` and
    ``fatal`` without a duration hit only the next command."""

    mode: FaultMode = "none"
    delay: float = 0.0
    duration: float | None = None

    @classmethod
    def parse(cls, data: object) -> Fault:
        """Build a fault from the control API's JSON body; ValueError says what was wrong."""
        if not isinstance(data, dict):
            raise ValueError('expected a JSON object like {"mode": "hang"}')
        unknown = set(data) - {"mode", "delay", "for"}
        if unknown:
            raise ValueError(f"unknown field(s) {sorted(unknown)}; expected mode, delay, for")
        mode = data.get("mode", "none")
        if mode not in FAULT_MODES:
            raise ValueError(f"mode: expected one of {', '.join(FAULT_MODES)}, got {mode!r}")
        delay = data.get("delay", 2.0 if mode == "slow" else 0.0)
        duration = data.get("for")
        for key, value in (("delay", delay), ("for", duration)):
            if value is None and key == "for":
                continue
            if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
                raise ValueError(f"{key}: expected a number of seconds >= 0, got {value!r}")
        return cls(mode, float(delay), None if duration is None else float(duration))


class Connection:
    """One client connection and its tasks (the handler, and a streaming command if any)."""

    __slots__ = ("handler", "session", "stream", "writer")

    def __init__(self, writer: asyncio.StreamWriter, session: ApiSession | None) -> None:
        self.writer = writer
        self.session = session
        # The task running this connection's read loop; set by the handler itself.
        self.handler: asyncio.Task[None] | None = None
        # A never-ending command's task, owned by this connection; None when nothing streams.
        self.stream: tuple[asyncio.Task[None], Stream] | None = None


class RouterEmulator:
    """A RouterOS API service on loopback, backed by one ``Device`` (its version decides login).

    ``password`` must fit the device's encoding (ValueError otherwise): the router stores it as
    bytes in that encoding, and the pre-6.43 challenge login hashes those bytes.

    Use ``await start()`` / ``await stop()`` (or ``async with``). Everything a test needs is a
    method: ``set_fault``, ``clear_fault``, ``reboot``, ``reset_counters``, ``stats``.

    With ``tls`` (a server context from ``gateway.emulator.tls``) it serves api-ssl: the API
    inside TLS, as a router does on port 8729. A client that fails the handshake never reaches
    the API and is not counted as a connection.
    """

    def __init__(
        self,
        device: Device | None = None,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        username: str = "admin",
        password: str = "admin",
        max_sessions: int = 20,
        over_limit: OverLimit = "close",
        write_chunk: int = 0,
        tls: ssl.SSLContext | None = None,
    ) -> None:
        self.device = device or Device()
        try:
            password.encode(self.device.config.encoding)
        except UnicodeEncodeError:
            raise ValueError(
                f"the password has characters that encoding {self.device.config.encoding!r} "
                "cannot carry"
            ) from None
        self.host = host
        self.username = username
        self.password = password
        self.max_sessions = max_sessions
        self.over_limit: OverLimit = over_limit
        # When > 0, replies are written in pieces of this many bytes (to exercise split reads).
        self.write_chunk = write_chunk
        self.tls = tls
        self.encoding = self.device.config.encoding
        self._port = port
        self._server: asyncio.Server | None = None
        # Every open connection, sessions and over-limit ones alike; the stopper closes them.
        self._connections: set[Connection] = set()
        self._fault = Fault()
        # Clears a timed fault when its duration is over; replaced by each new fault.
        self._fault_timer: asyncio.Task[None] | None = None
        self.connections_total = 0
        # Most sessions open at once, and connections turned away by the session limit, since
        # start-up or the last reset_stats(): how hard a client pushes the api service (the
        # router-load benchmark reads them; not in stats(), whose keys are a tested contract).
        self.peak_sessions = 0
        self.refused_sessions = 0
        self.logins = 0
        self.login_failures = 0
        self.commands: Counter[str] = Counter()

    # -- lifecycle ----------------------------------------------------------------------------

    @property
    def port(self) -> int:
        return self._port

    @property
    def legacy_login(self) -> bool:
        """Whether this router logs in only with the pre-6.43 challenge (its version decides)."""
        return not self.device.config.version.plain_login

    async def start(self) -> None:
        await self._listen()

    async def _listen(self) -> None:
        self._server = await asyncio.start_server(
            self._handle,
            self.host,
            self._port,
            reuse_address=True,
            ssl=self.tls,
            ssl_handshake_timeout=TLS_HANDSHAKE_TIMEOUT if self.tls is not None else None,
        )
        self._port = self._server.sockets[0].getsockname()[1]

    async def _unlisten(self) -> None:
        if self._server is not None:
            self._server.close()
            self._server = None

    async def stop(self) -> None:
        """Stop listening, drop every connection, and wait for all tasks to end."""
        if self._fault_timer is not None:
            self._fault_timer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._fault_timer
            self._fault_timer = None
        await self._unlisten()
        await self.drop_connections()

    async def __aenter__(self) -> RouterEmulator:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    async def drop_connections(self) -> None:
        """Close every client connection at once (as a reboot or ``refuse`` does)."""
        connections = list(self._connections)
        tasks = [c.handler for c in connections if c.handler is not None]
        for conn in connections:
            conn.writer.transport.abort()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    # -- controls -----------------------------------------------------------------------------

    @property
    def fault(self) -> Fault:
        return self._fault

    async def set_fault(self, fault: Fault) -> None:
        """Switch a fault on (``mode="none"`` clears it)."""
        if self._fault_timer is not None and self._fault_timer is not asyncio.current_task():
            self._fault_timer.cancel()
        self._fault_timer = None
        previous, self._fault = self._fault, fault
        logger.info("fault: %s", fault)
        if fault.mode == "refuse" and previous.mode != "refuse":
            await self._unlisten()
            await self.drop_connections()
        elif fault.mode != "refuse" and previous.mode == "refuse" and self._server is None:
            await self._listen()
        if fault.duration is not None and fault.mode != "none":
            self._fault_timer = asyncio.create_task(self._expire(fault))

    async def clear_fault(self) -> None:
        await self.set_fault(Fault())

    async def _expire(self, fault: Fault) -> None:
        assert fault.duration is not None
        await asyncio.sleep(fault.duration)
        if self._fault is fault:
            try:
                await self.set_fault(Fault())
            except Exception:
                # E.g. the port was taken while "refuse" had it closed: say so, or the fault
                # would seem to last for ever.
                logger.exception("could not end fault %s", fault.mode)

    async def reboot(self) -> None:
        """Restart the router: sessions drop, counters and uptime restart."""
        await self.drop_connections()
        self.device.reboot()

    def reset_counters(self) -> None:
        """Every interface's and every simple queue's counters back to zero (the operator's
        ``reset-counters-all`` in both menus); hotspot sessions keep theirs."""
        self.device.reset_counters()
        self.device.reset_queue_counters()

    def stats(self) -> dict[str, object]:
        return {
            "connections": self.connections_total,
            "active_sessions": self._sessions(),
            "logins": self.logins,
            "login_failures": self.login_failures,
            "commands": dict(self.commands),
            "fault": self._fault.mode,
            "interfaces": len(self.device.interfaces),
            "queues": len(self.device.queues),
            "ppp_sessions": len(self.device.ppp_active),
            "hotspot_users": len(self.device.hotspot_active),
        }

    def reset_stats(self) -> None:
        self.connections_total = self.logins = self.login_failures = 0
        self.peak_sessions = self._sessions()
        self.refused_sessions = 0
        self.commands.clear()

    def _sessions(self) -> int:
        return sum(1 for c in self._connections if c.session is not None)

    # -- one connection -----------------------------------------------------------------------

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        # The connection runs in a task of our own (not asyncio's callback task), so that
        # drop_connections() can cancel it cleanly; the connection set owns it.
        self.connections_total += 1
        session = None
        if self._sessions() < self.max_sessions:
            session = ApiSession(self.device, username=self.username, password=self.password)
        conn = Connection(writer, session)
        self._connections.add(conn)
        if session is None:
            self.refused_sessions += 1
        else:
            self.peak_sessions = max(self.peak_sessions, self._sessions())
        conn.handler = asyncio.create_task(self._run(conn, reader))

    async def _run(self, conn: Connection, reader: asyncio.StreamReader) -> None:
        try:
            if conn.session is None and self.over_limit == "close":
                return
            await self._serve(conn, reader)
        except (ConnectionError, CodecError) as exc:
            logger.debug("connection ended: %s", exc)
        except Exception:
            # A bug of ours ends this connection (as a crashed router process would), never
            # silently: the server and the other connections carry on.
            logger.exception("connection handler failed; closing the connection")
        finally:
            await self._end_stream(conn, notify=False)
            self._connections.discard(conn)
            conn.writer.transport.abort()

    async def _serve(self, conn: Connection, reader: asyncio.StreamReader) -> None:
        decoder = SentenceDecoder()
        while True:
            data = await reader.read(65536)
            if not data:
                return
            for raw in decoder.feed(data):
                words = [w.decode(self.encoding, "surrogateescape") for w in raw]
                self.commands[words[0]] += 1
                if not await self._answer(conn, words):
                    return

    async def _answer(self, conn: Connection, words: Words) -> bool:
        """Answer one sentence; False when the connection must close."""
        fault = self._fault
        if conn.session is None:
            if self.over_limit == "fatal":
                await self._send(conn, [["!fatal", OVER_LIMIT_FATAL]])
                return False
            return True  # over the limit and hanging: swallow everything
        if fault.mode == "hang":
            return True
        is_login = words[0] == "/login"
        if fault.mode in ("trap", "fatal") and not is_login and words[0] != "/quit":
            if fault.duration is None:
                self._fault = Fault()  # one shot: only the next command
            if fault.mode == "trap":
                # Like every reply to a tagged command, the trap and its !done carry the .tag.
                tag = [w for w in words[1:] if w.startswith(".tag=")]
                await self._send(conn, [["!trap", f"=message={FAULT_TRAP}", *tag], ["!done", *tag]])
                return True
            await self._send(conn, [["!fatal", FAULT_FATAL]])
            return False
        session = conn.session
        was_logged_in = session.logged_in
        reply = session.handle(words, refuse_login=fault.mode == "auth")
        if is_login:
            if session.logged_in and not was_logged_in:
                self.logins += 1
            elif any(s[0] == "!trap" for s in reply.sentences):
                self.login_failures += 1
        if fault.mode == "slow" and fault.delay > 0:
            await asyncio.sleep(fault.delay)
            if self._fault.mode == "hang":
                return True
        if reply.cancel:
            await self._end_stream(conn, notify=True, cancel_reply=reply.sentences)
            return True
        if self._fault.mode == "drop":
            await self._send_half_then_reset(conn, reply.sentences)
            return False
        await self._send(conn, reply.sentences)
        if reply.stream is not None:
            await self._end_stream(conn, notify=False)
            task = asyncio.create_task(self._run_stream(conn, reply.stream))
            conn.stream = (task, reply.stream)
        return not reply.close

    async def _run_stream(self, conn: Connection, stream: Stream) -> None:
        """Send a streaming command's rows each interval until cancelled (by ``_end_stream``).

        It ends by itself only when the connection fails: a lost peer quietly (the read loop
        sees it too), anything else with its traceback logged and the connection closed. It
        never raises, so whoever cancels and awaits it is not hit by its error.
        """
        try:
            while True:
                await asyncio.sleep(stream.interval)
                if self._fault.mode == "hang":
                    continue
                rows = stream.rows()
                if stream.tag is not None:
                    for words in rows:
                        words.append(f".tag={stream.tag}")
                await self._send(conn, rows)
        except ConnectionError as exc:
            logger.debug("stream ended: %s", exc)
        except Exception:
            logger.exception("streaming reply failed; closing the connection")
            conn.writer.transport.abort()

    async def _end_stream(
        self, conn: Connection, *, notify: bool, cancel_reply: list[Words] | None = None
    ) -> None:
        """Stop a streaming command; with ``notify``, answer as the router does to ``/cancel``."""
        running, conn.stream = conn.stream, None
        if running is None:
            if cancel_reply is not None:
                await self._send(conn, cancel_reply)
            return
        task, stream = running
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        if not notify:
            return
        tag = [f".tag={stream.tag}"] if stream.tag is not None else []
        # Real order: the cancelled command's trap, the /cancel's !done, the command's !done.
        await self._send(
            conn,
            [
                ["!trap", "=category=2", "=message=interrupted", *tag],
                *(cancel_reply or [["!done"]]),
                ["!done", *tag],
            ],
        )

    # -- writing ------------------------------------------------------------------------------

    def encode(self, sentences: list[Words]) -> bytes:
        """Sentences as wire bytes in the router's text encoding."""
        enc = self.encoding
        out = bytearray()
        for words in sentences:
            for word in words:
                raw = word.encode(enc, "surrogateescape")
                out += encode_length(len(raw))
                out += raw
            out += b"\x00"
        return bytes(out)

    async def _send(self, conn: Connection, sentences: list[Words]) -> None:
        data = self.encode(sentences)
        writer = conn.writer
        if self.write_chunk > 0:
            for i in range(0, len(data), self.write_chunk):
                writer.write(data[i : i + self.write_chunk])
                await writer.drain()
            return
        writer.write(data)
        await writer.drain()

    async def _send_half_then_reset(self, conn: Connection, sentences: list[Words]) -> None:
        data = self.encode(sentences)
        writer = conn.writer
        writer.write(data[: max(1, len(data) // 2)])
        await writer.drain()
        sock = writer.get_extra_info("socket")
        if sock is not None:
            # SO_LINGER with a zero timeout turns close() into a TCP reset.
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        writer.transport.abort()
