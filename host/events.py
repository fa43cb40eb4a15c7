"""Read event-camera recordings in chunks, through maintained readers.

    rec = open_recording("walk.aedat4")          # checks the file, reads its header
    rec.width, rec.height, rec.format
    for chunk in rec.chunks():                   # structured arrays, EVENTS_DTYPE
        ...                                      # memory stays bounded by one chunk

Formats (chosen by extension): AEDAT4 `.aedat4`, Prophesee EVT 2.0/3.0 `.raw`, DAT `.dat`,
Event Stream `.es`, CSV `.csv` (header `t,x,y,on`) — all read by faery (its Rust decoders stream
a file packet by packet) — Prophesee EVT 2.1 `.raw` (read here, `host/evt21.py`: faery 0.7.1
cannot), NumPy `.npy` (a structured array with fields t, x, y and on or p, memory-mapped and
read in slices) and the N-MNIST / N-Caltech101 `.bin` format (read here: tonic's reader drags
in librosa, numba and scikit-learn). Times are microseconds; EVT/DAT times include the header's
`% t0`. Rows count from the top: Event Stream counts them from the bottom, so its y is flipped
(y = height - 1 - y_file), and its ATIS exposure (threshold-crossing) events are dropped and
counted in `Recording.dropped`.

The sensor size comes from the header; `open_recording(..., dimensions=(w, h))` overrides it,
and a file without one (CSV/NPY/N-MNIST, EVT/DAT without a geometry line) gets the extent of its
events (one extra pass); `Recording.size_source` says which. Nothing is allocated in proportion
to the size a header claims.

Every problem with a file raises `EventFileError`, a one-line message that names the file: it
does not exist, the extension is unknown, the header is missing or bad, the file is truncated or
corrupt, not the format its extension says, an event lies outside the sensor, or time runs
backwards.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

__all__ = ["EVENTS_DTYPE", "EventFileError", "Recording", "open_recording", "FORMATS",
           "write_recording"]

#: The event record every reader returns: time (µs), column, row, polarity (True = ON).
EVENTS_DTYPE = np.dtype([("t", "<u8"), ("x", "<u2"), ("y", "<u2"), ("on", "?")])
#: Extension -> format name.
FORMATS = {".aedat4": "AEDAT4", ".raw": "EVT", ".dat": "DAT", ".es": "ES", ".csv": "CSV",
           ".npy": "NPY", ".bin": "N-MNIST"}
#: N-MNIST `.bin`: 5 bytes per record, x (8 bits), y (8), polarity (1, ON = 1), time (23 bits,
#: µs); a record with y = 240 is not an event but adds 2**13 µs to every later time.
NMNIST_RECORD = 5
NMNIST_OVERFLOW_Y = 240
NMNIST_OVERFLOW_US = 1 << 13
NPY_CHUNK = 1 << 18


class EventFileError(ValueError):
    """A recording cannot be read; the message names the file and the problem."""

    def __init__(self, path, problem: str):
        super().__init__(f"{path}: {problem}")
        self.path, self.problem = path, problem


@dataclass
class Recording:
    """An opened recording: its format and sensor size; `chunks()` reads it.

    `size_source`: where width and height came from ("header", "dimensions" or "events": the
    extent of the events). `dropped`: events the reader read but does not return, by kind
    (e.g. "ATIS exposure"), counted during the last pass of `chunks()`. `conventions`: how the
    reader changed the file's own conventions (e.g. the ES y flip), "" if not at all.
    """
    path: Path
    format: str
    width: int
    height: int
    _reader: object = None
    size_source: str = "header"
    dropped: dict = field(default_factory=dict)
    conventions: str = ""

    def describe(self) -> str:
        """One line: format, size and where the size came from, conventions."""
        source = {"header": "", "dimensions": " from --dimensions",
                  "events": " inferred from the events (the file gives no sensor size; "
                            "--dimensions WxH sets it)"}[self.size_source]
        extra = f"; {self.conventions}" if self.conventions else ""
        return f"{self.format}, {self.width}x{self.height}{source}{extra}"

    def check(self) -> None:
        """Decode the first chunk: raise `EventFileError` if that fails or there are no events."""
        for _ in self.chunks():
            return
        raise EventFileError(self.path, "no events in the file")

    def chunks(self):
        """Yield the events as EVENTS_DTYPE arrays, in time order, one bounded chunk at a time.

        Raises `EventFileError` on a corrupt or truncated file, an event outside the sensor, or
        a timestamp smaller than the one before it.
        """
        last_t, count = 0, 0
        self.dropped.clear()
        for chunk in self._reader(self.dropped):
            if not len(chunk):
                continue
            chunk = _as_events(chunk)
            bad = (chunk["x"] >= self.width) | (chunk["y"] >= self.height)
            if bad.any():
                k = int(np.argmax(bad))
                raise EventFileError(self.path, f"event {count + k} at x={chunk['x'][k]}, "
                                     f"y={chunk['y'][k]} lies outside the {self.width}x"
                                     f"{self.height} sensor (corrupt file or wrong dimensions)")
            t = chunk["t"]
            back = np.flatnonzero(np.diff(t.astype(np.int64), prepend=np.int64(last_t)) < 0)
            if back.size:
                k = int(back[0])
                raise EventFileError(self.path, f"time runs backwards at event {count + k} "
                                     f"({t[k]} us after {last_t if k == 0 else t[k - 1]} us)")
            last_t = int(t[-1])
            count += len(chunk)
            yield chunk

    def read(self) -> np.ndarray:
        """All events at once (small files only)."""
        parts = list(self.chunks())
        return np.concatenate(parts) if parts else np.zeros(0, EVENTS_DTYPE)


def _as_events(chunk) -> np.ndarray:
    out = np.empty(len(chunk), EVENTS_DTYPE)
    names = chunk.dtype.names
    out["t"], out["x"], out["y"] = chunk["t"], chunk["x"], chunk["y"]
    out["on"] = chunk["on"] if "on" in names else chunk["p"] != 0
    return out


def open_recording(path, *, dimensions: tuple[int, int] | None = None) -> Recording:
    """Open `path`; `dimensions` (width, height) overrides the sensor size of the header. A file
    that gives none (CSV without `x@W`, NPY, N-MNIST, EVT/DAT without a geometry line) without
    `dimensions` gets the extent of its events (one extra pass over the file)."""
    path = Path(path)
    if not path.exists():
        raise EventFileError(path, "no such file")
    if not path.is_file():
        raise EventFileError(path, "not a file")
    fmt = FORMATS.get(path.suffix.lower())
    if fmt is None:
        raise EventFileError(path, f"unknown recording format {path.suffix or '(none)'!r}; "
                             f"known: {', '.join(FORMATS)}")
    if path.stat().st_size == 0:
        raise EventFileError(path, "empty file")
    if fmt == "NPY":
        rec = _open_npy(path)
    elif fmt == "N-MNIST":
        rec = _open_nmnist(path)
    elif fmt == "ES":
        rec = _open_es(path)
    elif fmt in ("EVT", "DAT"):
        rec = _open_prophesee(path, fmt, dimensions)
    else:
        rec = _open_faery(path, fmt)
    if dimensions is not None:
        rec.width, rec.height = (int(d) for d in dimensions)
        rec.size_source = "dimensions"
    elif rec.width == 0:
        rec.width, rec.height = _extent(rec)
        rec.size_source = "events"
    return rec


def _faery_error(path, fmt, exc) -> EventFileError:
    message = str(exc).strip() or type(exc).__name__
    if "fill whole buffer" in message or "end of file" in message.lower():
        return EventFileError(path, f"truncated or corrupt {fmt} file ({message})")
    return EventFileError(path, f"cannot read as {fmt}: {message}")


def _guarded(path, fmt, make):
    """Call `make()` turning faery's exceptions (RuntimeError, pyo3's PanicException, which is a
    BaseException) into `EventFileError`."""
    try:
        return make()
    except BaseException as exc:
        if isinstance(exc, (KeyboardInterrupt, SystemExit, EventFileError)):
            raise
        raise _faery_error(path, fmt, exc) from None


def _guarded_iter(path, fmt, make):
    """Iterate `make()`, turning faery's exceptions into `EventFileError`."""
    iterator = iter(_guarded(path, fmt, make))
    while True:
        chunk = _guarded(path, fmt, lambda: next(iterator, None))
        if chunk is None:
            return
        yield chunk


