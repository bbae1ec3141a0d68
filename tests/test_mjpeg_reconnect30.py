"""A live MJPEG camera over http whose connection ends after the same number of frames every time
(hunt 30): its second session was taken for a file served again ("gave the same 2.00 s again after
it was reconnected to: a file rather than a live stream, so it ends here") and the run ended, exit
0, though every frame was new. The replay check compared each session's own clock, which for a
stream timed by its frames' arrival is FFmpeg's count from 0 at a guessed 25 fps: equal for any two
sessions of one length. Such a stream now reconnects as long as its reconnects allow."""
from __future__ import annotations

import http.server
import io
import threading
import time

import numpy as np
from PIL import Image

from stream_gpen.errors import SourceClosedError
from stream_gpen.io import open_source

PER = 5  # frames a connection gives before the camera drops it


def test_an_mjpeg_camera_dropping_after_a_fixed_count_keeps_reconnecting():
    count = [0]
    lock = threading.Lock()

    class Camera(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(200)
            self.send_header("Content-Type", "multipart/x-mixed-replace; boundary=frame")
            self.end_headers()
            for _ in range(PER):
                with lock:
                    i = count[0]
                    count[0] += 1
                b = io.BytesIO()
                Image.fromarray(np.full((48, 64, 3), (8 * i) % 256, np.uint8)).save(b, "JPEG")
                jpg = b.getvalue()
                self.wfile.write(b"--frame\r\nContent-Type: image/jpeg\r\nContent-Length: %d\r\n\r\n" % len(jpg)
                                 + jpg + b"\r\n")
                self.wfile.flush()
                time.sleep(0.1)

        def log_message(self, *a):
            pass

    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Camera)
    srv.daemon_threads = True
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    got = 0
    try:
        with open_source(f"http://127.0.0.1:{srv.server_address[1]}/video", timeout_s=2.0, reconnect=6) as src:
            assert src.live
            try:
                for f in src:
                    got += 1
                    f.release()
                    if got >= 4 * PER - 2:
                        break
            except SourceClosedError:
                pass
    finally:
        srv.shutdown()
    # (old: the second session, as long as the first, ended the read: at most 2 * PER frames)
    assert got >= 4 * PER - 2, (got, count[0])
