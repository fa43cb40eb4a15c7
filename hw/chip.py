"""The chip: C LIF cores, the router and the host-link protocol engine behind one byte stream.

Data path (`docs/architecture.md` has the picture)::

    i (bytes) ─► FrameReceiver ─► engine ─► FrameTransmitter ─► o (bytes)
                                    │  ▲
            config requests ◄───────┘  └──── spikes of step t (core order, neuron order)
                  │                                │
    per-core command FIFO ─► LIFCore × C ─► spike buffer ─► Router ─► core FIFOs (step t+1)
                  ▲                                                 └► host FIFO (step, source)
                  └────────────── host INPUT events (step t) ─► Router

The engine executes one request at a time, exactly as `spikefab.sim.ChipModel.execute` does:
it first waits until every core, FIFO and the router are idle (so no configuration write can
overtake an event still queued), checks every argument (a failed check changes nothing), then
acts and replies. Ticking: every core gets TICK at once; their spikes are collected core by core
into the spike buffer, then routed; the step ends when the router has delivered every spike.
"""

from amaranth.hdl import Cat, Const, Module, Mux, Signal
from amaranth.lib import data, stream, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from spikefab import protocol as P
from spikefab.learning import READ_ONLY, REGION_SHIFT, Region, region_width
from spikefab.learning import Reg as LearnReg
from spikefab.spec import COUNTER_WIDTH, ChipConfig, param_fields, state_fields, word_width

from .arith import bump
from .core import LIFCore
from .delivery import Delivery
from .fifo import StreamFIFO
from .framing import FrameReceiver, FrameTransmitter
from .layouts import ConfigSpace, CoreOp, SpikeKind, param_layout, struct_of
from .plasticity import register_ok
from .router import Router
from .synapse import synapse_word_bits

__all__ = ["Chip"]

Op = P.Op

# Every request's layout comes from `protocol.REQUESTS`. The requests of `OWN_STATES` go to
# states of their own (after their head, if any, is loaded); every other one is a bulk WRITE
# (head, then items counted, checked, then applied) or a block READ (a head ending in `count`)
# of its item kind, the plastic-only ones through `_dispatch_learn` (their item size depends on
# the region named in their head).
OWN_STATES = {Op.IDENTIFY: "IDENTIFY", Op.READ_STATUS: "STATUS", Op.RESET: "RESET",
              Op.TICK: "TICK_ARG", Op.FETCH: "FETCH_ARG"}
_BULK = [r for r in P.REQUESTS.values() if r.op not in OWN_STATES and not r.plastic]
BULK_WRITES = [r for r in _BULK if r.access is P.Access.WRITE]
BLOCK_READS = [r for r in _BULK if r.access is P.Access.READ]
#: The item kinds of the bulk requests, in table order: the values of the engine's `kind`.
#: The plastic-only kinds come last and exist only on plastic chips.
KINDS = list(dict.fromkeys([r.item for r in _BULK] +
                           [r.item for r in P.REQUESTS.values() if r.plastic]))
PLASTIC_KINDS = {r.item for r in P.REQUESTS.values() if r.plastic}
#: Kinds of WRITEs that may carry no item at all (INPUT, INPUT8).
EMPTY_OK = [r.item for r in BULK_WRITES if r.min_items == 0]
SPACES = {"weights": ConfigSpace.WEIGHTS, "params": ConfigSpace.PARAMS,
          "state": ConfigSpace.STATE}


def head_layout(request: P.Request) -> data.StructLayout:
    """The layout of a request's head as the engine loads it (little-endian, LSB first)."""
    return struct_of(request.head)


def item_layout(kind: str) -> data.StructLayout:
    """The layout of a record item (route index entry, destination, input id, ...)."""
    return struct_of(P.ITEMS[kind].fields)


def view(layout: data.StructLayout, value) -> data.View:
    """`layout` over the low bits of `value`: names for bits, no logic."""
    return data.View(layout, value[:layout.size])


#: Bytes of a learning request's head before `first` (core, region): loaded and checked first,
#: since the item size depends on the region.
LEARN_TARGET_BYTES = head_layout(P.REQUESTS[Op.WRITE_LEARN])["first"].offset // 8


class Chip(wiring.Component):
    """The whole chip behind the byte stream `i` / `o` (see module docstring).

    `uart_framing_errors` and `uart_overflows` are reported in READ_STATUS (tie them to 0
    without a UART). `memory_kind` places the single-port memories (synapses, frame buffers):
    "memory" (`lib.memory`), "spram" (iCE40UP5K SPRAM) or "auto" (SPRAM when built for an
    iCE40UP).
    """

    def __init__(self, cfg: ChipConfig | None = None, *, cmd_fifo_depth: int = 16,
                 memory_kind: str = "auto"):
        self.cfg = cfg or ChipConfig()
        self.cmd_fifo_depth = cmd_fifo_depth
        self.memory_kind = memory_kind
        super().__init__({
            "i": In(stream.Signature(8)),
            "o": Out(stream.Signature(8)),
            "uart_framing_errors": In(COUNTER_WIDTH),
            "uart_overflows": In(COUNTER_WIDTH),
        })

    def elaborate(self, platform):
        m = Module()
        e = _Engine(self, m)
        e.build()
        return m


