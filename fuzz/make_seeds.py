#!/usr/bin/env python3
"""Writes the seed corpus (fuzz/corpus/<target>/seed-*) and nothing else.

Run from anywhere: python3 fuzz/make_seeds.py. The scripts follow the byte format of
protocol_fuzz::run_script / run_split (fuzz/src/lib.rs)."""
import os

HOST = b"Host: 127.0.0.1:8080\r\n"
GET = b"GET / HTTP/1.1\r\n" + HOST + b"\r\n"
HEAD = b"HEAD /index.html HTTP/1.1\r\n" + HOST + b"\r\n"
JSON = b'{"name":"x","n":[1,2,3]}'
POST_CL = (b"POST /upload HTTP/1.1\r\n" + HOST + b"Content-Type: application/json\r\n"
           b"Content-Length: %d\r\n\r\n" % len(JSON) + JSON)
POST_CHUNKED = (b"POST /upload HTTP/1.1\r\n" + HOST + b"Content-Type: application/json\r\n"
                b"Transfer-Encoding: chunked\r\n\r\n"
                b"5;a=b\r\n{\"k\":\r\n3\r\n[1]\r\n1\r\n}\r\n0\r\nTrailer: x\r\n\r\n")
POST_EXPECT = (b"POST /upload HTTP/1.1\r\n" + HOST + b"Content-Type: application/json\r\n"
               b"Expect: 100-continue\r\nContent-Length: 2\r\n\r\n{}")
RANGE = b"GET /sample.txt HTTP/1.1\r\n" + HOST + b"Range: bytes=1-3\r\n\r\n"
GZIP = b"GET /index.html HTTP/1.1\r\n" + HOST + b"Accept-Encoding: br;q=0, gzip\r\n\r\n"
COND = (b"GET /logo.png HTTP/1.1\r\n" + HOST +
        b"If-None-Match: W/\"1-2.3\", \"a\"\r\nIf-Modified-Since: Sun, 06 Nov 1994 08:49:37 GMT\r\n\r\n")
OPTIONS = b"OPTIONS * HTTP/1.1\r\n" + HOST + b"\r\n"
HTTP10 = b"GET /index.html HTTP/1.0\r\nConnection: keep-alive\r\n\r\n"
CLOSE = b"GET / HTTP/1.1\r\n" + HOST + b"Connection: close\r\n\r\n"
SMUGGLE = [
    b"POST /upload HTTP/1.1\r\n" + HOST + b"Content-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
    b"POST /upload HTTP/1.1\r\n" + HOST + b"Content-Length: 4\r\nContent-Length: 5\r\n\r\nabcde",
    b"POST /upload HTTP/1.1\r\n" + HOST + b"Transfer-Encoding: chunked, identity\r\n\r\n0\r\n\r\n",
    b"POST /upload HTTP/1.1\r\n" + HOST + b"Transfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n",
    b"POST /upload HTTP/1.1\r\n" + HOST + b"Transfer-Encoding : chunked\r\n\r\n0\r\n\r\n",
    b"POST /upload HTTP/1.1\r\n" + HOST + b"Content-Length: +4\r\n\r\nabcd",
    b"POST /upload HTTP/1.1\r\n" + HOST + b"Content-Length: 99999999999999999999\r\n\r\n",
    b"POST /upload HTTP/1.1\r\n" + HOST + b"Transfer-Encoding: chunked\r\n\r\nfffffffffffffffff\r\n",
    b"POST /upload HTTP/1.1\r\n" + HOST + b"Transfer-Encoding: chunked\r\n\r\n1;x=\"a\\\"b\"\r\nz\r\n0\r\n\r\n",
    b"GET / HTTP/1.1\r\n" + HOST + b"X: a\r\n b\r\n\r\n",
    b"GET / HTTP/1.1\nHost: 127.0.0.1:8080\n\n",
    b"GET / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
    b"GET / HTTP/2.0\r\n" + HOST + b"\r\n",
    b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",
    b"GET / HTTP/1.1\r\nHost: user@127.0.0.1:8080\r\n\r\n",
    b"GET /%2e%2e/%2e%2e/etc/passwd HTTP/1.1\r\n" + HOST + b"\r\n",
    b"GET /..%2fetc HTTP/1.1\r\n" + HOST + b"\r\n",
    b"GET /a%5c..%5cb HTTP/1.1\r\n" + HOST + b"\r\n",
    b"GET /a%00.html HTTP/1.1\r\n" + HOST + b"\r\n",
    b"GET /.env HTTP/1.1\r\n" + HOST + b"\r\n",
    b"GET http://127.0.0.1:8080/docs/ HTTP/1.1\r\nHost: other\r\n\r\n",
    b"PUT /x HTTP/1.1\r\n" + HOST + b"Content-Length: 1\r\n\r\nx",
    b"GET / HTTP/1.1\r\n" + HOST + b"Expect: nothing\r\n\r\n",
]
# Directories (with listings on): the redirect, HTML, JSON, HEAD, tricky targets.
DIR = b"GET /pub HTTP/1.1\r\n" + HOST + b"\r\n"
DIR_QUERY = b"GET //pub?sort=name&x=%20 HTTP/1.1\r\n" + HOST + b"\r\n"
LIST = b"GET /pub/ HTTP/1.1\r\n" + HOST + b"\r\n"
LIST_HEAD = b"HEAD /pub/ HTTP/1.1\r\n" + HOST + b"\r\n"
LIST_JSON = b"GET /pub/?a=1 HTTP/1.1\r\n" + HOST + b"Accept: text/html;q=0.5, application/json\r\n\r\n"
LIST_ODD = b"GET /a%20b/caf%C3%A9%0A/ HTTP/1.1\r\n" + HOST + b"\r\n"

