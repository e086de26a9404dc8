"""HTTP/2 conformance checks against a running server, with the Python `h2` library
(python-hyper, sans-IO) as the client: it decodes and validates every frame and header
block the server sends (flow control, HPACK, stream states, no connection-specific or
uppercase fields in answers) and raises on any breach; the checks below add what RFC
9113 asks of a server for what a client may do, right or wrong.

Usage: python conformance.py PORT AUTHORITY. Prints "ok NAME" per check; exits 1 at the
first failure (with why), 0 when all passed.
"""

import socket
import os
import struct
import sys

import h2.config
import h2.connection
import h2.errors
import h2.events
import h2.exceptions
import h2.settings

PORT = int(sys.argv[1])
AUTHORITY = sys.argv[2]
TIMEOUT = 10.0

NO_ERROR, PROTOCOL_ERROR, FLOW_CONTROL_ERROR, STREAM_CLOSED, FRAME_SIZE_ERROR = 0, 1, 3, 5, 6


class Client:
    def __init__(self, settings=None, validate=True):
        self.sock = socket.create_connection(("127.0.0.1", PORT), timeout=TIMEOUT)
        config = h2.config.H2Configuration(
            client_side=True,
            header_encoding="utf-8",
            validate_outbound_headers=validate,
            normalize_outbound_headers=validate,
        )
        self.conn = h2.connection.H2Connection(config=config)
        if settings:
            self.conn.local_settings = h2.settings.Settings(client=True, initial_values=settings)
        self.conn.initiate_connection()
        self.events = []
        self.closed = False
        self.flush()

    def flush(self):
        data = self.conn.data_to_send()
        if data:
            self.sock.sendall(data)

    def raw(self, data):
        self.sock.sendall(data)

    def pump(self):
        """One read; its events appended. False when the server closed."""
        try:
            data = self.sock.recv(65536)
        except socket.timeout:
            raise AssertionError("no answer within %s s; events: %r" % (TIMEOUT, self.events[-5:]))
        except ConnectionResetError:
            data = b""
        if not data:
            self.closed = True
            return False
        self.events.extend(self.conn.receive_data(data))
        self.flush()
        return True

    def until(self, pred, what):
        seen = 0
        while True:
            for e in self.events[seen:]:
                if pred(e):
                    return e
            seen = len(self.events)
            if not self.pump():
                raise AssertionError("closed before %s; events: %r" % (what, self.events[-5:]))

    def request(self, sid, method, path, headers=(), end=True):
        fields = [(":method", method), (":scheme", "http"), (":path", path),
                  (":authority", AUTHORITY)] + list(headers)
        self.conn.send_headers(sid, fields, end_stream=end)
        self.flush()

    def response(self, sid, ack=True):
        """Status, headers, body of stream `sid`, read to its end."""
        status, headers, body = None, [], b""
        seen = 0
        while True:
            for e in self.events[seen:]:
                if isinstance(e, h2.events.ResponseReceived) and e.stream_id == sid:
                    headers = e.headers
                    status = int(dict(headers)[":status"])
                elif isinstance(e, h2.events.DataReceived) and e.stream_id == sid:
                    body += e.data
                    if ack:
                        self.conn.acknowledge_received_data(e.flow_controlled_length, sid)
                        self.flush()
                elif isinstance(e, h2.events.StreamEnded) and e.stream_id == sid:
                    return status, headers, body
                elif isinstance(e, h2.events.StreamReset) and e.stream_id == sid:
                    raise AssertionError("stream %d reset: %r" % (sid, e.error_code))
            seen = len(self.events)
            if not self.pump():
                raise AssertionError("closed before stream %d ended" % sid)

    def terminated(self):
        return self.until(lambda e: isinstance(e, h2.events.ConnectionTerminated), "GOAWAY")

    def close(self):
        self.sock.close()