class _Engine:
    """Builds the chip's logic; split from `Chip` only to keep each step of it short."""

    def __init__(self, chip: Chip, m: Module):
        self.chip, self.m, self.cfg = chip, m, chip.cfg

    # Structure ---------------------------------------------------------------------------------

    def build(self):
        m, cfg, chip = self.m, self.cfg, self.chip
        m.submodules.rx = self.rx = FrameReceiver(buffer=chip.memory_kind)
        m.submodules.tx = self.tx = FrameTransmitter(buffer=chip.memory_kind)
        wiring.connect(m, wiring.flipped(chip.i), self.rx.i)
        wiring.connect(m, self.tx.o, wiring.flipped(chip.o))
        m.submodules.router = self.router = Router(cfg)
        m.submodules.delivery = self.delivery = Delivery(cfg, cmd_depth=chip.cmd_fifo_depth)
        self.cores = []
        for c in range(cfg.n_cores):
            core = LIFCore(cfg.core, synapse_memory=chip.memory_kind, plastic=cfg.is_plastic(c))
            m.submodules[f"core{c}"] = core
            wiring.connect(m, self.delivery.o_cmd[c], core.i_cmd)
            self.cores.append(core)
        self.host = self.delivery.o_host
        n_spikes = cfg.n_cores * cfg.core.n_neurons
        m.submodules.spike_buf = spike_buf = Memory(shape=16, depth=n_spikes, init=[])
        self.spike_wr, self.spike_rd = spike_buf.write_port(), spike_buf.read_port()
        self._registers()
        self._router_outputs()
        self._fsm()

    def _registers(self):
        cfg = self.cfg
        S = Signal
        self.op, self.tag, self.status = S(8), S(8), S(4)
        self.args_len = S(range(P.MAX_PAYLOAD + 1))
        self.ptr = S(range(P.MAX_PAYLOAD + 3))          # frame-buffer address being read
        self.item, self.item_k = S(64), S(range(9))      # little-endian item being loaded
        # Without plastic cores the chip is exactly the one before learning requests existed.
        self.plastic = bool(cfg.plastic)
        self.kind = S(range(len(KINDS) if self.plastic else len(KINDS) - len(PLASTIC_KINDS)))
        self.nbytes = S(range(9))                        # bytes per item of this request
        self.head = S(range(8))
        self.rem = S(range(P.MAX_PAYLOAD + 1))
        self.n_items, self.idx = S(range(P.MAX_PAYLOAD + 1)), S(range(P.MAX_PAYLOAD + 2))
        self.core_sel, self.first, self.count = S(8), S(33), S(16)
        self.addr_bad, self.value_bad = S(), S()
        self.routed = S(range(P.MAX_PAYLOAD * cfg.route_entries + 1))
        self.emit_word, self.emit_n = S(64), S(range(9))
        self.field = S(range(64))
        self.step, self.host_events = S(32), S(16)
        self.crc_errors, self.frame_errors = S(32), S(32)
        self.steps_left = S(16)
        self.drain, self.n_spikes = S(range(cfg.n_cores + 1)), S(range(cfg.n_cores *
                                                                        cfg.core.n_neurons + 1))
        self.ret = S(8)
        self.load_n = S(range(9))
        self.head_end = S(range(P.MAX_PAYLOAD + 3))     # frame-buffer address of the first item
        #: Chip registers (protocol.Reg), 0 at power-up, kept by RESET.
        self.regs = {reg: S(32, name=f"reg_{reg.name.lower()}") for reg in P.Reg}
        if self.plastic:
            self.region = S(range(len(Region)))          # LEARN region of the request
            self.seed_lo = S(16)                         # SEED_LO item of the request

    def _router_outputs(self):
        m, delivery = self.m, self.delivery
        wiring.connect(m, self.router.o_event, delivery.i_event)
        wiring.connect(m, self.router.o_host, delivery.i_host)
        m.d.comb += delivery.step.eq(self.step)
        self.engine_cmd = delivery.i_engine.payload      # TICK / CLEAR for every core
        self.engine_cmd_valid = delivery.i_engine.valid
        self.host_dropped = delivery.host_dropped

    def quiet(self):
        """Every core idle, every FIFO empty, the router idle."""
        idle = ~self.router.busy
        idle &= self.delivery.empty
        for core in self.cores:
            idle &= ~core.o_status.busy & ~core.o_spike.valid
        return idle

    # Helpers used inside FSM states ------------------------------------------------------------

    def call(self, sub: str, ret: str):
        """Jump to subroutine state `sub`; it returns to state `ret`."""
        if ret not in self.returns:
            self.returns.append(ret)
        self.m.d.sync += self.ret.eq(self.returns.index(ret))
        self.m.next = sub

    def give_back(self):
        with self.m.Switch(self.ret):
            for code, name in enumerate(self.returns):
                with self.m.Case(code):
                    self.m.next = name

    def reply(self, status, data_state: str = "SEND"):
        """Write the reply header (op | 0x80, tag, status), then go to `data_state`."""
        m = self.m
        m.d.sync += [self.emit_word.eq(Cat(self.op | P.REPLY_FLAG, self.tag, status)),
                     self.emit_n.eq(3)]
        self.call("EMIT", data_state)

    def fail(self, status):
        self.reply(Const(int(status), 8))

    # The engine --------------------------------------------------------------------------------

    def _fsm(self):
        m, rx, tx = self.m, self.rx, self.tx
        self.returns = []

        def state(name):
            return m.State(name)

        m.d.comb += [rx.buf_addr.eq(self.ptr), self.spike_rd.addr.eq(self.idx)]
        self._core_config_port()
        with m.FSM():
            self._receive(state)
            with state("QUIESCE"):
                with m.If(self.quiet()):
                    m.next = "DISPATCH"
            with state("DISPATCH"):
                self._dispatch()
            self._identify_status_reset(state)
            self._bulk_write(state)
            self._block_read(state)
            self._tick_fetch(state)
            if self.plastic:
                self._learn_head(state)
            self._subroutines(state)
            with state("SEND"):
                m.d.comb += [tx.send.eq(1), rx.o_frame.ready.eq(1)]
                m.next = "IDLE"

    def _receive(self, state):
        m, rx, tx = self.m, self.rx, self.tx
        frame = rx.o_frame.payload
        with state("IDLE"):
            with m.If(rx.o_frame.valid & ~tx.busy):
                with m.If(frame.status != P.Status.OK):
                    with m.If(frame.status == P.Status.BAD_CRC):
                        bump(m, self.crc_errors)
                    with m.Else():
                        bump(m, self.frame_errors)
                    m.d.sync += [self.emit_word.eq(Cat(Const(P.ERROR_OP, 8), Const(0, 8),
                                                       frame.status)), self.emit_n.eq(3)]
                    self.call("EMIT", "SEND")
                with m.Else():
                    m.d.sync += [self.ptr.eq(0), self.args_len.eq(frame.length - 2)]
                    m.next = "HEADER_OP"
        with state("HEADER_OP"):
            m.d.sync += self.ptr.eq(1)
            m.next = "HEADER_TAG"
        with state("HEADER_TAG"):
            m.d.sync += [self.op.eq(rx.buf_data), self.ptr.eq(2)]
            m.next = "HEADER_DONE"
        with state("HEADER_DONE"):
            m.d.sync += self.tag.eq(rx.buf_data)
            m.next = "QUIESCE"

    def load(self, n, ret: str):
        """Load `n` little-endian bytes from the frame buffer at `ptr` into `item`."""
        self.m.d.sync += [self.item.eq(0), self.item_k.eq(0), self.load_n.eq(n)]
        self.call("LOAD", ret)

    def _dispatch(self):
        m, length = self.m, self.args_len
        with m.Switch(self.op):
            for op, name in OWN_STATES.items():
                with m.Case(op):
                    head = P.REQUESTS[op].head_bytes
                    with m.If(length != head):
                        self.fail(P.Status.BAD_LENGTH)
                    with m.Else():
                        if head:
                            self.load(head, name)
                        else:
                            m.d.sync += self.field.eq(0)
                            m.next = name
            for request in BULK_WRITES:
                head, kind = request.head_bytes, request.item
                with m.Case(request.op):
                    m.d.sync += [self.kind.eq(KINDS.index(kind)), self.head.eq(head),
                                 self.nbytes.eq(P.item_bytes(self.cfg, kind)),
                                 self.rem.eq(length - head), self.n_items.eq(0)]
                    with m.If(length < head):
                        self.fail(P.Status.BAD_LENGTH)
                    with m.Else():
                        m.next = "COUNT_ITEMS"
            for request in BLOCK_READS:
                expected, kind = request.head_bytes, request.item
                with m.Case(request.op):
                    m.d.sync += [self.kind.eq(KINDS.index(kind)),
                                 self.nbytes.eq(P.item_bytes(self.cfg, kind))]
                    with m.If(length != expected):
                        self.fail(P.Status.BAD_LENGTH)
                    with m.Else():
                        self.load(expected, "READ_CHECK")
            if self.plastic:
                self._dispatch_learn()
            with m.Default():
                self.fail(P.Status.UNKNOWN_OP)

    def _dispatch_learn(self):
        """WRITE_LEARN / READ_LEARN: load core and region first; the item size depends on it."""
        m, length = self.m, self.args_len
        learn = self.kind.eq(KINDS.index("learn"))
        write, read = P.REQUESTS[Op.WRITE_LEARN], P.REQUESTS[Op.READ_LEARN]
        with m.Case(write.op):
            m.d.sync += [learn, self.head.eq(write.head_bytes),
                         self.rem.eq(length - write.head_bytes), self.n_items.eq(0)]
            with m.If(length < write.head_bytes):
                self.fail(P.Status.BAD_LENGTH)
            with m.Else():
                self.load(LEARN_TARGET_BYTES, "LEARN_HEAD")
        with m.Case(read.op):
            m.d.sync += learn
            with m.If(length != read.head_bytes):
                self.fail(P.Status.BAD_LENGTH)
            with m.Else():
                self.load(LEARN_TARGET_BYTES, "LEARN_HEAD")

    def _learn_head(self, state):
        """Check the core and region of a learning request, then count or read its items."""
        m, cfg = self.m, self.cfg
        head = view(head_layout(P.REQUESTS[Op.WRITE_LEARN]), self.item)
        core, region = head.core, head.region
        plastic = Const(sum(1 << c for c in cfg.plastic), cfg.n_cores)
        sizes = [P.item_bytes(cfg, "learn", r) for r in Region]
        with state("LEARN_HEAD"):
            with m.If((core >= cfg.n_cores) | (region >= len(Region))):
                self.fail(P.Status.BAD_ADDRESS)
            with m.Elif(~plastic.bit_select(core[:max(1, (cfg.n_cores - 1).bit_length())], 1)):
                self.fail(P.Status.NOT_PLASTIC)
            with m.Else():
                m.d.sync += [self.region.eq(region), self.ptr.eq(LEARN_TARGET_BYTES),
                             self.nbytes.eq(Const(sizes[-1], 4))]
                for r, size in enumerate(sizes[:-1]):
                    with m.If(region == r):
                        m.d.sync += self.nbytes.eq(size)
                with m.If(self.op == P.Op.WRITE_LEARN):
                    m.next = "COUNT_ITEMS"
                with m.Else():
                    self.load(P.REQUESTS[Op.READ_LEARN].head_bytes, "READ_CHECK")

    def learn_mask(self):
        """A learning request to the plastic mask (word addresses checked like weights')."""
        if not self.plastic:
            return Const(0)
        return self.is_kind("learn") & (self.region == Region.MASK)

    def learn_depth_bad(self, end):
        """A learning request (not to the mask) running past its region's end."""
        if not self.plastic:
            return Const(0)
        core, bad = self.cfg.core, Const(0)
        for region in Region:
            if region != Region.MASK:
                bad |= (self.region == region) & (end > P.learn_depth(core, region))
        return self.is_kind("learn") & bad

    # IDENTIFY, READ_STATUS, RESET --------------------------------------------------------------

    def emit_fields(self, state, name: str, fields):
        """A state emitting (value, bytes) fields in order after an OK header, then SEND."""
        m = self.m
        with state(name):
            with m.If(self.field == 0):
                m.d.sync += self.field.eq(1)
                self.reply(Const(P.Status.OK, 8), name)
            for k, (value, nbytes) in enumerate(fields, 1):
                with m.If(self.field == k):
                    m.d.sync += [self.emit_word.eq(value), self.emit_n.eq(nbytes),
                                 self.field.eq(k + 1)]
                    self.call("EMIT", name)
            with m.If(self.field == len(fields) + 1):
                m.next = "SEND"

    def _identify_status_reset(self, state):
        m = self.m
        self.emit_fields(state, "IDENTIFY",
                         [(Const(b, 8), 1) for b in P.identify_data(self.cfg)])
        status = {"step": self.step, "host_events": self.host_events,
                  "host_pending": self.delivery.host_level, "host_dropped": self.host_dropped,
                  "crc_errors": self.crc_errors, "frame_errors": self.frame_errors,
                  "uart_framing_errors": self.chip.uart_framing_errors,
                  "uart_overflows": self.chip.uart_overflows}
        fields = [(status[f.name], f.width // 8) for f in P.STATUS_FIELDS]
        for core in self.cores:
            fields += [(getattr(core.o_status, f.name), f.width // 8)
                       for f in P.STATUS_CORE_FIELDS]
        self.emit_fields(state, "STATUS", fields)
        with state("RESET"):
            m.d.comb += [self.engine_cmd.op.eq(CoreOp.CLEAR), self.engine_cmd_valid.eq(1)]
            m.d.comb += self.delivery.clear_dropped.eq(1)
            m.d.sync += [self.step.eq(0), self.host_events.eq(0),
                         self.crc_errors.eq(0), self.frame_errors.eq(0)]
            m.next = "RESET_FLUSH"
        with state("RESET_FLUSH"):
            m.d.comb += self.host.ready.eq(1)
            with m.If(~self.host.valid & self.quiet()):
                self.reply(Const(P.Status.OK, 8))

    # Bulk writes -------------------------------------------------------------------------------

    def is_kind(self, *names):
        return self.kind.matches(*[KINDS.index(n) for n in names])

    def slot_ok(self, address):
        core = self.cfg.core
        word_bits = synapse_word_bits(core)
        return ((address >> word_bits) < core.n_axons) & \
            (address[:word_bits] < core.words_per_axon) if word_bits else \
            (address < core.n_axons)

    def _bulk_write(self, state):
        m = self.m
        with state("COUNT_ITEMS"):        # n_items, rem = divmod(length - head, nbytes)
            with m.If(self.rem >= self.nbytes):
                m.d.sync += [self.rem.eq(self.rem - self.nbytes),
                             self.n_items.eq(self.n_items + 1)]
            with m.Elif((self.rem != 0) | ((self.n_items == 0) & ~self.is_kind(*EMPTY_OK))):
                self.fail(P.Status.BAD_LENGTH)
            with m.Elif(self.head == 0):      # INPUT: no head, the items start at once
                m.d.sync += self.item.eq(0)
                m.next = "WRITE_CHECK"
            with m.Else():
                self.load(self.head, "WRITE_CHECK")
        with state("WRITE_CHECK"):
            self._head_fields()
            m.d.sync += [self.idx.eq(0), self.addr_bad.eq(0), self.value_bad.eq(0),
                         self.routed.eq(0)]
            end = self.head_field("first") + self.n_items
            with m.If(self.out_of_range(self.head_field("core"), end)):
                self.fail(P.Status.BAD_ADDRESS)
            with m.Else():
                m.d.sync += self.head_end.eq(self.ptr)
                m.next = "VALIDATE"
        with state("VALIDATE"):
            with m.If(self.idx == self.n_items):
                self._decide()
            with m.Else():
                self.load(self.nbytes, "VALIDATE_ITEM")
        with state("VALIDATE_ITEM"):
            self._validate_item()
        with state("INPUT_COUNT"):        # the route index entry of the input's source
            m.d.sync += [self.routed.eq(self.routed + self.router.index.r_data.count),
                         self.idx.eq(self.idx + 1)]
            m.d.comb += self.router.index.addr.eq(self.input_source())
            m.next = "VALIDATE"
        with state("APPLY"):
            with m.If(self.idx == self.n_items):
                with m.If(self.is_kind("input", "input8")):
                    m.d.sync += self.host_events.eq(self.host_events + self.routed)
                self.reply(Const(P.Status.OK, 8))
            with m.Else():
                self.load(self.nbytes, "APPLY_ITEM")
        with state("APPLY_ITEM"):
            self._apply_item()
        with state("APPLY_WAIT"):
            m.d.comb += self.cfg_resp_ready.eq(1)
            with m.If(self.cfg_resp_valid):
                m.d.sync += self.idx.eq(self.idx + 1)
                m.next = "APPLY"

    def out_of_range(self, core, end):
        """A block request names a core that does not exist or runs past its memory's end
        (weight and mask words are checked one by one, in the validation pass or SLOT_SCAN)."""
        cfg = self.cfg
        bad = ((self.is_kind("weights", "params", "state") & (core >= cfg.n_cores)) |
               (self.is_kind("params", "state") & (end > cfg.core.n_neurons)) |
               (self.is_kind("index") & (end > cfg.n_sources)) |
               (self.is_kind("dest") & (end > cfg.route_entries)) |
               (self.is_kind("reg") & (end > P.N_REGS)))
        return bad | self.learn_depth_bad(end) if self.plastic else bad

    def head_field(self, name: str):
        """Head field `name` of the bulk request being served, from its head loaded in `item`.

        Each kind's head layout names the bits; kinds that place the field alike share one
        slice, the largest group is the default, the others are chosen by kind (plastic-only
        kinds outermost, so a chip without them has exactly the logic it had before them)."""
        groups = {}                                 # (offset, width) -> (slice, kinds)
        for request in _BULK + [r for r in P.REQUESTS.values() if r.plastic and self.plastic]:
            layout = head_layout(request)
            if name in dict(layout):
                key = (layout[name].offset, layout[name].width)
                value, kinds = groups.setdefault(key, (view(layout, self.item)[name], []))
                if request.item not in kinds:
                    kinds.append(request.item)
        ordered = list(groups.values())
        default = max(ordered, key=lambda group: len(group[1]))
        others = [g for g in reversed(ordered) if g is not default]
        others.sort(key=lambda group: any(k in PLASTIC_KINDS for k in group[1]))
        value = default[0]
        for field, kinds in others:
            value = Mux(self.is_kind(*kinds), field, value)
        return value

    def _head_fields(self):
        self.m.d.sync += [self.core_sel.eq(self.head_field("core")),
                          self.first.eq(self.head_field("first"))]

    def input_source(self):
        return self.cfg.input_source(0) + view(item_layout("input"), self.item).id

    def _validate_item(self):
        m, cfg, item = self.m, self.cfg, self.item
        core, one = cfg.core, cfg.core.decay_one
        address = self.first + self.idx
        m.d.sync += self.idx.eq(self.idx + 1)
        m.next = "VALIDATE"
        with m.Switch(self.kind):
            with m.Case(KINDS.index("weights")):
                with m.If(~self.slot_ok(address)):
                    m.d.sync += self.addr_bad.eq(1)
                with m.If((item >> (core.weights_per_word * core.weight_width)) != 0):
                    m.d.sync += self.value_bad.eq(1)
            with m.Case(KINDS.index("params")):
                params = view(param_layout(core), item)
                with m.If(((item >> word_width(param_fields(core))) != 0) |
                          (params.alpha > one) | (params.beta > one)):
                    m.d.sync += self.value_bad.eq(1)
            with m.Case(KINDS.index("state")):
                with m.If((item >> word_width(state_fields(core))) != 0):
                    m.d.sync += self.value_bad.eq(1)
            with m.Case(KINDS.index("index")):
                index = view(item_layout("index"), item)
                with m.If(index.start + index.count > cfg.route_entries):
                    m.d.sync += self.value_bad.eq(1)
            with m.Case(KINDS.index("dest")):
                dest = view(item_layout("dest"), item)
                dest_core, axon = dest.core, dest.axon
                with m.If(Mux(dest_core == P.HOST_CORE, axon != 0,
                              (dest_core >= cfg.n_cores) | (axon >= core.n_axons))):
                    m.d.sync += self.value_bad.eq(1)
            with m.Case(KINDS.index("reg")):
                with m.Switch(address):
                    for reg, mask in P.REG_MASKS.items():
                        read_only_bits = ~mask & 0xFFFF_FFFF
                        with m.Case(reg):
                            with m.If((item & read_only_bits) != 0):
                                m.d.sync += self.value_bad.eq(1)
            if self.plastic:
                with m.Case(KINDS.index("learn")):
                    self._validate_learn_item(address)
            with m.Case(KINDS.index("input"), KINDS.index("input8")):
                with m.If(view(item_layout("input"), item).id >= cfg.n_inputs):
                    m.d.sync += self.addr_bad.eq(1)
                with m.Else():         # count its routed events in INPUT_COUNT
                    m.d.comb += self.router.index.addr.eq(self.input_source())
                    m.d.sync += self.idx.eq(self.idx)
                    m.next = "INPUT_COUNT"

    def _decide(self):
        m, cfg = self.m, self.cfg
        with m.If(self.addr_bad):
            self.fail(P.Status.BAD_ADDRESS)
        with m.Elif(self.value_bad):
            self.fail(P.Status.BAD_VALUE)
        with m.Elif(self.is_kind("input", "input8") &
                    (self.host_events + self.routed > cfg.max_host_events)):
            self.fail(P.Status.LIMIT)
        with m.Else():
            m.d.sync += [self.idx.eq(0), self.ptr.eq(self.head_end)]
            m.next = "APPLY"

    def _apply_item(self):
        m, item = self.m, self.item
        address = self.first + self.idx
        with m.Switch(self.kind):
            for kind in ("weights", "params", "state"):
                with m.Case(KINDS.index(kind)):
                    m.d.comb += [self.cfg_req_valid.eq(1), self.cfg_req.write.eq(1),
                                 self.cfg_req.space.eq(SPACES[kind]),
                                 self.cfg_req.addr.eq(address), self.cfg_req.data.eq(item)]
                    with m.If(self.cfg_req_ready):
                        m.next = "APPLY_WAIT"
            for kind, port in (("index", self.router.index), ("dest", self.router.dest)):
                with m.Case(KINDS.index(kind)):
                    m.d.comb += [port.addr.eq(address), port.w_data.eq(item), port.w_en.eq(1)]
                    m.d.sync += self.idx.eq(self.idx + 1)
                    m.next = "APPLY"
            with m.Case(KINDS.index("reg")):
                with m.Switch(address):
                    for reg in P.Reg:
                        with m.Case(reg):
                            m.d.sync += self.regs[reg].eq(item)
                m.d.sync += self.idx.eq(self.idx + 1)
                m.next = "APPLY"
            if self.plastic:
                with m.Case(KINDS.index("learn")):
                    m.d.comb += [self.cfg_req_valid.eq(1), self.cfg_req.write.eq(1),
                                 self.cfg_req.data.eq(item)]
                    self.learn_request(address)
                    with m.If(self.cfg_req_ready):
                        m.next = "APPLY_WAIT"
            with m.Case(KINDS.index("input"), KINDS.index("input8")):
                m.d.comb += [self.router.i_source.valid.eq(1),
                             self.router.i_source.payload.eq(self.input_source())]
                with m.If(self.router.i_source.ready):
                    m.d.sync += self.idx.eq(self.idx + 1)
                    m.next = "APPLY"

    def learn_request(self, address):
        """Address the core's LEARN config space: region << 20 | address."""
        self.m.d.comb += [self.cfg_req.space.eq(ConfigSpace.LEARN),
                          self.cfg_req.addr.eq(Cat(address[:REGION_SHIFT], self.region))]

    def _validate_learn_item(self, address):
        """Register items: read-only ones BAD_ADDRESS, refused values BAD_VALUE, SEED_HI only
        with SEED_LO in the same request. Mask words: address like weights. Others: width."""
        m, core, item = self.m, self.cfg.core, self.item
        with m.Switch(self.region):
            with m.Case(Region.REGISTERS):
                read_only = Const(0)
                for reg in READ_ONLY:
                    read_only |= address == reg
                with m.If(read_only):
                    m.d.sync += self.addr_bad.eq(1)
                with m.If(address == LearnReg.SEED_LO):
                    m.d.sync += self.seed_lo.eq(item[:16])
                seed_alone = (address == LearnReg.SEED_HI) & (self.first > LearnReg.SEED_LO)
                with m.If(~register_ok(core, address, item, self.seed_lo) | seed_alone):
                    m.d.sync += self.value_bad.eq(1)
            with m.Case(Region.MASK):
                with m.If(~self.slot_ok(address)):
                    m.d.sync += self.addr_bad.eq(1)
                with m.If((item >> region_width(core, Region.MASK)) != 0):
                    m.d.sync += self.value_bad.eq(1)
            for region in Region:
                if region not in (Region.REGISTERS, Region.MASK):
                    with m.Case(region):
                        with m.If((item >> region_width(core, region)) != 0):
                            m.d.sync += self.value_bad.eq(1)

    # Block reads -------------------------------------------------------------------------------

    def _block_read(self, state):
        m = self.m
        with state("READ_CHECK"):
            count, first, core = (self.head_field(name) for name in ("count", "first", "core"))
            m.d.sync += [self.core_sel.eq(core), self.first.eq(first),
                         self.count.eq(count), self.idx.eq(0), self.addr_bad.eq(0)]
            end = first + count
            with m.If((count == 0) | (3 + count * self.nbytes > P.MAX_PAYLOAD)):
                self.fail(P.Status.BAD_LENGTH)
            with m.Elif(self.out_of_range(core, end)):
                self.fail(P.Status.BAD_ADDRESS)
            with m.Else():
                m.next = "SLOT_SCAN"
        with state("SLOT_SCAN"):          # weights: every word address must exist
            slots = self.is_kind("weights") | self.learn_mask() if self.plastic else \
                self.is_kind("weights")
            with m.If(~slots | (self.idx == self.count)):
                with m.If(self.addr_bad):
                    self.fail(P.Status.BAD_ADDRESS)
                with m.Else():
                    m.d.sync += self.idx.eq(0)
                    self.reply(Const(P.Status.OK, 8), "READ_LOOP")
            with m.Else():
                with m.If(~self.slot_ok(self.first + self.idx)):
                    m.d.sync += self.addr_bad.eq(1)
                m.d.sync += self.idx.eq(self.idx + 1)
        address = self.first + self.idx
        with state("READ_LOOP"):
            with m.If(self.idx == self.count):
                m.next = "SEND"
            with m.Elif(self.is_kind("reg")):
                with m.Switch(address):
                    for reg in P.Reg:
                        with m.Case(reg):
                            m.d.sync += self.emit_word.eq(self.regs[reg])
                m.d.sync += [self.emit_n.eq(P.item_bytes(self.cfg, "reg")),
                             self.idx.eq(self.idx + 1)]
                self.call("EMIT", "READ_LOOP")
            with m.Elif(self.is_kind("index", "dest")):
                m.d.comb += [self.router.index.addr.eq(address),
                             self.router.dest.addr.eq(address)]
                m.next = "READ_TABLE"
            with m.Else():
                m.d.comb += [self.cfg_req_valid.eq(1), self.cfg_req.addr.eq(address),
                             self.cfg_req.space.eq(
                                 Mux(self.is_kind("weights"), ConfigSpace.WEIGHTS,
                                     Mux(self.is_kind("params"), ConfigSpace.PARAMS,
                                         ConfigSpace.STATE)))]
                if self.plastic:
                    with m.If(self.is_kind("learn")):
                        self.learn_request(address)
                with m.If(self.cfg_req_ready):
                    m.next = "READ_WAIT"
        with state("READ_TABLE"):
            m.d.comb += [self.router.index.addr.eq(address), self.router.dest.addr.eq(address)]
            m.d.sync += [self.emit_word.eq(Mux(self.is_kind("index"),
                                               self.router.index.r_data,
                                               self.router.dest.r_data)),
                         self.emit_n.eq(self.nbytes), self.idx.eq(self.idx + 1)]
            self.call("EMIT", "READ_LOOP")
        with state("READ_WAIT"):
            m.d.comb += self.cfg_resp_ready.eq(1)
            with m.If(self.cfg_resp_valid):
                m.d.sync += [self.emit_word.eq(self.cfg_resp_data), self.emit_n.eq(self.nbytes),
                             self.idx.eq(self.idx + 1)]
                self.call("EMIT", "READ_LOOP")

    def _core_config_port(self):
        """One config port to the core selected by `core_sel`."""
        m, cores = self.m, self.cores
        self.cfg_req = Signal.like(cores[0].i_cfg.payload)
        self.cfg_req_valid, self.cfg_req_ready = Signal(), Signal()
        self.cfg_resp_valid, self.cfg_resp_ready = Signal(), Signal()
        self.cfg_resp_data = Signal.like(cores[0].o_cfg.payload.data)
        for c, core in enumerate(cores):
            selected = self.core_sel == c
            m.d.comb += [core.i_cfg.payload.eq(self.cfg_req),
                         core.i_cfg.valid.eq(self.cfg_req_valid & selected),
                         core.o_cfg.ready.eq(self.cfg_resp_ready & selected)]
            with m.If(selected):
                m.d.comb += [self.cfg_req_ready.eq(core.i_cfg.ready),
                             self.cfg_resp_valid.eq(core.o_cfg.valid),
                             self.cfg_resp_data.eq(core.o_cfg.payload.data)]

    # TICK and FETCH ----------------------------------------------------------------------------

    def _tick_fetch(self, state):
        m, cfg = self.m, self.cfg
        n = cfg.core.n_neurons
        with state("TICK_ARG"):
            steps = view(head_layout(P.REQUESTS[Op.TICK]), self.item).steps
            with m.If(steps == 0):
                self.fail(P.Status.BAD_VALUE)
            with m.Else():
                m.d.sync += self.steps_left.eq(steps)
                m.next = "TICK_START"
        with state("TICK_START"):         # TICK to every core at once, behind its events
            with m.If(self.delivery.i_engine.ready & ~self.router.busy):
                m.d.comb += [self.engine_cmd.op.eq(CoreOp.TICK), self.engine_cmd_valid.eq(1)]
                m.d.sync += [self.drain.eq(0), self.n_spikes.eq(0)]
                m.next = "DRAIN"
        with state("DRAIN"):              # collect spikes core by core, neuron by neuron
            for c, core in enumerate(self.cores):
                with m.If(self.drain == c):
                    m.d.comb += core.o_spike.ready.eq(1)
                    out = core.o_spike.payload
                    with m.If(core.o_spike.valid & (out.kind == SpikeKind.SPIKE)):
                        m.d.comb += [self.spike_wr.addr.eq(self.n_spikes),
                                     self.spike_wr.data.eq(c * n + out.neuron),
                                     self.spike_wr.en.eq(1)]
                        m.d.sync += self.n_spikes.eq(self.n_spikes + 1)
                    with m.If(core.o_spike.valid & (out.kind == SpikeKind.STEP_END)):
                        m.d.sync += self.drain.eq(c + 1)
                        if c == cfg.n_cores - 1:
                            m.d.sync += self.idx.eq(0)
                            m.next = "ROUTE_READ"
        with state("ROUTE_READ"):         # spike_rd.addr follows idx
            with m.If(self.idx == self.n_spikes):
                with m.If(~self.router.busy):
                    m.next = "STEP_DONE"
            with m.Else():
                m.next = "ROUTE_SEND"
        with state("ROUTE_SEND"):
            m.d.comb += [self.router.i_source.valid.eq(1),
                         self.router.i_source.payload.eq(self.spike_rd.data),
                         self.spike_rd.addr.eq(self.idx)]
            with m.If(self.router.i_source.ready):
                m.d.sync += self.idx.eq(self.idx + 1)
                m.next = "ROUTE_READ"
        with state("STEP_DONE"):
            m.d.sync += [self.step.eq(self.step + 1), self.host_events.eq(0),
                         self.steps_left.eq(self.steps_left - 1)]
            with m.If(self.steps_left == 1):
                m.d.sync += self.field.eq(0)
                m.next = "TICK_REPLY"
            with m.Else():
                m.next = "TICK_START"
        self.emit_fields(state, "TICK_REPLY", [(self.step, f.width // 8)
                                               for f in P.REQUESTS[Op.TICK].reply])
        with state("FETCH_ARG"):
            fetch = P.REQUESTS[Op.FETCH]
            asked, level = view(head_layout(fetch), self.item).max, self.delivery.host_level
            fewest = Mux(level < asked, level, asked)
            limit = Mux(fewest > P.FETCH_MAX, P.FETCH_MAX, fewest)[:16]
            m.d.sync += [self.count.eq(limit), self.idx.eq(0),
                         self.emit_word.eq(Cat(self.op | P.REPLY_FLAG, self.tag,
                                               Const(P.Status.OK, 8), limit)),
                         self.emit_n.eq(3 + fetch.reply_bytes)]
            self.call("EMIT", "FETCH_LOOP")
        with state("FETCH_LOOP"):
            with m.If(self.idx == self.count):
                m.next = "SEND"
            with m.Else():
                m.d.comb += self.host.ready.eq(1)
                m.d.sync += [self.emit_word.eq(self.host.payload),
                             self.emit_n.eq(P.item_bytes(self.cfg, fetch.item)),
                             self.idx.eq(self.idx + 1)]
                self.call("EMIT", "FETCH_LOOP")

    # Subroutines -------------------------------------------------------------------------------

    def _subroutines(self, state):
        m = self.m
        with state("EMIT"):               # write emit_n bytes of emit_word, LSB first
            m.d.comb += [self.tx.w_en.eq(1), self.tx.w_data.eq(self.emit_word[:8])]
            m.d.sync += [self.emit_word.eq(self.emit_word >> 8), self.emit_n.eq(self.emit_n - 1)]
            with m.If(self.emit_n == 1):
                self.give_back()
        with state("LOAD"):               # rx.buf_addr = ptr: the byte arrives next cycle
            m.next = "LOAD_BYTE"
        with state("LOAD_BYTE"):
            m.d.sync += [self.item.eq(self.item | (self.rx.buf_data << (self.item_k * 8))),
                         self.item_k.eq(self.item_k + 1), self.ptr.eq(self.ptr + 1)]
            with m.If(self.item_k + 1 >= self.load_n):
                self.give_back()
            with m.Else():
                m.next = "LOAD"


class ChipOverUART(wiring.Component):
    """The chip behind an 8N1 UART (`rx`/`tx` lines, `divisor` clock cycles per bit).

    Received bytes pass through a FIFO of `rx_fifo_depth` bytes (default: one maximal frame), so a
    host that sends its next request before the previous reply has been read loses nothing; a
    byte that finds the FIFO full is counted by the receiver's `overflow`. Both that count and
    the UART framing errors are reported in READ_STATUS (`uart_overflows`, `uart_framing_errors`)
    and on the `rx_overflow` port.
    """

    def __init__(self, cfg: ChipConfig | None = None, *, divisor: int,
                 rx_fifo_depth: int = P.MAX_ENCODED + 1, memory_kind: str = "auto",
                 cmd_fifo_depth: int = 16):
        from .uart import UARTReceiver, UARTTransmitter
        self.chip = Chip(cfg, memory_kind=memory_kind, cmd_fifo_depth=cmd_fifo_depth)
        self.receiver, self.transmitter = UARTReceiver(divisor), UARTTransmitter(divisor)
        self.rx_fifo_depth = rx_fifo_depth
        super().__init__({
            "rx": In(1, init=1), "tx": Out(1, init=1),
            "rx_overflow": Out(COUNTER_WIDTH),
        })

    def elaborate(self, platform):
        m = Module()
        m.submodules.chip, chip = self.chip, self.chip
        m.submodules.uart_rx, m.submodules.uart_tx = self.receiver, self.transmitter
        m.submodules.rx_fifo = fifo = StreamFIFO(8, self.rx_fifo_depth)
        wiring.connect(m, self.receiver.o, fifo.i)
        wiring.connect(m, fifo.o, chip.i)
        m.d.comb += [
            self.receiver.rx.eq(self.rx), self.tx.eq(self.transmitter.tx),
            chip.uart_framing_errors.eq(self.receiver.framing_errors),
            chip.uart_overflows.eq(self.receiver.overflow),
            self.rx_overflow.eq(self.receiver.overflow),
        ]
        wiring.connect(m, chip.o, self.transmitter.i)
        return m
