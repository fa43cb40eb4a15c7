"""The plasticity unit: three-factor learning by read-modify-write of the core's synapse memory.

Implements `docs/plasticity.md` bit for bit (golden model: `spikefab.sim.plasticity`). The unit
is attached to a `LIFCore` built with `plastic=True`; it owns the learning state (mask memory with
the synapse memory's word layout, pre/post traces, accumulated factors, host factors, targets,
per-neuron factors P/D, registers, the LFSR) and, while the core's controller lets it
(`hooks.step.run`), the core's single synapse port (`syn`, `layouts.synapse_port_signature`).

Hooks from the core (`hooks`, `layouts.plasticity_hooks_signature`, joined to the core's with
`wiring.connect`): `step` runs the learning step; `event` an accepted input event; `tick` the
tick's update stage (spike, membrane sum, threshold, refractory flag of one neuron per cycle);
`config` a request of the LEARN config space, decoded in the cycle it is accepted (`ok` in that
cycle, read data `rdata` one cycle later); `clear` the core's CLEAR sweep.

Cycle cost of one learning step, added to the tick's: N + A + 5 + rows·(2·N/K + 4) cycles
(`learning_step_cycles`): a neuron pass of N + 2 cycles, one cycle per axon (trace update and
skip decision), and for each updated row one read and one write cycle per synapse word (the port
is single) plus 4 cycles to drain the update pipeline: a word is read, updated in four
registered stages and written back `ROW_LATENCY` = 5 cycles after its read, while the next
words' reads go on in the cycles between the writes. No back-pressure can stall it.
"""

from amaranth.hdl import Array, Cat, Const, Module, Mux, Signal, signed, unsigned
from amaranth.lib import data, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from spikefab.learning import (
    ERROR_ACC_WIDTH,
    FACTOR_WIDTH,
    LFSR_JUMP,
    LFSR_WIDTH,
    MAX_SHIFT,
    NEURON_FACTOR_WIDTH,
    Q_WIDTH,
    READ_ONLY,
    REGION_SHIFT,
    TRACE_DECAY_BITS,
    TRACE_MAX,
    TRACE_WIDTH,
    FactorMode,
    PostMode,
    PreMode,
    Reg,
    Region,
    plastic_config_error,
    register_width,
)
from spikefab.learning import lfsr_jump as model_lfsr_jump
from spikefab.spec import CoreConfig

from .arith import saturate
from .layouts import (
    CONFIG_ADDR_WIDTH,
    config_data_width,
    factor_layout,
    plasticity_hooks_signature,
    synapse_port_signature,
    synapse_word_bits,
)

__all__ = ["PlasticityUnit", "ROW_LATENCY", "lfsr_jump", "learning_step_cycles", "register_ok"]

#: Cycles from a synapse word's read to its write-back in a row sweep: odd, so that with one
#: read every other cycle the writes fall between the reads on the single port.
ROW_LATENCY = 5


def learning_step_cycles(cfg: CoreConfig, rows: int) -> int:
    """Cycles an enabled learning step adds to a tick when it updates `rows` synapse rows.

    N + A + 5 + rows * (2 * N/K + 4): the neuron pass (N + 2), one cycle per axon, one read and
    one write cycle per synapse word of an updated row plus ROW_LATENCY - 1 = 4 to drain the
    update pipeline (the last word is written ROW_LATENCY cycles after its read; that cycle also
    resumes the axon pass), and the hand-over to and from the core's controller.
    """
    return (cfg.n_neurons + cfg.n_axons + 5 +
            rows * (2 * cfg.words_per_axon + ROW_LATENCY - 1))


def lfsr_jump(state, steps: int = LFSR_JUMP):
    """The LFSR advanced by `steps` single steps, as a sparse XOR network.

    The jump is linear over GF(2): new bit i is the XOR of the old bits b whose image
    `spikefab.learning.lfsr_jump(2**b, steps)` has bit i set.
    """
    columns = [model_lfsr_jump(1 << b, steps) for b in range(LFSR_WIDTH)]
    bits = []
    for i in range(LFSR_WIDTH):
        terms = [state[b] for b in range(LFSR_WIDTH) if columns[b] >> i & 1]
        bits.append(Cat(*terms).xor() if terms else Const(0))
    return Cat(*bits)