def raw_frames(sock, want, what):
    """Frames read straight from the socket (past the library, which drops frames on
    streams it closed) until `want(kind, sid, payload)` holds; returns that frame."""
    buf = b""
    while True:
        while len(buf) >= 9:
            length = int.from_bytes(buf[:3], "big")
            if len(buf) < 9 + length:
                break
            kind, sid = buf[3], int.from_bytes(buf[5:9], "big") & 0x7FFFFFFF
            payload, buf = buf[9:9 + length], buf[9 + length:]
            if want(kind, sid, payload):
                return kind, sid, payload
        try:
            data = sock.recv(65536)
        except socket.timeout:
            raise AssertionError("no %s within %s s" % (what, TIMEOUT))
        if not data:
            raise AssertionError("closed before %s" % what)
        buf += data


def frame(kind, flags, sid, payload):
    return struct.pack(">I", len(payload))[1:] + bytes([kind, flags]) + struct.pack(">I", sid) + payload


CHECKS = []


def check(name):
    """Registers a check under NAME: `sN_M_...`, the RFC 9113 section it is about."""
    def register(f):
        CHECKS.append((name, f))
        return f
    return register


@check("s3_4_server_settings_first_and_acked")
def _():
    c = Client()
    e = c.until(lambda e: isinstance(e, h2.events.RemoteSettingsChanged), "SETTINGS")
    got = {int(k): v.new_value for k, v in e.changed_settings.items()}
    assert got.get(h2.settings.SettingCodes.MAX_CONCURRENT_STREAMS) == 100, got
    c.until(lambda e: isinstance(e, h2.events.SettingsAcknowledged), "SETTINGS ACK")
    c.close()


@check("s5_interleaved_streams")
def _():
    c = Client()
    c.request(1, "GET", "/")
    c.request(3, "GET", "/digits.txt")
    c.request(5, "HEAD", "/digits.txt")
    s1, h1, b1 = c.response(1)
    s3, h3, b3 = c.response(3)
    s5, h5, b5 = c.response(5)
    assert s1 == 200 and len(b1) == int(dict(h1)["content-length"]), (s1, h1)
    assert (s3, b3) == (200, b"0123456789abcdefghij"), (s3, b3)
    assert s5 == 200 and b5 == b"" and dict(h5)["content-length"] == "20", (s5, h5)
    c.close()


@check("s8_2_2_no_connection_specific_fields_in_answers")
def _():
    c = Client()
    c.request(1, "GET", "/")
    c.request(3, "GET", "/missing")
    for sid in (1, 3):
        _, headers, _ = c.response(sid)
        for name, _ in headers:
            assert name not in ("connection", "keep-alive", "proxy-connection",
                                "transfer-encoding", "upgrade"), name
            assert name == name.lower(), name
    c.close()


@check("s6_9_1_flow_control_small_windows")
def _():
    # The server must never pass our 1,000-byte window; h2 raises if it does.
    c = Client(settings={h2.settings.SettingCodes.INITIAL_WINDOW_SIZE: 1000})
    c.until(lambda e: isinstance(e, h2.events.SettingsAcknowledged), "SETTINGS ACK")
    c.request(1, "GET", "/big.txt")
    status, headers, body = c.response(1, ack=True)
    assert status == 200 and len(body) == 200_000, (status, len(body))
    assert body == bytes((i % 251 for i in range(200_000))), "body bytes"
    c.close()


@check("s6_7_ping_is_acked_with_its_payload")
def _():
    c = Client()
    c.conn.ping(b"12345678")
    c.flush()
    e = c.until(lambda e: isinstance(e, h2.events.PingAckReceived), "PING ACK")
    assert e.ping_data == b"12345678"
    c.close()


@check("s8_1_body_and_trailers")
def _():
    c = Client()
    body = b'{"conformance": true}'
    c.request(1, "POST", "/upload", [("content-type", "application/json"),
                                     ("content-length", str(len(body)))], end=False)
    c.conn.send_data(1, body, end_stream=True)
    c.flush()
    status, headers, reply = c.response(1)
    assert status == 201, (status, reply)
    # Trailers end a body as END_STREAM does.
    c.request(3, "POST", "/upload", [("content-type", "application/json")], end=False)
    c.conn.send_data(3, b'{"t": 1}')
    c.conn.send_headers(3, [("x-checksum", "none")], end_stream=True)
    c.flush()
    status, _, reply = c.response(3)
    assert status == 201, (status, reply)
    c.close()


