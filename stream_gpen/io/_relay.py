"""Send a stream URL's container from a child process (``rtmp://``, ``rtmps://``).

PyAV opens an output's network connection (``avio_open``) at the first packet without letting go
of the GIL and without a timeout: an RTMP server that accepts the TCP connection and never
answers the handshake froze every thread of the process for good, the signal handlers included
(SIGTERM, Ctrl-C, ``--seconds`` did nothing). So the sink muxes the FLV into a pipe, and a small
child process that imports only ``av`` copies it, packet for packet, to the URL. A child stuck in
the handshake (or any write) blocks nothing but the pipe: the sink's writer finds itself making no
progress (:data:`stream_gpen.io._sink.STREAM_STALL_S`) and the child is killed, which ends the
blocked write with a broken pipe. A server that hangs up ends the child with its error, said by
:meth:`StreamRelay.why`.
"""

from __future__ import annotations

import collections
import subprocess
import sys
import threading

#: the child: FLV from stdin, copied to argv[1] (no decoding, no re-encoding); its error on stderr
_CHILD = r"""
import sys
try:
    import av
    url, fmt = sys.argv[1], sys.argv[2]
    inp = av.open(sys.stdin.buffer, "r", format=fmt, options={"probesize": "32", "analyzeduration": "0"})
    vs = inp.streams.video[0]
    out = o = None
    for p in inp.demux(vs):
        if p.dts is None:
            continue
        if out is None:
            out = av.open(url, "w", format=fmt)
            o = out.add_stream_from_template(vs)
        p.stream = o
        out.mux(p)
    if out is not None:
        out.close()
except KeyboardInterrupt:
    sys.exit(1)
except BaseException as e:
    if isinstance(e, SystemExit):
        raise
    print(e, file=sys.stderr, flush=True)
    sys.exit(1)
"""


class StreamRelay:
    """A child process sending what is written to :attr:`pipe` (``fmt``) on to ``url``."""

    def __init__(self, url: str, fmt: str) -> None:
        self.url = url
        # (a session of its own: a Ctrl-C at the terminal reaches the parent, which finishes the
        # stream, not the child, which would cut it first)
        self.proc = subprocess.Popen([sys.executable, "-c", _CHILD, url, fmt], stdin=subprocess.PIPE,
                                     stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True)
        self.pipe = self.proc.stdin
        self._said: collections.deque[str] = collections.deque(maxlen=20)
        self._reader = threading.Thread(target=self._read, name=f"relay:{url}", daemon=True)
        self._reader.start()

    def _read(self) -> None:
        for line in self.proc.stderr:
            text = line.decode("utf-8", "replace").strip()
            if text:
                self._said.append(text)

    def why(self, wait: float = 0.0) -> str | None:
        """The child's error (its last words), once it ended; waiting up to ``wait`` s for it."""
        try:
            self.proc.wait(wait)
        except subprocess.TimeoutExpired:
            return None
        self._reader.join(0.5)
        return self._said[-1] if self._said else None

    def finish(self) -> None:
        """Close the pipe and wait for the child to send the rest (blocking: the caller bounds
        it); raise OSError with its words where it failed."""
        try:
            self.pipe.close()
        except OSError:
            pass  # (it ended already: its exit says why)
        code = self.proc.wait()
        if code:
            raise OSError(f"{self.why() or f'the sender ended with code {code}'}")

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        try:
            self.proc.wait(2)
        except subprocess.TimeoutExpired:  # pragma: no cover - a kill is not refused
            pass