def register_ok(cfg: CoreConfig, index, wdata, seed_lo):
    """Whether writing `wdata` to learning register `index` is allowed, as logic: the twin of
    `spikefab.learning.check_register` (`seed_lo`: the SEED_LO a SEED_HI write pairs with).
    Shared by the unit's config port and the chip's request validation."""
    ww = cfg.weight_width
    checks = {
        Reg.POST_MODE: wdata != 3, Reg.FACTOR_MODE: wdata != 3, Reg.M_UNIT: wdata != 0x80,
        Reg.SHIFT: wdata <= MAX_SHIFT,
        Reg.BOUNDS: wdata[:ww].as_signed() <= wdata[ww:2 * ww].as_signed(),
        Reg.X_DECAY: wdata <= 1 << TRACE_DECAY_BITS,
        Reg.Y_DECAY: wdata <= 1 << TRACE_DECAY_BITS,
        Reg.PERIOD: wdata != 0,
        Reg.SEED_HI: Cat(seed_lo, wdata) != 0,
    }
    ok = Const(0)
    for reg in Reg:
        if reg not in READ_ONLY:
            fits = (wdata >> register_width(cfg, reg)) == 0
            ok = Mux(index == reg, fits & checks.get(reg, Const(1)), ok)
    return ok


def _trace_update(trace, decay, spike, inc):
    decayed = (trace * decay) >> TRACE_DECAY_BITS
    total = decayed + Mux(spike, inc, 0)
    return Mux(total > TRACE_MAX, TRACE_MAX, total)[:TRACE_WIDTH]