@check("s6_4_reset_then_new_stream")
def _():
    c = Client(settings={h2.settings.SettingCodes.INITIAL_WINDOW_SIZE: 1000})
    c.request(1, "GET", "/big.txt")
    c.until(lambda e: isinstance(e, h2.events.DataReceived) and e.stream_id == 1, "DATA")
    c.conn.reset_stream(1, error_code=h2.errors.ErrorCodes.CANCEL)
    c.flush()
    c.request(3, "GET", "/digits.txt")
    status, _, body = c.response(3)
    assert (status, body) == (200, b"0123456789abcdefghij")
    c.close()


def expect_stream_reset(fields, code, what):
    c = Client(validate=False)
    c.conn.send_headers(1, fields, end_stream=True)
    c.flush()
    e = c.until(lambda e: isinstance(e, (h2.events.StreamReset, h2.events.ResponseReceived,
                                         h2.events.ConnectionTerminated)), what)
    assert isinstance(e, h2.events.StreamReset) and e.error_code == code, (what, e)
    # The connection goes on.
    c.request(3, "GET", "/digits.txt")
    assert c.response(3)[0] == 200, what
    c.close()


BASE = [(":method", "GET"), (":scheme", "http"), (":path", "/"), (":authority", AUTHORITY)]

# Malformed requests (§8.1.1): a stream error PROTOCOL_ERROR, the connection goes on.
MALFORMED = [
    ("s8_2_2_connection_field", BASE + [("connection", "keep-alive")]),
    ("s8_2_2_transfer_encoding_field", BASE + [("transfer-encoding", "chunked")]),
    ("s8_2_2_te_other_than_trailers", BASE + [("te", "gzip")]),
    ("s8_2_1_uppercase_name", BASE + [("X-Upper", "1")]),
    ("s8_3_pseudo_after_regular", [("x-first", "1")] + BASE),
    ("s8_3_1_no_path", BASE[:2] + BASE[3:]),
    ("s8_3_1_no_method", BASE[1:]),
    ("s8_3_1_no_scheme", BASE[:1] + BASE[2:]),
    ("s8_3_1_empty_path", [(":method", "GET"), (":scheme", "http"), (":path", ""),
                           (":authority", AUTHORITY)]),
    ("s8_3_duplicated_pseudo", BASE + [(":path", "/again")]),
    ("s8_3_unknown_pseudo", BASE + [(":protocol", "x")]),
    ("s8_3_response_pseudo_in_request", BASE + [(":status", "200")]),
    ("s8_1_1_content_length_without_data", [(":method", "POST"), (":scheme", "http"),
                                            (":path", "/upload"), (":authority", AUTHORITY),
                                            ("content-length", "5")]),
]
for name, fields in MALFORMED:
    check(name + "_is_a_stream_error")(
        lambda fields=fields, name=name: expect_stream_reset(fields, PROTOCOL_ERROR, name))


def expect_goaway(payload, code, what, prelude=None):
    c = Client()
    c.until(lambda e: isinstance(e, h2.events.SettingsAcknowledged), "SETTINGS ACK")
    if prelude:
        prelude(c)
    c.raw(payload)
    try:
        e = c.terminated()
    except h2.exceptions.ProtocolError as err:
        raise AssertionError("%s: the server sent something wrong: %r" % (what, err))
    assert e.error_code == code, (what, e)
    c.close()


def open_stream_1(c):
    c.request(1, "POST", "/upload", [("content-type", "application/json")], end=False)


def hdrs(sid, flags=0x5):
    """A HEADERS frame of a GET / (literal fields, no Huffman, no indexing)."""
    block = b"\x82\x86\x84" + b"\x01" + bytes([len(AUTHORITY)]) + AUTHORITY.encode()
    return frame(0x1, flags, sid, block)