out = os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus")


def write(target, name, data):
    d = os.path.join(out, target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, "seed-" + name), "wb") as f:
        f.write(data)


# ----- parse: request heads -----
for i, req in enumerate([GET, HEAD, POST_CL, POST_CHUNKED, POST_EXPECT, RANGE, GZIP, COND,
                         OPTIONS, HTTP10, CLOSE] + SMUGGLE):
    write("parse", "%02d" % i, req)
write("parse", "crlf-first", b"\r\n\r\n" + GET)
write("parse", "accept-json", LIST_JSON)
write("parse", "many-headers", b"GET / HTTP/1.1\r\n" + HOST + b"".join(b"X-%d: v\r\n" % i for i in range(101)) + b"\r\n")


# ----- connection: scripts -----
# One opcode per step: the high nibble is the time that passes before the input (class
# 0: none, 3: 100 ms, 5: 999 ms, 6: 1 s, 8: 2 s, 11: a u16 of ms follows), the low
# nibble the input (see run_script in src/lib.rs).
def op(kind, t=0):
    return bytes([(t << 4) | kind])


def raw(b, t=0):
    s = b""
    while b:
        c, b = b[:199], b[199:]
        s += op(0, t) + bytes([len(c)]) + c
    return s


def canned(i, t=0):
    return op(2, t) + bytes([i])


def file_ok(length, t=0):  # the runtime opens it: len as u16, mtime = UNIX_START + 5
    return op(6, t) + bytes([0, 2]) + length.to_bytes(2, "little") + bytes([1, 5, 0])


def answer(choice, t=0):  # the runtime does what is awaited (Written if nothing else)
    return op(6, t) + bytes([choice])


def tick(ms):  # ms pass, then Timeout
    return op(4, 11) + ms.to_bytes(2, "little")


def deadline(before=False, t=0):
    return op(5, t) + bytes([1 if before else 0])


def stray_file(choice=0, t=0):
    return op(7, t) + bytes([choice, 0, 0])


def stray_upload(choice=0, t=0):
    return op(8, t) + bytes([choice])


def fs(index=False, t=0):  # the fake file system answers by the path (dir: no dot)
    return op(6, t) + bytes([0xF1 if index else 0xF0])


# A directory entry (see dir_entry in src/lib.rs): flags (bit 0 dir, bit 1 hidden, bits
# 2-4 how the name is made, bits 5-6 the size), the name, the size, the age in days.
def entry(name, is_dir=False, hidden=False, size=5, days=3):
    if isinstance(name, int):  # an index into TRICKY_NAMES
        body, kind = bytes([name]), 3
    else:
        assert len(name) < 40
        body, kind = bytes([len(name)]) + name, 0
    return bytes([int(is_dir) | int(hidden) << 1 | kind << 2 | 1 << 5]) + body + bytes([size, days])


def chars(indices, is_dir=False):  # a name from NAME_CHARS
    return bytes([int(is_dir) | 5 << 2]) + bytes([len(indices)] + indices) + bytes([0])


def listed(entries, unread=0, choice=0, t=0):  # the runtime lists the directory
    tail = b"\x00" if unread == 0 else b"\x01" + bytes([unread])
    return op(6, t) + bytes([choice, len(entries)]) + b"".join(entries) + tail


HUGE = 0x5A  # HUGE_LISTING: about 10,000 entries, past the cap


def stray_listing(choice=0):  # DirListed, awaited or not (choice 5-7: an error)
    if choice % 8 >= 5:
        return op(14) + bytes([choice])
    return op(14) + bytes([choice, 1]) + entry(b"x.txt") + b"\x00"


