"""docs/protocol.md agrees with the protocol table (`spikefab.protocol.REQUESTS` and friends).

The document's tables are parsed as markdown: a row that disagrees with the table, a request the
document lacks or one it invents fails with the row named.
"""

import re
from pathlib import Path

import pytest

from spikefab import protocol as P
from spikefab.learning import Region
from spikefab.spec import ChipConfig

DOC = Path(__file__).resolve().parents[1] / "docs" / "protocol.md"
TEXT = DOC.read_text()
DEFAULT = ChipConfig()
NONE = "—"


def tables(text: str) -> list[tuple[list[str], list[list[str]]]]:
    """Every markdown table of `text` as (header cells, rows of cells)."""
    found, block = [], []
    for line in text.splitlines() + [""]:
        if line.startswith("|"):
            block.append([cell.strip() for cell in line.strip().strip("|").split(" | ")])
        elif block:
            if len(block) > 2 and set("".join(block[1])) <= set("-:| "):
                found.append((block[0], block[2:]))
            block = []
    return found


def table(*header: str) -> list[dict]:
    """The one table whose header is exactly `header`, as dicts by column."""
    matches = [rows for head, rows in tables(TEXT) if tuple(head) == header]
    assert len(matches) == 1, f"docs/protocol.md: {len(matches)} tables with columns {header}"
    return [dict(zip(header, row)) for row in matches[0]]


def ticked(cell: str) -> list[str]:
    return re.findall(r"`([^`]+)`", cell)


def fields(cell: str) -> list[tuple[str, int]]:
    """"core u8, first u32" -> [("core", 8), ("first", 32)]; "—" -> []."""
    if cell == NONE:
        return []
    out = []
    for part in cell.split(", "):
        match = re.fullmatch(r"(\w+) u(8|16|32)", part)
        assert match, f"not a field: {part!r} in {cell!r}"
        out.append((match[1], int(match[2])))
    return out


def as_fields(fs) -> list[tuple[str, int]]:
    return [(f.name, f.width) for f in fs]


def default_number(cell: str) -> int:
    """The value of a cell for `ChipConfig()`: the number in parentheses, else the cell."""
    match = re.search(r"\((\d+)\)$", cell)
    return int(match[1] if match else cell)


COMMANDS = table("opcode", "request", "access", "plastic", "head", "items", "max / frame",
                 "reply", "statuses")


def test_every_request_has_one_row_and_no_row_is_invented():
    assert [row["request"] for row in COMMANDS] == [r.name for r in P.REQUESTS.values()]


@pytest.mark.parametrize("row", COMMANDS, ids=[row["request"] for row in COMMANDS])
def test_command_row_matches_the_request(row):
    request = P.REQUESTS[P.Op[row["request"]]]
    assert ticked(row["opcode"]) == [f"0x{request.op:02X}"]
    assert row["access"] == request.access.value
    assert row["plastic"] == ("yes" if request.plastic else "no")
    assert fields(row["head"]) == as_fields(request.head)
    if request.op not in (P.Op.IDENTIFY, P.Op.READ_STATUS):     # those have their own tables
        assert fields(row["reply"]) == as_fields(request.reply)
    assert set(ticked(row["statuses"])) == {s.name for s in request.statuses - {P.Status.OK}}
    if request.item is None:
        assert row["items"] == NONE and row["max / frame"] == NONE
        return
    items = re.fullmatch(r"`(\w+)` × (n, n ≥ (\d+)|count|n)", row["items"])
    assert items, f"items cell {row['items']!r}"
    assert items[1] == request.item
    if request.access is P.Access.WRITE:
        assert int(items[3]) == request.min_items
    else:
        assert (items[2] == "count") == ("count" in [f.name for f in request.head])
    if P.ITEMS[request.item].by_region:
        assert row["max / frame"] == "by region"
    else:
        assert int(row["max / frame"]) == request.max_items(DEFAULT)


ITEM_ROWS = table("item", "bytes", "fields", "what")


def test_item_kinds_match():
    assert [ticked(row["item"])[0] for row in ITEM_ROWS] == list(P.ITEMS)
    for row in ITEM_ROWS:
        kind = P.ITEMS[ticked(row["item"])[0]]
        assert fields(row["fields"]) == as_fields(kind.fields), kind.name
        if kind.by_region:
            assert row["bytes"] == "by region"
        else:
            assert default_number(row["bytes"]) == kind.nbytes(DEFAULT), kind.name