# Connection errors: a GOAWAY with the code, then the end of the connection.
CONNECTION_ERRORS = [
    ("s4_2_data_over_max_frame_size", frame(0x0, 0, 1, b"x" * 16385), FRAME_SIZE_ERROR, None),
    ("s4_2_headers_over_max_frame_size", frame(0x1, 0x4, 1, b"\x82" * 16385),
     FRAME_SIZE_ERROR, None),
    ("s4_3_bad_hpack_index", frame(0x1, 0x5, 1, b"\xff\xff\x7f"), 9, None),
    ("s5_1_data_on_an_idle_stream", frame(0x0, 0, 1, b"x"), PROTOCOL_ERROR, None),
    ("s5_1_1_even_stream_id", hdrs(2), PROTOCOL_ERROR, None),
    ("s5_1_1_stream_id_going_down", hdrs(5) + hdrs(3), PROTOCOL_ERROR, None),
    ("s6_1_data_on_stream_0", frame(0x0, 0, 0, b"x"), PROTOCOL_ERROR, None),
    ("s6_1_padding_as_long_as_the_payload", frame(0x0, 0x8, 1, b"\x05abcd"),
     PROTOCOL_ERROR, open_stream_1),
    ("s6_2_headers_on_stream_0", frame(0x1, 0x5, 0, b"\x82"), PROTOCOL_ERROR, None),
    ("s6_4_rst_stream_on_an_idle_stream", frame(0x3, 0, 1, struct.pack(">I", 8)),
     PROTOCOL_ERROR, None),
    ("s6_4_rst_stream_of_3_bytes", frame(0x3, 0, 1, b"\x00\x00\x08"), FRAME_SIZE_ERROR,
     open_stream_1),
    ("s6_5_settings_on_a_stream", frame(0x4, 0, 1, b""), PROTOCOL_ERROR, None),
    ("s6_5_settings_ack_with_a_payload", frame(0x4, 0x1, 0, b"\x00" * 6), FRAME_SIZE_ERROR,
     None),
    ("s6_5_settings_of_7_bytes", frame(0x4, 0, 0, b"\x00" * 7), FRAME_SIZE_ERROR, None),
    ("s6_5_2_enable_push_of_2", frame(0x4, 0, 0, struct.pack(">HI", 2, 2)), PROTOCOL_ERROR,
     None),
    ("s6_5_2_initial_window_size_over_2_31", frame(0x4, 0, 0, struct.pack(">HI", 4, 2**31)),
     FLOW_CONTROL_ERROR, None),
    ("s6_5_2_max_frame_size_under_16384", frame(0x4, 0, 0, struct.pack(">HI", 5, 16383)),
     PROTOCOL_ERROR, None),
    ("s6_7_ping_of_5_bytes", frame(0x6, 0, 0, b"short"), FRAME_SIZE_ERROR, None),
    ("s6_7_ping_on_a_stream", frame(0x6, 0, 1, b"12345678"), PROTOCOL_ERROR, None),
    ("s6_8_goaway_on_a_stream", frame(0x7, 0, 1, struct.pack(">II", 0, 0)), PROTOCOL_ERROR,
     None),
    ("s6_9_window_update_of_0_on_the_connection", frame(0x8, 0, 0, struct.pack(">I", 0)),
     PROTOCOL_ERROR, None),
    ("s6_9_window_update_of_3_bytes", frame(0x8, 0, 0, b"\x00\x00\x01"), FRAME_SIZE_ERROR,
     None),
    ("s6_9_1_connection_window_over_2_31", frame(0x8, 0, 0, struct.pack(">I", 2**31 - 1)),
     FLOW_CONTROL_ERROR, None),
    ("s6_10_continuation_without_headers", frame(0x9, 0x4, 1, b""), PROTOCOL_ERROR, None),
    ("s6_10_other_frame_inside_a_header_block", hdrs(1, 0x1) + frame(0x6, 0, 0, b"12345678"),
     PROTOCOL_ERROR, None),
    ("s8_4_push_promise_from_a_client", frame(0x5, 0x4, 1, b"\x00\x00\x00\x02"),
     PROTOCOL_ERROR, None),
]
for name, payload, code, prelude in CONNECTION_ERRORS:
    check(name + "_is_a_connection_error")(
        lambda p=payload, c=code, n=name, pre=prelude: expect_goaway(p, c, n, pre))


@check("s5_1_data_on_a_closed_stream_is_stream_closed")
def _():
    c = Client()
    c.request(1, "GET", "/digits.txt")
    c.response(1)
    # DATA on a stream both sides closed: a stream error STREAM_CLOSED (RST_STREAM) or
    # a connection error of that type (GOAWAY).
    c.raw(frame(0x0, 0, 1, b"late"))
    kind, sid, payload = raw_frames(c.sock, lambda k, i, p: k == 0x3 and i == 1 or k == 0x7,
                                    "an error for DATA on a closed stream")
    code = int.from_bytes(payload[:4] if kind == 0x3 else payload[4:8], "big")
    assert code == STREAM_CLOSED, (kind, code)
    c.close()