class PlasticityUnit(wiring.Component):
    """See the module docstring for the ports' protocol and the cycle cost."""

    def __init__(self, cfg: CoreConfig):
        problem = plastic_config_error(cfg)
        if problem:
            raise ValueError(problem)
        if config_data_width(cfg) < 16:
            raise ValueError("a plastic core's config data must be at least 16 bits wide")
        self.cfg = cfg
        super().__init__({
            "hooks": In(plasticity_hooks_signature(cfg)),
            "syn": Out(synapse_port_signature(cfg)),
        })

    def elaborate(self, platform):
        m = Module()
        cfg = self.cfg
        n, a, k, words = cfg.n_neurons, cfg.n_axons, cfg.weights_per_word, cfg.words_per_axon
        ww = cfg.weight_width
        word_bits = synapse_word_bits(cfg)

        # Memories (every one but the synapse memory has its own read and write port) --------
        def memory(name, shape, depth):
            mem = Memory(shape=shape, depth=depth, init=[])
            m.submodules[name] = mem
            return mem.read_port(), mem.write_port()

        mask_rd, mask_wr = memory("mask", unsigned(k), a << word_bits)
        x_rd, x_wr = memory("pre_trace", unsigned(TRACE_WIDTH), a)
        s_rd, s_wr = memory("pre_spike", unsigned(1), a)
        y_rd, y_wr = memory("post_trace", unsigned(TRACE_WIDTH), n)
        u_rd, u_wr = memory("error_acc", signed(ERROR_ACC_WIDTH), n)
        h_rd, h_wr = memory("host_factor", signed(FACTOR_WIDTH), n)
        t_rd, t_wr = memory("target", unsigned(1), n)
        flag_layout = data.StructLayout({"spike": 1, "window": 1})
        f_rd, f_wr = memory("tick_flags", flag_layout, n)
        fact = [memory(f"factors{lane}", factor_layout(), words) for lane in range(k)]

        # Registers --------------------------------------------------------------------------
        # Every writable register, as wide as `spikefab.learning.register_width` says; M_UNIT
        # is signed; the power-up values are the golden model's.
        inits = {Reg.BOUNDS: (1 << (ww - 1)) | (((1 << (ww - 1)) - 1) << ww),
                 Reg.PERIOD: 1, Reg.SEED_LO: 1}
        regs = {reg: Signal(signed(register_width(cfg, reg)) if reg == Reg.M_UNIT
                            else register_width(cfg, reg),
                            name=reg.name.lower(), init=inits.get(reg, 0))
                for reg in Reg if reg not in READ_ONLY}
        lfsr = Signal(LFSR_WIDTH, init=1)
        epoch = Signal(register_width(cfg, Reg.EPOCH))
        enable, shift = regs[Reg.ENABLE], regs[Reg.SHIFT]
        w_min = regs[Reg.BOUNDS][:ww].as_signed()
        w_max = regs[Reg.BOUNDS][ww:].as_signed()
        m_unit, period = regs[Reg.M_UNIT], regs[Reg.PERIOD]
        apply_step = epoch == period - 1
        m.d.comb += self.hooks.step.enabled.eq(enable)

        # Hooks: events and the tick --------------------------------------------------------
        with m.If(self.hooks.event.valid & enable):
            m.d.comb += [s_wr.addr.eq(self.hooks.event.axon), s_wr.data.eq(1), s_wr.en.eq(1)]
        # The tick's results come from the end of the core's update stage: register them before
        # the window test rather than lengthen the core's path (the flags are written a cycle
        # later, long before the neuron pass reads them).
        tick = self.hooks.tick
        tk = {name: Signal.like(getattr(tick, name), name=f"tk_{name}_r")
              for name in tick.signature.members}
        m.d.sync += [reg.eq(getattr(tick, name)) for name, reg in tk.items()]
        diff = tk["v_sum"] - tk["threshold"]
        in_window = ~tk["refractory"] & (Mux(diff < 0, -diff, diff) <= regs[Reg.WINDOW])
        with m.If(tk["valid"]):
            m.d.comb += [f_wr.addr.eq(tk["neuron"]), f_wr.data.spike.eq(tk["spike"]),
                         f_wr.data.window.eq(in_window), f_wr.en.eq(1)]

        # CLEAR: zero traces, spike bits, accumulators, host inputs -------------------------
        with m.If(self.hooks.clear.valid):
            with m.If(self.hooks.clear.addr < a):
                m.d.comb += [x_wr.addr.eq(self.hooks.clear.addr), x_wr.data.eq(0), x_wr.en.eq(1),
                             s_wr.addr.eq(self.hooks.clear.addr), s_wr.data.eq(0), s_wr.en.eq(1)]
            with m.If(self.hooks.clear.addr < n):
                for wr in (y_wr, u_wr, h_wr, t_wr):
                    m.d.comb += [wr.addr.eq(self.hooks.clear.addr), wr.data.eq(0), wr.en.eq(1)]
            m.d.sync += epoch.eq(0)

        self._config(m, cfg, regs, lfsr, epoch, mask_rd, mask_wr, x_rd, x_wr, s_rd, s_wr,
                     y_rd, y_wr, u_rd, u_wr, h_rd, h_wr, t_rd, t_wr)

        # Neuron pass: stage 1 computes neuron ln1's factors from the words read for it -----
        ln = Signal(range(n))
        ln_valid1, ln_word1, ln_lane1 = Signal(), Signal(range(words)), Signal(range(k))
        ln_word, ln_lane = Signal(range(words)), Signal(range(k))
        ln1 = Signal(range(n))
        any_factor = Signal()
        spike, window = f_rd.data.spike, f_rd.data.window
        y_new = Signal(TRACE_WIDTH)
        m.d.comb += y_new.eq(_trace_update(y_rd.data, regs[Reg.Y_DECAY], spike, regs[Reg.Y_INC]))
        target = t_rd.data[0]
        m_raw = Signal(signed(FACTOR_WIDTH + 1))
        with m.Switch(regs[Reg.FACTOR_MODE]):
            with m.Case(FactorMode.ONE):
                m.d.comb += m_raw.eq(m_unit)
            with m.Case(FactorMode.HOST):
                m.d.comb += m_raw.eq(h_rd.data)
            with m.Default():
                m.d.comb += m_raw.eq(Mux(target & ~spike, m_unit,
                                         Mux(~target & spike, -m_unit, 0)))
        u_sum = Signal(signed(ERROR_ACC_WIDTH))
        applies = Signal()
        m_eff = Signal(signed(FACTOR_WIDTH))
        m.d.comb += [
            u_sum.eq(saturate(u_rd.data + m_raw, ERROR_ACC_WIDTH)),
            applies.eq(apply_step & (Mux(u_sum < 0, -u_sum, u_sum) >= regs[Reg.THRESHOLD])),
            m_eff.eq(Mux(applies, saturate(u_sum, FACTOR_WIDTH), 0)),
        ]
        post = Signal(TRACE_WIDTH)
        with m.Switch(regs[Reg.POST_MODE]):
            with m.Case(PostMode.SURROGATE):
                m.d.comb += post.eq(window)
            with m.Case(PostMode.SPIKE):
                m.d.comb += post.eq(spike)
            with m.Default():
                m.d.comb += post.eq(y_new)
        m.d.sync += ln_valid1.eq(0)
        with m.If(ln_valid1):
            m.d.comb += [
                y_wr.addr.eq(ln1), y_wr.data.eq(y_new), y_wr.en.eq(1),
                u_wr.addr.eq(ln1), u_wr.data.eq(Mux(applies, 0, u_sum)), u_wr.en.eq(1),
                h_wr.addr.eq(ln1), h_wr.data.eq(0), h_wr.en.eq(1),
                t_wr.addr.eq(ln1), t_wr.data.eq(0), t_wr.en.eq(1),
            ]
            # P and D are exact products (|m| <= 128, traces <= 255), so they are nonzero exactly
            # when both operands are: no need to wait for stage 2's multipliers.
            with m.If((m_eff != 0) & ((post != 0) | (regs[Reg.DEPRESSION] & (y_new != 0)))):
                m.d.sync += any_factor.eq(1)

        # Stage 2 multiplies P = m * post and D = m * y and writes them to the factor memories
        # (the last neuron's in the first AXON cycle, before any row sweep reads them).
        ln_valid2, ln_word2, ln_lane2 = Signal(), Signal(range(words)), Signal(range(k))
        m_eff2, post2, y_new2 = Signal.like(m_eff), Signal.like(post), Signal.like(y_new)
        m.d.sync += [ln_valid2.eq(ln_valid1), ln_word2.eq(ln_word1), ln_lane2.eq(ln_lane1),
                     m_eff2.eq(m_eff), post2.eq(post), y_new2.eq(y_new)]
        factor = Signal(factor_layout())
        m.d.comb += [factor.p.eq(m_eff2 * post2),
                     factor.d.eq(Mux(regs[Reg.DEPRESSION], m_eff2 * y_new2, 0))]
        with m.If(ln_valid2):
            for lane, (_, wr) in enumerate(fact):
                m.d.comb += [wr.addr.eq(ln_word2), wr.data.eq(factor),
                             wr.en.eq(ln_lane2 == lane)]

        # Axon pass and row sweeps ------------------------------------------------------------
        axon = Signal(range(a))
        pre_r, spre_r = Signal(TRACE_WIDTH), Signal()
        x_new, pre = Signal(TRACE_WIDTH), Signal(TRACE_WIDTH)
        m.d.comb += [
            x_new.eq(_trace_update(x_rd.data, regs[Reg.X_DECAY], s_rd.data[0], regs[Reg.X_INC])),
            pre.eq(Mux(regs[Reg.PRE_MODE] == PreMode.SPIKE, s_rd.data[0], x_new)),
        ]
        row_active = (apply_step & any_factor &
                      ((pre != 0) | (regs[Reg.DEPRESSION] & s_rd.data[0])))

        # A row sweep reads word w in sweep cycle 2w and writes it back ROW_LATENCY cycles later
        # (an odd offset, so writes fall between reads and the single port never sees both).
        # valid[i]: the word read i cycles ago is in stage i of `_update_pipeline`.
        rd_word, wr_word = Signal(range(words)), Signal(range(words))
        all_read = Signal()
        valid = [Signal(name=f"sweep_valid{i}") for i in range(ROW_LATENCY + 1)]
        m.d.sync += [later.eq(earlier) for earlier, later in zip(valid, valid[1:])]
        new_word, any_write = self._update_pipeline(m, cfg, valid, lfsr, pre_r, spre_r, shift,
                                                    w_min, w_max, mask_rd, fact)

        def syn_address(word):
            return Cat(word[:word_bits], axon) if word_bits else axon

        def read_axon(index):
            m.d.comb += [x_rd.addr.eq(index), x_rd.en.eq(1), s_rd.addr.eq(index), s_rd.en.eq(1)]

        def next_axon():
            """On to the next axon, whose trace and spike bit AXON has already read."""
            with m.If(axon == a - 1):
                m.next = "FINISH"
            with m.Else():
                m.d.sync += axon.eq(axon + 1)
                m.next = "AXON"

        with m.FSM():
            with m.State("IDLE"):
                with m.If(self.hooks.step.run):
                    m.d.sync += [ln.eq(0), ln_word.eq(0), ln_lane.eq(0), any_factor.eq(0)]
                    m.next = "NEURONS"

            with m.State("NEURONS"):
                for rd in (y_rd, u_rd, h_rd, t_rd, f_rd):
                    m.d.comb += [rd.addr.eq(ln), rd.en.eq(1)]
                m.d.sync += [ln_valid1.eq(1), ln1.eq(ln), ln_word1.eq(ln_word),
                             ln_lane1.eq(ln_lane), ln.eq(ln + 1)]
                with m.If(ln_lane == k - 1):
                    m.d.sync += [ln_lane.eq(0), ln_word.eq(ln_word + 1)]
                with m.Else():
                    m.d.sync += ln_lane.eq(ln_lane + 1)
                with m.If(ln == n - 1):
                    m.next = "NEURONS_END"

            with m.State("NEURONS_END"):        # the last neuron's stage 1 (its stage 2: AXON)
                read_axon(0)
                m.d.sync += axon.eq(0)
                m.next = "AXON"

            with m.State("AXON"):
                # x_rd/s_rd hold axon `axon`: update its trace, decide whether to sweep its row.
                # The next axon is read whatever the decision (SWEEP holds x_rd and s_rd, so
                # they still show it afterwards): the decision, a multiply and an add deep, then
                # only picks the next state.
                read_axon(Mux(axon == a - 1, 0, axon + 1))
                m.d.comb += [x_wr.addr.eq(axon), x_wr.data.eq(x_new), x_wr.en.eq(1),
                             s_wr.addr.eq(axon), s_wr.data.eq(0), s_wr.en.eq(1)]
                m.d.sync += [pre_r.eq(pre), spre_r.eq(s_rd.data[0]),
                             rd_word.eq(0), wr_word.eq(0), all_read.eq(0)]
                with m.If(row_active):
                    m.next = "SWEEP"
                with m.Else():
                    next_axon()

            with m.State("SWEEP"):
                # Hold the next axon's trace and spike bit (a read port's `en` is 1 by default).
                m.d.comb += [x_rd.en.eq(0), s_rd.en.eq(0)]
                with m.If(~all_read & ~valid[1]):
                    m.d.comb += [valid[0].eq(1), self.syn.addr.eq(syn_address(rd_word)),
                                 self.syn.r_en.eq(1),
                                 mask_rd.addr.eq(syn_address(rd_word)), mask_rd.en.eq(1)]
                    for rd, _ in fact:
                        m.d.comb += [rd.addr.eq(rd_word), rd.en.eq(1)]
                    m.d.sync += rd_word.eq(rd_word + 1)
                    with m.If(rd_word == words - 1):
                        m.d.sync += all_read.eq(1)
                with m.If(valid[ROW_LATENCY]):
                    m.d.comb += [self.syn.addr.eq(syn_address(wr_word)),
                                 self.syn.w_data.eq(new_word), self.syn.w_en.eq(any_write)]
                    m.d.sync += wr_word.eq(wr_word + 1)
                    with m.If(wr_word == words - 1):     # the row's last write
                        next_axon()

            with m.State("FINISH"):
                m.d.sync += epoch.eq(Mux(apply_step, 0, epoch + 1))
                m.next = "DONE"

            with m.State("DONE"):
                m.d.comb += self.hooks.step.done.eq(1)
                with m.If(~self.hooks.step.run):
                    m.next = "IDLE"
        return m

    def _update_pipeline(self, m, cfg, valid, lfsr, pre, spre, shift, w_min, w_max, mask_rd,
                         fact):
        """Update the K weights of a word in four registered stages; return the write stage's
        new word and whether any lane of it changed (`valid[ROW_LATENCY]`: write it).

        Stage 1 (`valid[1]`: the synapse, mask and factor memories show the word read a cycle
        ago): the products P·pre and the selected D; the old word and the mask bits are held,
        since the next read replaces the memories' outputs. Stage 2: q = P·pre − s·D and which
        lanes consume rounding bits; the LFSR's 1..K-jump images of its current state (the
        state after the previous word's stage 3, which runs 2 cycles earlier). Stage 3: each
        consuming lane's rounding bits (lane l takes the image after the jumps of the consuming
        lanes before it), the rounded shift, and the LFSR advance. Stage 4: add to the old
        weight and clamp. Each stage's longest path is one multiply, or one add with a shift
        or a compare.
        """
        ww, k = cfg.weight_width, cfg.weights_per_word

        def stage(name, shape, value):
            """A pipeline register loaded with `value` every cycle."""
            reg = Signal(shape, name=name)
            m.d.sync += reg.eq(value)
            return reg

        def wire(name, shape, value):
            sig = Signal(shape, name=name)
            m.d.comb += sig.eq(value)
            return sig

        # Registers are named after the stage that reads them.
        old2 = stage("old2", len(self.syn.r_data), self.syn.r_data)
        mask2 = stage("mask2", k, mask_rd.data)
        old3 = stage("old3", len(old2), old2)
        # The LFSR after 0..K jumps; it only changes in stage 3, two cycles apart, so stage 2
        # sees the state stage 3 starts from.
        after = Array([lfsr] + [stage(f"lfsr_jumped{j}_3", LFSR_WIDTH,
                                      lfsr_jump(lfsr, LFSR_JUMP * j)) for j in range(1, k + 1)])
        old4 = stage("old4", len(old3), old3)
        round_mask = wire("round_mask", MAX_SHIFT, (Const(1, MAX_SHIFT + 1) << shift) - 1)
        consumed = Const(0, range(k + 1))     # stage 3: consuming lanes before this one
        weights, any_write = [], Const(0)
        for lane, (rd, _) in enumerate(fact):
            factor = rd.data
            product2 = stage(f"product{lane}_2", signed(Q_WIDTH), factor.p * pre)
            d_sel2 = stage(f"d_sel{lane}_2", signed(NEURON_FACTOR_WIDTH),
                           Mux(spre, factor.d, 0))
            # q, the rounded delta and the new weight, with headroom over Q_WIDTH.
            q = wire(f"q{lane}", signed(Q_WIDTH + 2), product2 - d_sel2)
            q3 = stage(f"q{lane}_3", signed(Q_WIDTH + 2), q)
            consume3 = stage(f"consume{lane}_3", 1, mask2[lane] & (q != 0))
            jumped = wire(f"jumped{lane}", LFSR_WIDTH, after[consumed + 1])
            rounding = (jumped & round_mask)[:MAX_SHIFT]
            delta4 = stage(f"delta{lane}_4", signed(Q_WIDTH + 3), (q3 + rounding) >> shift)
            consume4 = stage(f"consume{lane}_4", 1, consume3)
            consumed = consumed + consume3
            old = old4.word_select(lane, ww).as_signed()
            total = wire(f"total{lane}", signed(Q_WIDTH + 4), old + delta4)
            clamped = Signal(signed(ww), name=f"clamped{lane}")
            m.d.comb += clamped.eq(self.clamp(total, w_min, w_max))
            weights.append(Mux(consume4, clamped, old)[:ww])
            any_write = any_write | consume4
        with m.If(valid[3]):
            m.d.sync += lfsr.eq(after[consumed])
        new_word = stage("new_word", len(self.syn.w_data), Cat(*weights))
        return new_word, stage("any_write", 1, any_write)

    def clamp(self, total, w_min, w_max):
        """Return `total` (a weight plus its update) limited to [w_min, w_max], as logic."""
        return Mux(total < w_min, w_min, Mux(total > w_max, w_max, total))

    def _config(self, m, cfg, regs, lfsr, epoch, mask_rd, mask_wr, x_rd, x_wr, s_rd, s_wr,
                y_rd, y_wr, u_rd, u_wr, h_rd, h_wr, t_rd, t_wr):
        """Decode a LEARN-space request in its acceptance cycle; read data follows one later."""
        word_bits = synapse_word_bits(cfg)
        region = self.hooks.config.addr[REGION_SHIFT:]
        index = self.hooks.config.addr[:REGION_SHIFT]
        wdata = self.hooks.config.data
        write = self.hooks.config.valid & self.hooks.config.write
        read = self.hooks.config.valid & ~self.hooks.config.write
        ok = Signal()
        neuron_ok, axon_ok = index < cfg.n_neurons, index < cfg.n_axons
        syn_axon, syn_word = index[word_bits:], index[:word_bits]
        synapse_ok = (syn_axon < cfg.n_axons) & (syn_word < cfg.words_per_axon)
        region_r, index_r = Signal(CONFIG_ADDR_WIDTH - REGION_SHIFT), Signal(REGION_SHIFT)
        with m.If(self.hooks.config.valid):
            m.d.sync += [region_r.eq(region), index_r.eq(index)]

        def port(rd, wr, data):
            m.d.comb += [rd.addr.eq(index), rd.en.eq(read & ok),
                         wr.addr.eq(index), wr.data.eq(data), wr.en.eq(write & ok)]

        with m.Switch(region):
            with m.Case(Region.REGISTERS):
                m.d.comb += ok.eq(Mux(self.hooks.config.write,
                                      register_ok(cfg, index, wdata, regs[Reg.SEED_LO]),
                                      index < len(Reg)))
                with m.If(write & ok):
                    with m.Switch(index):
                        for reg, sig in regs.items():
                            with m.Case(reg):
                                m.d.sync += sig.eq(wdata)
                    with m.If(index == Reg.SEED_HI):
                        m.d.sync += lfsr.eq(Cat(regs[Reg.SEED_LO], wdata[:16]))
                    with m.If(index == Reg.PERIOD):
                        m.d.sync += epoch.eq(0)
            with m.Case(Region.MASK):
                m.d.comb += ok.eq(synapse_ok)
                port(mask_rd, mask_wr, wdata)
            with m.Case(Region.FACTOR):
                m.d.comb += ok.eq(neuron_ok)
                port(h_rd, h_wr, wdata[:FACTOR_WIDTH])
            with m.Case(Region.TARGET):
                m.d.comb += ok.eq(neuron_ok & (wdata >> 1 == 0))
                port(t_rd, t_wr, wdata[:1])
            with m.Case(Region.PRE_TRACE):
                m.d.comb += ok.eq(axon_ok & (wdata >> (TRACE_WIDTH + 1) == 0))
                port(x_rd, x_wr, wdata[:TRACE_WIDTH])
                port(s_rd, s_wr, wdata[TRACE_WIDTH])
            with m.Case(Region.POST_TRACE):
                m.d.comb += ok.eq(neuron_ok & (wdata >> TRACE_WIDTH == 0))
                port(y_rd, y_wr, wdata[:TRACE_WIDTH])
            with m.Case(Region.ERROR_ACC):
                m.d.comb += ok.eq(neuron_ok & (wdata >> ERROR_ACC_WIDTH == 0))
                port(u_rd, u_wr, wdata[:ERROR_ACC_WIDTH])
        m.d.comb += self.hooks.config.ok.eq(ok)

        reg_value = Signal(32)
        with m.Switch(index_r):
            for reg, sig in regs.items():
                with m.Case(reg):
                    m.d.comb += reg_value.eq(sig.as_unsigned())
            with m.Case(Reg.LFSR_LO):
                m.d.comb += reg_value.eq(lfsr[:16])
            with m.Case(Reg.LFSR_HI):
                m.d.comb += reg_value.eq(lfsr[16:])
            with m.Case(Reg.EPOCH):
                m.d.comb += reg_value.eq(epoch)
        with m.Switch(region_r):
            with m.Case(Region.REGISTERS):
                m.d.comb += self.hooks.config.rdata.eq(reg_value)
            with m.Case(Region.MASK):
                m.d.comb += self.hooks.config.rdata.eq(mask_rd.data)
            with m.Case(Region.FACTOR):
                m.d.comb += self.hooks.config.rdata.eq(h_rd.data.as_unsigned())
            with m.Case(Region.TARGET):
                m.d.comb += self.hooks.config.rdata.eq(t_rd.data)
            with m.Case(Region.PRE_TRACE):
                m.d.comb += self.hooks.config.rdata.eq(Cat(x_rd.data, s_rd.data))
            with m.Case(Region.POST_TRACE):
                m.d.comb += self.hooks.config.rdata.eq(y_rd.data)
            with m.Case(Region.ERROR_ACC):
                m.d.comb += self.hooks.config.rdata.eq(u_rd.data.as_unsigned())
