#!/usr/bin/env python3
"""tests/http_range_server.py: a static file server on 127.0.0.1 for the remote-raster
tests of `samc mosaic` (GDAL's /vsicurl/ reads a GeoTIFF through HTTP range requests).

  http_range_server.py ROOT PORTFILE [--seconds S]

Serves ROOT on a free port of 127.0.0.1, written to PORTFILE once listening. GET and
HEAD with one "Range: bytes=a-b" answer 206 with that slice (what GDAL needs). While
the file ROOT/.fail exists every request gets 503 (a network failure on demand). Stops
by itself after S seconds (default 300) so that a test that dies leaves nothing behind.
"""
import http.server
import os
import re
import sys
import threading


class Handler(http.server.BaseHTTPRequestHandler):
    root = "."

    def log_message(self, fmt, *args):
        pass

    def _serve(self, body):
        if os.path.exists(os.path.join(self.root, ".fail")):
            self.send_error(503, "failing on purpose")
            return
        path = os.path.join(self.root, self.path.split("?")[0].lstrip("/"))
        if not os.path.isfile(path):
            self.send_error(404)
            return
        size = os.path.getsize(path)
        m = re.match(r"bytes=(\d+)-(\d*)$", self.headers.get("Range", ""))
        a, b = 0, size - 1
        if m:
            a = int(m.group(1))
            b = min(int(m.group(2)) if m.group(2) else size - 1, size - 1)
            if a >= size:
                self.send_error(416)
                return
        self.send_response(206 if m else 200)
        self.send_header("Accept-Ranges", "bytes")
        self.send_header("Content-Length", str(b - a + 1))
        if m:
            self.send_header("Content-Range", "bytes %d-%d/%d" % (a, b, size))
        self.end_headers()
        if body:
            with open(path, "rb") as f:
                f.seek(a)
                self.wfile.write(f.read(b - a + 1))

    def do_GET(self):
        self._serve(True)

    def do_HEAD(self):
        self._serve(False)


def main():
    root, portfile = sys.argv[1], sys.argv[2]
    seconds = float(sys.argv[4]) if len(sys.argv) > 4 and sys.argv[3] == "--seconds" else 300.0
    Handler.root = root
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    with open(portfile + ".tmp", "w") as f:
        f.write(str(srv.server_address[1]))
    os.rename(portfile + ".tmp", portfile)
    threading.Timer(seconds, srv.shutdown).start()
    srv.serve_forever()


if __name__ == "__main__":
    main()