ENTRIES = [
    entry(b"zeta.txt"), entry(b"Alpha", is_dir=True), entry(b"beta.html", size=150),
    entry(b"secret", hidden=True), entry(b".git", is_dir=True), entry(0), entry(1),
    entry(2), entry(3), entry(11, is_dir=True), entry(16), entry(18), entry(20),
    chars([10, 11, 12, 37, 45, 49, 60, 61]), chars([0, 1, 2], is_dir=True),
]

EOF_OP = op(3)
W = op(9)  # Written
W_SLOW = op(9, 6)  # Written, 1 s later
WRITE_FAILED = op(10)
DRAIN = op(11)
CATCH_UP = op(12, 3)  # everything awaited, 100 ms apart
EMPTY = op(13)
ALREADY = 2  # upload answer: AlreadyExists
scripts = {
    "get": b"\x03" + raw(GET) + file_ok(1234, t=3) + W_SLOW,
    "head": b"\x03" + raw(HEAD) + file_ok(99) + W,
    "pipelined": b"\x03" + raw(GET + HEAD + RANGE + OPTIONS) + (file_ok(10) + W) * 3 + W,
    "pipelined-catch-up": b"\x03" + raw(GET + HEAD + RANGE + OPTIONS + POST_CL) + CATCH_UP,
    "max-requests": b"\x03" + raw(GET * 6) + (file_ok(1) + W) * 5,
    "upload-cl": b"\x03" + raw(POST_CL) + answer(0, t=5) + W,
    "upload-chunked": b"\x03" + raw(POST_CHUNKED) + answer(3) + W,
    "upload-exists": b"\x03" + raw(POST_CL) + answer(ALREADY, t=3) * 3 + answer(0) + W,
    "upload-exists-4": b"\x03" + raw(POST_CL) + answer(ALREADY) * 4 + W,
    "upload-expect": b"\x03" + raw(POST_EXPECT[:-2]) + W + tick(10) + raw(b"{}") + answer(1) + W,
    "upload-expect-unwritten": b"\x03" + raw(POST_EXPECT) + tick(10) + W + answer(0) + W,
    "gzip-variants": b"\x03" + raw(GZIP) + answer(5) + file_ok(50) + W,
    "dir": b"\x03" + raw(GET) + answer(4) + W,
    "errors": b"\x03" + raw(GET + GET + GET) + answer(5) + W + answer(6) + W + answer(7) + W,
    "cond": b"\x03" + raw(COND) + file_ok(1) + W,
    "preconditions": b"\x03" + canned(22) + file_ok(5) + W + canned(23) + file_ok(5) + W,
    "http10": b"\x03" + raw(HTTP10) + file_ok(7) + W + EOF_OP,
    "slowloris": b"\x03" + raw(GET[:5]) + tick(400) + raw(GET[5:9]) + deadline(True) + deadline() + W,
    "idle": b"\x03" + raw(GET) + file_ok(3) + W + deadline(),
    "crlf-idle": b"\x03" + raw(b"\r\n\r\n") + tick(1999) + raw(b"\r\n") + deadline(),
    "body-timeout": b"\x03" + raw(POST_CL[:-3]) + tick(1999) + deadline() + W,
    "body-trickle": b"\x03" + raw(POST_CL[:-3]) + b"".join(raw(b" ", t=7) for _ in range(3)) + deadline() + W,
    "close": b"\x03" + raw(CLOSE) + file_ok(3) + W + raw(GET),
    "write-failed": b"\x03" + raw(GET + GET) + file_ok(3) + WRITE_FAILED + raw(GET),
    "slow-write": b"\x03" + raw(GET) + file_ok(3, t=8) + tick(5000) + deadline() + W_SLOW + deadline(),
    "drain-idle": b"\x03" + raw(GET) + file_ok(3) + W + DRAIN,
    "drain-busy": b"\x03" + raw(GET + GET) + file_ok(3) + DRAIN + W + file_ok(3) + W,
    "drain-body": b"\x03" + raw(POST_CL[:-3]) + DRAIN + raw(POST_CL[-3:]) + answer(0) + W,
    "stray": b"\x03" + W + WRITE_FAILED + stray_file() + stray_upload() + raw(GET) + stray_upload()
             + W + file_ok(3) + stray_file() + W + W + EOF_OP + W + DRAIN + EMPTY,
    "small-body": b"\x00" + raw(POST_CL) + W,
    "canned": b"\x03" + b"".join(canned(i) + CATCH_UP for i in range(32)),
    "drip": b"\x03" + b"".join(raw(GET[i:i + 1], t=2) for i in range(len(GET))) + file_ok(8) + W,
    # Listings on (bit 2 of byte 0).
    "listing-redirect": b"\x07" + raw(DIR + DIR_QUERY + DIR) + fs() + W + fs() + W + answer(4) + W,
    "listing-html": b"\x07" + raw(LIST) + fs() + listed(ENTRIES, unread=7) + W,
    "listing-json": b"\x07" + raw(LIST_JSON) + fs() + listed(ENTRIES) + W,
    "listing-head": b"\x07" + raw(LIST_HEAD + LIST) + fs() + listed(ENTRIES) + W + fs() + listed(ENTRIES) + W,
    "listing-root": b"\x07" + raw(GET + LIST_ODD) + answer(5) + listed(ENTRIES[:6]) + W + answer(5) + listed([]) + W,
    "listing-index": b"\x07" + raw(LIST) + fs(index=True) + W,
    "listing-errors": b"\x07" + raw(LIST * 3) + (fs() + answer(5) + W) + (fs() + answer(6) + W) + (fs() + answer(7) + W),
    "listing-many": b"\x07" + raw(LIST) + fs() + op(6) + bytes([0, 254]) + entry(b"n") + b"\x02\xff\x01" + W,
    "listing-huge": b"\x07" + raw(LIST_JSON + LIST) + fs() + op(6) + bytes([0, HUGE, 200, 0]) + W
                    + fs() + op(6) + bytes([0, HUGE, 100, 1, 9]) + W,
    "listing-stray": b"\x07" + stray_listing() + raw(LIST) + stray_listing() + fs() + listed(ENTRIES[:3])
                     + stray_listing() + W + stray_listing(5) + EOF_OP + stray_listing(),
    # CANNED 30-37 (src/lib.rs): redirects, listings, JSON, HEAD, odd names.
    "listing-canned-a": b"\x07" + canned(30) + fs() + W + canned(31) + fs() + listed(ENTRIES) + W
                        + canned(32) + fs() + listed(ENTRIES) + W + canned(33) + fs() + listed(ENTRIES) + W
                        + canned(34) + fs() + W,
    "listing-canned-b": b"\x07" + canned(35) + fs() + W + canned(36) + fs() + W
                        + canned(37) + fs() + listed(ENTRIES, unread=1) + W,
    "listing-off": b"\x03" + raw(DIR + LIST) + fs() + W + fs() + W + stray_listing(),
}
for i, s in enumerate(SMUGGLE):
    scripts["smuggle-%02d" % i] = b"\x03" + raw(s + GET) + CATCH_UP
