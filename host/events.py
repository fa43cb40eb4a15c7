"""Read event-camera recordings in chunks, through maintained readers.

    rec = open_recording("walk.aedat4")          # checks the file, reads its header
    rec.width, rec.height, rec.format
    for chunk in rec.chunks():                   # structured arrays, EVENTS_DTYPE
        ...                                      # memory stays bounded by one chunk

Formats (chosen by extension): AEDAT4 `.aedat4`, Prophesee EVT2/EVT3 `.raw`, DAT `.dat`,
Event Stream `.es`, CSV `.csv` (header `t,x,y,on`) — all read by faery (its Rust decoders stream
a file packet by packet) — NumPy `.npy` (a structured array with fields t, x, y and on or p,
memory-mapped and read in slices) and the N-MNIST / N-Caltech101 `.bin` format (read here:
tonic's reader drags in librosa, numba and scikit-learn). Times are microseconds; for EVT/DAT
files they count from the header's `% t0` (faery's convention).

Every problem with a file raises `EventFileError`, a one-line message that names the file: it
does not exist, the extension is unknown, the header is missing or bad, the file is truncated or
corrupt, an event lies outside the sensor, or time runs backwards.
"""

from __future__ import annotations

from dataclasses import dataclass
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
    """An opened recording: its format and sensor size; `chunks()` reads it."""
    path: Path
    format: str
    width: int
    height: int
    _reader: object = None

    def chunks(self):
        """Yield the events as EVENTS_DTYPE arrays, in time order, one bounded chunk at a time.

        Raises `EventFileError` on a corrupt or truncated file, an event outside the sensor, or
        a timestamp smaller than the one before it.
        """
        last_t, count = 0, 0
        for chunk in self._reader():
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
    """Open `path`; `dimensions` (width, height) is needed only when the file does not say
    (CSV, NPY): without it the sensor is taken as just large enough for the events (one extra
    pass over the file)."""
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
    else:
        rec = _open_faery(path, fmt)
    if dimensions is not None:
        rec.width, rec.height = (int(d) for d in dimensions)
    elif rec.width == 0:
        rec.width, rec.height = _extent(rec)
    return rec


def _faery_error(path, fmt, exc) -> EventFileError:
    message = str(exc).strip() or type(exc).__name__
    if "fill whole buffer" in message or "end of file" in message.lower():
        return EventFileError(path, f"truncated or corrupt {fmt} file ({message})")
    return EventFileError(path, f"cannot read as {fmt}: {message}")


def _open_faery(path: Path, fmt: str) -> Recording:
    import faery
    if fmt in ("EVT", "DAT"):
        _check_prophesee_header(path, fmt)

    def stream():
        # CSV: faery's default CSV layout is t,x,y,on with a header line.
        try:
            return faery.events_stream_from_file(path, dimensions_fallback=(65535, 65535))
        except BaseException as exc:       # faery raises RuntimeError, pyo3 PanicException
            if isinstance(exc, (KeyboardInterrupt, SystemExit)):
                raise
            raise _faery_error(path, fmt, exc) from None

    width, height = stream().dimensions()
    if fmt == "CSV":
        width, height = _csv_dimensions(path)

    def reader():
        iterator = iter(stream())
        while True:
            try:
                chunk = next(iterator)
            except StopIteration:
                return
            except BaseException as exc:
                if isinstance(exc, (KeyboardInterrupt, SystemExit)):
                    raise
                raise _faery_error(path, fmt, exc) from None
            yield chunk

    return Recording(path, fmt, int(width), int(height), reader)


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


def _check_prophesee_header(path: Path, fmt: str):
    """EVT and DAT files start with `%` header lines; the event words that follow must fill
    whole words (2 bytes EVT3, 4 EVT2, 8 DAT), or the file was cut short."""
    with open(path, "rb") as f:
        head = f.read(1 << 16)
    if not head.startswith(b"%"):
        raise EventFileError(path, f"not a {fmt} file: no '%' header (first bytes "
                             f"{head[:12]!r})")
    lines, offset = [], 0
    while offset < len(head) and head[offset:offset + 1] == b"%":
        end = head.find(b"\n", offset)
        if end < 0:
            raise EventFileError(path, f"truncated {fmt} header")
        lines.append(head[offset:end].decode("latin-1"))
        offset = end + 1
    header = " ".join(lines).lower()
    if fmt == "DAT":
        offset += 2                          # event type and size bytes after the header
        word = 8
    elif "evt 3" in header or "evt3" in header:
        word = 2
    elif "evt 2" in header or "evt2" in header:
        word = 4
    else:
        raise EventFileError(path, "unknown EVT version in the header (expected EVT 2.0, "
                             "2.1 or 3.0)")
    body = path.stat().st_size - offset
    if body < 0 or body % word:
        raise EventFileError(path, f"truncated {fmt} file: {body} data bytes is not a whole "
                             f"number of {word}-byte words")


def _open_npy(path: Path) -> Recording:
    try:
        array = np.load(path, mmap_mode="r", allow_pickle=False)
    except (ValueError, OSError, EOFError) as exc:
        raise EventFileError(path, f"cannot read as NPY: {exc}") from None
    names = array.dtype.names or ()
    if not {"t", "x", "y"} <= set(names) or not ({"on", "p"} & set(names)):
        raise EventFileError(path, f"NPY events need a structured array with fields t, x, y and "
                             f"on (or p); this one has dtype {array.dtype}")

    def reader():
        for i in range(0, len(array), NPY_CHUNK):
            yield np.asarray(array[i:i + NPY_CHUNK])

    return Recording(path, "NPY", 0, 0, reader)


def _open_nmnist(path: Path) -> Recording:
    size = path.stat().st_size
    if size % NMNIST_RECORD:
        raise EventFileError(path, f"truncated N-MNIST file: {size} bytes is not a whole number "
                             f"of {NMNIST_RECORD}-byte records")
    raw = np.memmap(path, dtype=np.uint8, mode="r").reshape(-1, NMNIST_RECORD)

    def reader():
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
    for chunk in rec._reader():
        if len(chunk):
            width = max(width, int(chunk["x"].max()) + 1)
            height = max(height, int(chunk["y"].max()) + 1)
    if not width:
        raise EventFileError(rec.path, "no events")
    return width, height


def write_recording(path, events: np.ndarray, dimensions: tuple[int, int]) -> Path:
    """Write `events` (EVENTS_DTYPE, time-ordered) through faery; the format follows the
    extension (`.aedat4`, `.raw` = EVT3, `.dat`, `.es`, `.csv`), `.npy` through NumPy.

    Times are kept as they are (not shifted to start at 0).
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
        path, version=version, zero_t0=False)
    return path
