"""Host software: describe and compile networks, read and encode event recordings, and run them on
a chip — the golden model, a simulated board or a real board — through one stack:
`device` (what a run needs) → `streaming` (the one loop) → `flow` (what to send, planned without
I/O) → `link.ChipClient` (the one protocol encoder and decoder) → `transport` (the bytes).
docs/host.md says which file does what."""