for name, s in scripts.items():
    write("connection", name, s)


# ----- split: flags, cuts, bytes -----
def split(data, cuts, flags=3 | 4):
    return bytes([flags, len(cuts)]) + b"".join(c.to_bytes(2, "little") for c in cuts) + data


write("split", "pipelined", split(GET + HEAD + POST_CL + RANGE, [3, 17, 40, 41, 90, 150]))
write("split", "chunked", split(POST_CHUNKED + GET, [i * 7 for i in range(15)]))
write("split", "expect", split(POST_EXPECT + OPTIONS, [60, 120, 140]))
write("split", "smuggle", split(b"".join(SMUGGLE[:4]), [20, 80, 200]))
write("split", "crlf", split(b"\r\n\r\n" + GET + b"\r\n" + CLOSE, [1, 2, 3, 30]))
write("split", "http10", split(HTTP10 + GET, [10, 20], flags=1))
for i, s in enumerate(SMUGGLE):
    write("split", "smuggle-%02d" % i, split(s + GET, [i * 5 + 1, i * 11 + 7]))


# split's fake file system answers by an FNV-1a hash of the path (split_file_answer and
# split_dir_answer in src/lib.rs): pick names it answers as a directory, and as a
# directory without index.html that lists.
def fnv(s):
    h = 0xcbf29ce484222325
    for b in s.encode():
        h = ((h ^ b) * 0x100000001b3) & 0xFFFFFFFFFFFFFFFF
    return h


names = ["d%d" % i for i in range(1000)]
is_dir = next(n for n in names if fnv(n) % 6 == 2)
lists = next(n for n in names if fnv(n + "/index.html") % 6 == 0 and fnv(n) % 8 >= 3
             and (fnv(n) >> 8) % 35 > 20)


def get(target, extra=b""):
    return b"GET " + target + b" HTTP/1.1\r\n" + HOST + extra + b"\r\n"


LISTING_ON = 3 | 4 | 8
write("split", "listing", split(get(is_dir.encode()) + get(lists.encode() + b"/")
                                + b"HEAD /" + lists.encode() + b"/ HTTP/1.1\r\n" + HOST + b"\r\n"
                                + get(lists.encode() + b"/?x", b"Accept: application/json\r\n"),
                                [5, 30, 61, 100, 140], flags=LISTING_ON))
write("split", "listing-redirect", split(get(b"//" + is_dir.encode() + b"?q=%20") + get(b"/"), [3, 9],
                                         flags=LISTING_ON))