def _open_faery(path: Path, fmt: str, fallback=(65535, 65535)) -> Recording:
    """Any format faery reads; `fallback` is the size faery assumes when the header has none."""
    import faery

    def stream():
        # CSV: faery's default CSV layout is t,x,y,on with a header line.
        return faery.events_stream_from_file(path, dimensions_fallback=tuple(fallback))

    width, height = _guarded(path, fmt, lambda: stream().dimensions())
    if fmt == "CSV":
        width, height = _csv_dimensions(path)
    return Recording(path, fmt, int(width), int(height),
                     lambda dropped: _guarded_iter(path, fmt, stream))


def _open_prophesee(path: Path, fmt: str, dimensions) -> Recording:
    """EVT 2.0/3.0 and DAT through faery, EVT 2.1 here; the size only from the header."""
    header = _prophesee_header(path, fmt)
    if header.version == "2.1":
        rec = _open_evt21(path, header)
    else:
        rec = _open_faery(path, fmt, fallback=dimensions or (65535, 65535))
    if header.size is None:
        rec.width = rec.height = 0            # faery's fallback is not a size
    rec.format = "DAT" if fmt == "DAT" else f"EVT {header.version}"
    return rec


def _open_evt21(path: Path, header) -> Recording:
    from .evt21 import Evt21State, decode_words
    words = np.memmap(path, dtype="<u8", mode="r", offset=header.body)

    def reader(dropped):
        state = Evt21State(header.t0)
        for i in range(0, len(words), NPY_CHUNK // 8):
            try:
                t, x, y, on = decode_words(np.asarray(words[i:i + NPY_CHUNK // 8]), state,
                                           legacy=header.legacy)
            except ValueError as exc:
                raise EventFileError(path, f"corrupt EVT 2.1 file: {exc}") from None
            for kind, n in state.skipped.items():
                if n:
                    dropped[f"EVT 2.1 {kind} words"] = n
            events = np.empty(len(t), EVENTS_DTYPE)
            events["t"], events["x"], events["y"], events["on"] = t, x, y, on
            yield events

    width, height = header.size or (0, 0)
    return Recording(path, "EVT 2.1", width, height, reader)


def _open_es(path: Path) -> Recording:
    """Event Stream through faery's decoder, with the y flip and the exposure drop done (and
    counted) here: faery's own reader does both silently."""
    from faery.file_decoder import es

    def decoder():
        return es.Decoder(path=path, t0=0)

    with _guarded(path, "ES", decoder) as d:
        kind, size = d.event_type, d.dimensions
    if kind not in ("dvs", "atis"):
        raise EventFileError(path, f"ES files of type {kind!r} hold no camera events (dvs or "
                             f"atis expected)")
    height = int(size[1])

    def reader(dropped):
        for chunk in _guarded_iter(path, "ES", decoder):
            if kind == "atis":
                exposure = chunk["exposure"]
                dropped["ATIS exposure"] = dropped.get("ATIS exposure", 0) + \
                    int(np.count_nonzero(exposure))
                chunk = chunk[~exposure]
            events = np.empty(len(chunk), EVENTS_DTYPE)
            events["t"], events["x"] = chunk["t"], chunk["x"]
            events["y"] = height - 1 - chunk["y"].astype(np.int64)
            events["on"] = chunk["on"] if kind == "dvs" else chunk["polarity"]
            yield events

    return Recording(path, "ES", int(size[0]), height, reader,
                     conventions="y flipped (Event Stream counts rows from the bottom)")


def _csv_dimensions(path: Path) -> tuple[int, int]:
    """faery writes the sensor size into the CSV header (`t,x@128,y@100,on`); 0, 0 if absent."""
    with open(path, "rb") as f:
        header = f.readline(4096).decode("latin-1").strip().split(",")
    if len(header) != 4 or header[0] != "t":
        raise EventFileError(path, f"CSV events need a header line t,x,y,on, not "
                             f"{','.join(header)[:40]!r}")
    try:
        return int(header[1].split("@")[1]), int(header[2].split("@")[1])
    except (IndexError, ValueError):
        return 0, 0


@dataclass
class _PropheseeHeader:
    version: str                        # "2.0", "2.1", "3.0" (EVT) or "DAT"
    size: tuple[int, int] | None        # None: the header gives no geometry
    t0: int                             # `% t0`, µs
    body: int                           # offset of the first event word
    legacy: bool                        # EVT 2.1 with swapped 32-bit halves


WORD = {"2.0": 4, "2.1": 8, "3.0": 2, "DAT": 8}
EVT_NAMES = {"2": "2.0", "2.0": "2.0", "21": "2.1", "2.1": "2.1", "3": "3.0", "3.0": "3.0"}


def _prophesee_header(path: Path, fmt: str) -> _PropheseeHeader:
    """Parse the `%` lines of an EVT or DAT file (`% evt 2.1`, `% format EVT21;height=..;
    width=..`, `% geometry WxH`, DAT's `% Width`/`% Height`, `% t0`); the event words that
    follow must fill whole words (2 bytes EVT3, 4 EVT2, 8 EVT 2.1 and DAT), or the file was cut
    short."""
    with open(path, "rb") as f:
        head = f.read(1 << 16)
    if not head.startswith(b"%"):
        raise EventFileError(path, f"not a {fmt} file: no '%' header (first bytes "
                             f"{head[:12]!r})")
    fields, offset = {}, 0
    while offset < len(head) and head[offset:offset + 1] == b"%":
        end = head.find(b"\n", offset)
        if end < 0:
            raise EventFileError(path, f"truncated {fmt} header")
        key, _, value = head[offset + 1:end].decode("latin-1").strip().partition(" ")
        fields[key.lower()] = value.strip()
        offset = end + 1
    fmt_name, *options = fields.get("format", "").lower().split(";")
    options = dict(o.partition("=")[::2] for o in options)
    if fmt == "DAT":
        offset += 2                          # event type and size bytes after the header
        version = "DAT"
    else:
        version = EVT_NAMES.get(fields.get("evt", "").lower()) or \
            EVT_NAMES.get(fmt_name.removeprefix("evt"))
        if version is None:
            raise EventFileError(path, "unknown EVT version in the header (expected EVT 2.0, "
                                 "2.1 or 3.0)")
    body = path.stat().st_size - offset
    if body < 0 or body % WORD[version]:
        raise EventFileError(path, f"truncated {fmt} file: {body} data bytes is not a whole "
                             f"number of {WORD[version]}-byte words")
    try:
        t0 = int(fields.get("t0", "0") or 0)
    except ValueError:
        raise EventFileError(path, f"bad t0 in the header: {fields['t0']!r}") from None
    return _PropheseeHeader(version, _header_size(path, fields, options), t0, offset,
                            options.get("endianness") == "legacy")


def _header_size(path, fields: dict, options: dict) -> tuple[int, int] | None:
    """The geometry from `% geometry WxH`, the format line's width/height or DAT's `% Width`."""
    texts = [fields["geometry"].lower().split("x")] if "geometry" in fields else []
    texts.append([options.get("width"), options.get("height")])
    texts.append([fields.get("width"), fields.get("height")])
    for width, height in (t for t in texts if len(t) == 2 and None not in t):
        try:
            return int(width), int(height)
        except ValueError:
            raise EventFileError(path, f"bad sensor size {width}x{height} in the "
                                 f"header") from None
    return None


def _open_npy(path: Path) -> Recording:
    with open(path, "rb") as f:
        magic = f.read(6)
    if magic != b"\x93NUMPY":
        raise EventFileError(path, f"not an NPY file (NPY files start with b'\\x93NUMPY', this "
                             f"one with {magic!r})")
    try:
        array = np.load(path, mmap_mode="r", allow_pickle=False)
    except (ValueError, OSError, EOFError) as exc:
        raise EventFileError(path, f"cannot read as NPY: {exc}") from None
    names = array.dtype.names or ()
    if not {"t", "x", "y"} <= set(names) or not ({"on", "p"} & set(names)):
        raise EventFileError(path, f"NPY events need a structured array with fields t, x, y and "
                             f"on (or p); this one has dtype {array.dtype}")

    def reader(dropped):
        for i in range(0, len(array), NPY_CHUNK):
            yield np.asarray(array[i:i + NPY_CHUNK])

    return Recording(path, "NPY", 0, 0, reader)


def _open_nmnist(path: Path) -> Recording:
    size = path.stat().st_size
    if size % NMNIST_RECORD:
        raise EventFileError(path, f"truncated N-MNIST file: {size} bytes is not a whole number "
                             f"of {NMNIST_RECORD}-byte records")
    raw = np.memmap(path, dtype=np.uint8, mode="r").reshape(-1, NMNIST_RECORD)

    def reader(dropped):
        offset = 0                     # µs added by the overflow records seen so far
        for i in range(0, len(raw), NPY_CHUNK):
            chunk = np.asarray(raw[i:i + NPY_CHUNK]).astype(np.uint64)
            overflow = chunk[:, 1] == NMNIST_OVERFLOW_Y
            time = ((chunk[:, 2] & 0x7F) << 16) | (chunk[:, 3] << 8) | chunk[:, 4]
            # Each overflow record shifts itself and everything after it.
            time += offset + NMNIST_OVERFLOW_US * np.cumsum(overflow, dtype=np.uint64)
            offset += NMNIST_OVERFLOW_US * int(overflow.sum())
            keep = ~overflow
            events = np.empty(int(keep.sum()), EVENTS_DTYPE)
            events["t"], events["x"], events["y"] = time[keep], chunk[keep, 0], chunk[keep, 1]
            events["on"] = (chunk[keep, 2] & 0x80) != 0
            yield events

    return Recording(path, "N-MNIST", 0, 0, reader)


def _extent(rec: Recording) -> tuple[int, int]:
    width = height = 0
    for chunk in rec._reader({}):
        if len(chunk):
            width = max(width, int(chunk["x"].max()) + 1)
            height = max(height, int(chunk["y"].max()) + 1)
    if not width:
        raise EventFileError(rec.path, "no events")
    return width, height


def write_recording(path, events: np.ndarray, dimensions: tuple[int, int]) -> Path:
    """Write `events` (EVENTS_DTYPE, time-ordered) through faery; the format follows the
    extension (`.aedat4`, `.raw` = EVT3, `.dat`, `.es`, `.csv`), `.npy` through NumPy.

    EVT and DAT files get times relative to the first event plus a `% t0` header line (faery's
    `zero_t0`), so they read back exactly and stay small; AEDAT4, CSV and NPY keep the times as
    they are; Event Stream has no t0 field, so its times start at 0 (the first event).
    """
    import faery
    path = Path(path)
    if path.suffix.lower() == ".npy":
        np.save(path, np.asarray(events, EVENTS_DTYPE))
        return path
    array = np.zeros(len(events), faery.EVENTS_DTYPE)
    for name in ("t", "x", "y", "on"):
        array[name] = events[name]
    version = "evt3" if path.suffix.lower() == ".raw" else None
    faery.events_stream_from_array(array, dimensions=tuple(dimensions)).to_file(
        path, version=version, zero_t0=True)
    return path
