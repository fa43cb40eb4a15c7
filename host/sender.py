"""`spikefab send`: stream a recording to a UDP address at its own pace, through faery's UDP
output (`EventsStream.to_udp`), as a camera would: a stand-in for a live source.

The events are read with spikefab's reader (`events.open_recording`: every format and its
checks), cut to `--start`/`--duration`, grouped into 1 ms packets (faery's `regularize`) and each
packet is sent when the wall clock reaches its last event (`live.release`, the pacing rule of
`spikefab run --realtime`). Times are sent as recorded (µs): a receiver starts its clock at the
first event it sees.
"""

from __future__ import annotations

import argparse
import threading
from pathlib import Path

import numpy as np

from .events import open_recording
from .live import UDP_FORMATS, Clock, parse_udp, release

__all__ = ["send", "add_parser"]


def send(path, url: str, *, start_s: float = 0.0, duration_s: float | None = None,
         events_per_packet: int = 100, stop: threading.Event | None = None) -> int:
    """Send recording `path` to `url` (`udp://HOST:PORT[?format=...]`) in real time; return the
    events sent. `start_s`/`duration_s` cut a slice, in seconds from the first event."""
    import faery
    address = parse_udp(url)
    recording = open_recording(path)
    events = recording.read()
    if len(events):
        t = events["t"].astype(np.int64) - int(events["t"][0])
        end = np.inf if duration_s is None else (start_s + duration_s) * 1e6
        events = events[(t >= start_s * 1e6) & (t < end)]
    if not len(events):
        raise ValueError(f"{path}: no events in the slice to send")
    stop, clock = stop or threading.Event(), Clock()

    def paced(packet):
        if len(packet) and not release(clock, packet, stop):
            raise KeyboardInterrupt
        return packet

    # faery's dtype is spikefab's with a title on `on`: same layout, a view converts.
    stream = faery.events_stream_from_array(events.view(faery.EVENTS_DTYPE),
                                            (recording.width, recording.height))
    stream.regularize(frequency_hz=1000).map(paced).to_udp(
        address.socket_address, events_per_packet=events_per_packet, format=address.format)
    return len(events)


def _send(args) -> int:
    count = send(args.recording, args.address, start_s=args.start, duration_s=args.duration,
                 events_per_packet=args.packet)
    print(f"send:      {count} events of {args.recording} sent to {args.address}")
    return 0


def add_parser(subparsers) -> None:
    """Add the `send` command to the `spikefab` CLI's subparsers."""
    p = subparsers.add_parser(
        "send", help="stream a recording to udp://HOST:PORT in real time (faery's UDP output)",
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("recording", type=Path, help="event file (any format `spikefab run` reads)")
    p.add_argument("address", help="udp://HOST:PORT[?format=" + "|".join(UDP_FORMATS) + "]")
    p.add_argument("--start", type=float, default=0.0, metavar="S",
                   help="skip this many seconds from the first event (default 0)")
    p.add_argument("--duration", type=float, metavar="S", help="send only this many seconds")
    p.add_argument("--packet", type=int, default=100, metavar="N",
                   help="events per UDP datagram (default 100, faery's)")
    p.set_defaults(func=_send)