@check("s6_9_window_update_of_0_on_a_stream_is_a_stream_error")
def _():
    c = Client()
    open_stream_1(c)
    c.raw(frame(0x8, 0, 1, struct.pack(">I", 0)))
    e = c.until(lambda e: isinstance(e, h2.events.StreamReset), "RST_STREAM")
    assert (e.stream_id, e.error_code) == (1, PROTOCOL_ERROR), e
    c.close()


@check("s6_9_1_stream_window_over_2_31_is_a_stream_error")
def _():
    c = Client(settings={h2.settings.SettingCodes.INITIAL_WINDOW_SIZE: 1000})
    c.until(lambda e: isinstance(e, h2.events.SettingsAcknowledged), "SETTINGS ACK")
    c.request(1, "GET", "/big.txt")
    c.until(lambda e: isinstance(e, h2.events.DataReceived) and e.stream_id == 1, "DATA")
    # (The window is at most 1,000 now: the second increment passes 2^31-1.)
    c.raw(frame(0x8, 0, 1, struct.pack(">I", 2**31 - 1000)) * 2)
    kind, sid, payload = raw_frames(c.sock, lambda k, i, p: k == 0x3 and i == 1 or k == 0x7,
                                    "an error for a stream window over 2^31-1")
    assert (kind, int.from_bytes(payload[:4], "big")) == (0x3, FLOW_CONTROL_ERROR), \
        (kind, payload)
    c.close()


@check("s5_3_1_stream_depending_on_itself_is_a_stream_error")
def _():
    c = Client()
    c.raw(frame(0x2, 0, 1, struct.pack(">IB", 1, 16)))
    kind, sid, payload = raw_frames(c.sock, lambda k, i, p: k in (0x3, 0x7),
                                    "an error for PRIORITY on itself")
    assert (kind, sid, int.from_bytes(payload[:4], "big")) == (0x3, 1, PROTOCOL_ERROR), \
        (kind, sid, payload)
    c.close()


@check("s5_1_2_max_concurrent_streams_is_kept")
def _():
    # 101 requests at once: the 101st is refused (REFUSED_STREAM) or waits; none is lost.
    c = Client(settings={h2.settings.SettingCodes.INITIAL_WINDOW_SIZE: 0})
    c.until(lambda e: isinstance(e, h2.events.SettingsAcknowledged), "SETTINGS ACK")
    block = b""
    for i in range(101):
        block += hdrs(2 * i + 1)
    c.raw(block)
    kind, sid, payload = raw_frames(c.sock, lambda k, i, p: k in (0x3, 0x7),
                                    "REFUSED_STREAM for the 101st")
    assert (kind, sid, int.from_bytes(payload[:4], "big")) == (0x3, 201, 7), (kind, sid, payload)
    c.close()


@check("s5_5_unknown_frames_and_priority_are_ignored")
def _():
    c = Client()
    c.raw(frame(0xfa, 0, 0, b"whatever") + frame(0x2, 0, 1, b"\x00\x00\x00\x00\x10"))
    c.request(3, "GET", "/digits.txt")
    assert c.response(3)[0] == 200
    c.close()


@check("s6_8_client_goaway_lets_open_streams_finish")
def _():
    # The client's GOAWAY (raw: the library stops reading after its own) ends the
    # connection only once the open stream is done.
    c = Client()
    c.request(1, "GET", "/big.txt")
    c.raw(frame(0x7, 0, 0, struct.pack(">II", 0, NO_ERROR)))
    status, _, body = c.response(1)
    assert status == 200 and len(body) == 200_000, (status, len(body))
    c.close()


def main():
    failed = 0
    print("checks", len(CHECKS), flush=True)
    for name, f in CHECKS:
        try:
            f()
            print("ok", name, flush=True)
        except Exception as e:  # noqa: BLE001 - every failure is reported
            failed += 1
            print("FAILED", name, repr(e), flush=True)
    sys.exit(1 if failed else 0)


main()
