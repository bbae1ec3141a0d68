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

A child must not outlive its parent either: one blocked in the handshake when its parent was killed
(``kill -9``, nothing closes the child there) stayed blocked for good, reparented to init. FFmpeg's
``rw_timeout`` would bound it, but PyAV opens an output's connection without options. So on Linux the
child asks the kernel for a SIGKILL when its parent goes (``PR_SET_PDEATHSIG``), and everywhere it
has an alarm (SIGALRM's default action ends it, GIL or not) armed while it waits on the server: a
server that takes nothing for :data:`RELAY_STALL_S` ends it, far past when a living parent gives up
on the stream (:data:`stream_gpen.io._sink.STREAM_STALL_S`).
"""

from __future__ import annotations

import collections
import os
import signal
import subprocess
import sys
import threading

#: seconds the child waits on the server (the handshake, a write) before it ends itself: what bounds
#: it where its parent died and nothing else can (a living parent gives up far sooner)
RELAY_STALL_S = 30

#: the child: FLV from stdin, copied to argv[1] (no decoding, no re-encoding); its error on stderr
_CHILD = r"""
import os, signal, sys
url, fmt, parent, stall = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
if parent:
    try:  # (PR_SET_PDEATHSIG = 1: the parent's death, a kill -9 too, sends this SIGKILL)
        import ctypes
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)
    except (OSError, AttributeError):
        pass
    if os.getppid() != parent:  # (it died before that)
        sys.exit(1)
alarm = getattr(signal, "alarm", lambda s: 0)  # (no SIGALRM on Windows)
try:
    import av
    # (raw stdin: a buffered read waits for a whole buffer, seconds of a small stream; probesize 32:
    # FLV names its streams in its header flags, no more probing is needed, which waited 1.5 s)
    inp = av.open(sys.stdin.buffer.raw, "r", format=fmt, options={"probesize": "32", "analyzeduration": "0"})
    out, outs, held, seen = None, {}, [], set()

    def send(packets):
        alarm(stall)  # (the server's part, bounded: waiting on stdin is not)
        for q in packets:
            o = outs.get(q.stream.index)
            if o is not None:  # (a stream the FLV header did not name, or that came too late)
                q.stream = o
                out.mux(q)
        alarm(0)

    def start():
        global out, outs
        alarm(stall)  # (disarmed once send() has the first packets through)
        out = av.open(url, "w", format=fmt)
        # (a stream is known by its first packet: an AAC track's configuration comes with it)
        outs = {s.index: out.add_stream_from_template(s) for s in inp.streams if s.index in seen}
        for s in inp.streams:
            o = outs.get(s.index)
            if o is None or s.type != "video" or o.codec_context.width:
                continue
            # FLV gives the picture size in its metadata, read before the stream exists: taken
            # from the first pictures (FFmpeg refuses to write a video stream without one)
            dec = av.CodecContext.create(s.codec_context.name, "r")
            dec.extradata = s.codec_context.extradata
            pics = []
            try:
                for q in held:
                    if q.stream.index == s.index:
                        pics += dec.decode(av.Packet(bytes(q)))
                pics += dec.decode(None)
            except av.error.FFmpegError:
                pass
            if pics:
                o.codec_context.width, o.codec_context.height = pics[0].width, pics[0].height

    for p in inp.demux():
        if p.dts is None:
            continue
        if out is not None:
            send([p])
            continue
        held.append(p)
        seen.add(p.stream.index)
        if {s.index for s in inp.streams} <= seen or len(held) >= 300:
            start()
            send(held)
            held = []
    if out is None and held:
        start()
        send(held)
    if out is not None:
        alarm(stall)
        out.close()
except KeyboardInterrupt:
    sys.exit(1)
except BaseException as e:
    if isinstance(e, SystemExit):
        raise
    print(getattr(e, "strerror", None) or e, file=sys.stderr, flush=True)  # (its words, not the URL)
    sys.exit(1)
"""


class StreamRelay:
    """A child process sending what is written to :attr:`pipe` (``fmt``) on to ``url``."""

    def __init__(self, url: str, fmt: str) -> None:
        self.url = url
        # (the kernel's parent-death signal follows the thread that started the child, not the
        # process: asked for only from the main thread, which lasts as long as the process)
        watch = sys.platform.startswith("linux") and threading.current_thread() is threading.main_thread()
        args = [url, fmt, str(os.getpid() if watch else 0), str(RELAY_STALL_S)]
        # (a session of its own: a Ctrl-C at the terminal reaches the parent, which finishes the
        # stream, not the child, which would cut it first)
        self.proc = subprocess.Popen([sys.executable, "-c", _CHILD, *args], stdin=subprocess.PIPE,
                                     stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True,
                                     creationflags=getattr(subprocess, "CREATE_NEW_PROCESS_GROUP", 0),
                                     bufsize=0)  # (each packet goes on as FFmpeg writes it)
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
        if self._said:
            return self._said[-1]
        if hasattr(signal, "SIGALRM") and self.proc.returncode == -signal.SIGALRM:  # (its alarm: no words)
            return f"the server took nothing for {RELAY_STALL_S} s"
        return None

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
