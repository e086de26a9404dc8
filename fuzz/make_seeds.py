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
write("parse", "many-headers", b"GET / HTTP/1.1\r\n" + HOST + b"".join(b"X-%d: v\r\n" % i for i in range(101)) + b"\r\n")


# ----- connection: scripts -----
def raw(b):
    s = b""
    while b:
        c, b = b[:199], b[199:]
        s += bytes([0, len(c)]) + c
    return s


def canned(i):
    return bytes([3, i])


def file_ok(length):  # answer: opened, len as u16, mtime = UNIX_START + 5
    return bytes([7, 0, 2]) + length.to_bytes(2, "little") + bytes([1, 5, 0])


def answer(choice):
    return bytes([7, choice])


def tick(ms):
    return bytes([4]) + ms.to_bytes(2, "little")


def deadline(before=False):
    return bytes([5, 1 if before else 0])


EOF_OP = bytes([6])
scripts = {
    "get": b"\x03" + raw(GET) + file_ok(1234),
    "head": b"\x03" + raw(HEAD) + file_ok(99),
    "pipelined": b"\x03" + raw(GET + HEAD + RANGE + OPTIONS) + file_ok(10) + file_ok(10) + file_ok(10),
    "max-requests": b"\x03" + raw(GET * 6) + file_ok(1) * 5,
    "upload-cl": b"\x03" + raw(POST_CL) + answer(0),
    "upload-chunked": b"\x03" + raw(POST_CHUNKED) + answer(2),
    "upload-expect": b"\x03" + raw(POST_EXPECT[:-2]) + tick(10) + raw(b"{}") + answer(3),
    "gzip-variants": b"\x03" + raw(GZIP) + answer(5) + file_ok(50),
    "dir": b"\x03" + raw(GET) + answer(4),
    "errors": b"\x03" + raw(GET + GET + GET) + answer(5) + answer(6) + answer(7),
    "cond": b"\x03" + raw(COND) + file_ok(1),
    "http10": b"\x03" + raw(HTTP10) + file_ok(7) + EOF_OP,
    "slowloris": b"\x03" + raw(GET[:5]) + tick(400) + raw(GET[5:9]) + deadline(True) + deadline(),
    "idle": b"\x03" + raw(GET) + file_ok(3) + deadline(),
    "body-timeout": b"\x03" + raw(POST_CL[:-3]) + tick(1999) + deadline(),
    "close": b"\x03" + raw(CLOSE) + file_ok(3) + raw(GET),
    "small-body": b"\x00" + raw(POST_CL),
    "canned": b"\x03" + b"".join(canned(i) + answer(i) for i in range(24)),
    "drip": b"\x03" + b"".join(raw(GET[i:i + 1]) for i in range(len(GET))) + file_ok(8),
}
for i, s in enumerate(SMUGGLE):
    scripts["smuggle-%02d" % i] = b"\x03" + raw(s + GET) + answer(0)
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