def test_identify_table_matches_its_fields_and_the_default_chip():
    rows = table("offset", "type", "field", "default")
    values, offset = P.identify_values(DEFAULT), 0
    assert [ticked(row["field"])[0] for row in rows] == [f.name for f in P.IDENTIFY_FIELDS]
    for row, field in zip(rows, P.IDENTIFY_FIELDS):
        assert (int(row["offset"]), row["type"]) == (offset, f"u{field.width}"), field.name
        assert int(row["default"]) == values[field.name], field.name
        offset += field.width // 8
    assert f"{offset} bytes" in COMMANDS[0]["reply"]


def test_read_status_table_matches_its_fields():
    rows = table("offset", "type", "field", "meaning")
    chip_fields, core_fields = P.STATUS_FIELDS, P.STATUS_CORE_FIELDS
    assert [ticked(row["field"])[0] for row in rows] == \
        [f.name for f in chip_fields + core_fields]
    offset, head, per_core = 0, P.fields_bytes(chip_fields), P.fields_bytes(core_fields)
    for row, field in zip(rows, chip_fields + core_fields):
        if field in core_fields and offset == head:
            offset = 0
        expected = str(offset) if field in chip_fields else f"{head + offset} + {per_core}c"
        assert (row["offset"], row["type"]) == (expected, f"u{field.width}"), field.name
        offset += field.width // 8
    assert f"{head} + {per_core}·C bytes" in COMMANDS[1]["reply"]


def test_status_codes_match():
    rows = table("value", "name", "meaning")
    assert [(int(row["value"]), ticked(row["name"])[0]) for row in rows] == \
        [(int(s), s.name) for s in P.Status]


def test_chip_registers_match():
    rows = table("register", "name", "bits", "meaning")
    assert [(int(ticked(row["register"])[0], 16), ticked(row["name"])[0]) for row in rows] == \
        [(int(r), r.name) for r in P.Reg]
    for row in rows:
        high, low = map(int, row["bits"].split(".."))
        assert P.REG_MASKS[P.Reg[ticked(row["name"])[0]]] == ((1 << (high + 1)) - (1 << low))


def test_learn_regions_match():
    rows = table("region", "name", "address (`first` + i)", "item bytes",
                 "item (little-endian)", "write check")
    assert [(int(row["region"]), row["name"]) for row in rows] == [(int(r), r.name)
                                                                    for r in Region]
    for row in rows:
        assert default_number(row["item bytes"]) == \
            P.item_bytes(DEFAULT, "learn", Region[row["name"]]), row["name"]


#: Statuses of undecodable frames (§2): never a request's, though its sections may name them.
FRAMING = {"BAD_CRC", "BAD_FRAME", "TOO_LONG"}


def sections() -> dict[str, str]:
    """The text of each "### " section, by heading."""
    parts = re.split(r"^### (.+)$", TEXT, flags=re.M)
    return {heading: body.split("\n## ")[0] for heading, body in zip(parts[1::2], parts[2::2])}


def test_each_request_section_names_exactly_its_statuses():
    """A request's own section (its checks) names every status the table lists for it, and
    none that no request of the section can return."""
    covered = set()
    for heading, body in sections().items():
        names = [n for n in re.findall(r"\b[A-Z][A-Z0-9_]+\b", heading.split("(")[0])
                 if n in P.Op.__members__]
        if not names:
            continue
        requests = [P.REQUESTS[P.Op[n]] for n in names]
        named = {s for s in ticked(body) if s in P.Status.__members__} - {"OK"} - FRAMING
        allowed = {s.name for r in requests for s in r.statuses} | \
            ({"UNKNOWN_OP"} if any(r.plastic for r in requests) else set())
        assert named <= allowed, f"section {heading!r} names {named - allowed}"
        for request in requests:
            missing = {s.name for s in request.statuses} - named - {"OK"}
            assert not missing, f"section {heading!r} does not explain {request.name}'s {missing}"
        covered.update(names)
    assert covered == {op.name for op in P.Op}, "requests without a section of their own"


def test_the_doc_explains_how_to_add_a_request():
    assert "## 10. Adding a request" in TEXT
