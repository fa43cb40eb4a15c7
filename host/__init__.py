"""Host-side tools: networks and input rasters for the core, and (later) the link to a board."""
