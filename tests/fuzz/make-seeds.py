#!/usr/bin/env python3
"""Write the seed inputs of the fuzz targets into tests/fuzz/corpus/ (rerun after format changes).

Each seed is a well-formed driver session, so the fuzzer starts from deep inside the state
machines instead of having to discover the init sequence on its own.
"""
import os
import struct

HERE = os.path.dirname(os.path.abspath(__file__))


def mmio_op(write, width, off, val):
    """One fuzz_virtio_mmio operation: {op, width code, offset le16, value le32}."""
    code = {1: 0, 2: 1, 4: 2, 8: 3}[width]
    return struct.pack("<BBHI", 1 if write else 0, code, off, val & 0xFFFFFFFF)


def w(off, val):
    return mmio_op(True, 4, off, val)


def r(off):
    return mmio_op(False, 4, off, 0)


def driver_init(queue_num=16, desc=0x1000, avail=0x2000, used=0x3000, features_hi=1):
    """ACK, DRIVER, features (VERSION_1), FEATURES_OK, queue 0 set up, DRIVER_OK."""
    return b"".join([
        w(0x070, 1), w(0x070, 3),
        w(0x014, 0), r(0x010), w(0x014, 1), r(0x010),
        w(0x024, 0), w(0x020, 0), w(0x024, 1), w(0x020, features_hi),
        w(0x070, 11), r(0x070),
        w(0x030, 0), r(0x034), w(0x038, queue_num),
        w(0x080, desc), w(0x084, 0), w(0x090, avail), w(0x094, 0), w(0x0a0, used), w(0x0a4, 0),
        w(0x044, 1), w(0x070, 15),
    ])


# ---- fuzz_virtq_blk and fuzz_virtq: guest RAM with rings and virtio-blk requests ----

DESC, AVAIL, USED = 0x0000, 0x0100, 0x0200  # room for a queue of 16 entries
AVAIL32, USED32 = 0x0600, 0x0700  # for a queue of 32: its descriptor table reaches 0x200
T_IN, T_OUT, T_FLUSH, T_GET_ID, T_DISCARD, T_WRITE_ZEROES = 0, 1, 4, 8, 11, 13
F_NEXT, F_WRITE = 1, 2


class Ram:
    """Guest RAM from gpa 0 as a fuzz input carries it: only as long as the bytes written."""

    def __init__(self):
        self.b = bytearray()

    def put(self, gpa, data):
        if len(self.b) < gpa + len(data):
            self.b.extend(bytes(gpa + len(data) - len(self.b)))
        self.b[gpa:gpa + len(data)] = data


def hdr_gpa(s):
    return 0x300 + 16 * s


def status_gpa(s):
    return 0x400 + s


def seg_gpa(s):
    return 0x500 + 16 * s


def data_gpa(s):
    return 0x1000 + 0x400 * s


def rings(chains, qlog=4, event_idx=True, avail_flags=0, used_event=0, descs=None, heads=None,
          desc=DESC, avail=AVAIL):
    """Descriptor table and avail ring: each chain a list of (gpa, len, writable) buffers laid
    out from descriptor 0 on; or raw `descs` (gpa, len, flags, next) with explicit `heads`."""
    qsize = 1 << qlog
    ram = Ram()
    if descs is None:
        descs, heads = [], []
        for chain in chains:
            heads.append(len(descs))
            for i, (gpa, ln, wr) in enumerate(chain):
                flags = (F_WRITE if wr else 0) | (F_NEXT if i + 1 < len(chain) else 0)
                descs.append((gpa, ln, flags, (len(descs) + 1) % qsize))
    for i, d in enumerate(descs):
        ram.put(desc + 16 * i, struct.pack("<QIHH", *d))
    ram.put(avail, struct.pack("<HH", avail_flags, 0))
    for k, h in enumerate(heads):
        ram.put(avail + 4 + 2 * (k % qsize), struct.pack("<H", h))
    if event_idx:
        ram.put(avail + 4 + 2 * qsize, struct.pack("<H", used_event))
    return ram, len(heads)


def req(ram, s, typ, sector=0):
    """A request header in slot s; the status byte preset to 0xff."""
    ram.put(hdr_gpa(s), struct.pack("<IIQ", typ, 0, sector))
    ram.put(status_gpa(s), b"\xff")


def simple(s, typ, data_len=0, writable=True):
    c = [(hdr_gpa(s), 16, False)]
    if data_len:
        c.append((data_gpa(s), data_len, writable))
    return c + [(status_gpa(s), 1, True)]


def all_requests():
    """One of each request type, well-formed: IN, OUT, FLUSH, GET_ID, DISCARD, WRITE_ZEROES."""
    chains = [
        simple(0, T_IN, 1024),
        simple(1, T_OUT, 512, writable=False),
        simple(2, T_FLUSH),
        simple(3, T_GET_ID, 20),
        [(hdr_gpa(4), 16, False), (seg_gpa(4), 16, False), (status_gpa(4), 1, True)],
        [(hdr_gpa(5), 16, False), (seg_gpa(5), 16, False), (status_gpa(5), 1, True)],
    ]
    return chains


def fill_requests(ram):
    req(ram, 0, T_IN, 3)
    req(ram, 1, T_OUT, 5)
    ram.put(data_gpa(1), bytes((i * 7) & 0xFF for i in range(512)))
    req(ram, 2, T_FLUSH)
    req(ram, 3, T_GET_ID)
    req(ram, 4, T_DISCARD)
    ram.put(seg_gpa(4), struct.pack("<QII", 8, 8, 0))
    req(ram, 5, T_WRITE_ZEROES)
    ram.put(seg_gpa(5), struct.pack("<QII", 16, 8, 1))


def blk_input(ram, navail, qlog=4, event_idx=True, desc=DESC, avail=AVAIL, used=USED):
    """fuzz_virtq_blk: {flags, qlog, navail, desc, avail, used} then RAM."""
    return struct.pack("<BBHIII", int(event_idx), qlog, navail, desc, avail, used) + bytes(ram.b)


OP_POP, OP_PUSH, OP_READ, OP_WRITE, OP_NEED_IRQ, OP_ENABLE_NOTIFY, OP_PUBLISH, OP_BEGIN_PASS, \
    OP_POKE = range(9)


def vq_input(ram, navail, ops, qlog=4, event_idx=True, desc=DESC, avail=AVAIL, used=USED):
    """fuzz_virtq: the same header, 16 operations {kind, a, le16 b}, then RAM."""
    ops = list(ops) + [(OP_NEED_IRQ, 0, 0)] * (16 - len(ops))
    assert len(ops) == 16
    return (struct.pack("<BBHIII", int(event_idx), qlog, navail, desc, avail, used) +
            b"".join(struct.pack("<BBH", *o) for o in ops) + bytes(ram.b))


def blk_seeds():
    t = "fuzz_virtq_blk"
    ram, n = rings(all_requests(), qlog=5, avail=AVAIL32)
    fill_requests(ram)
    save(t, "all-types", blk_input(ram, n, qlog=5, avail=AVAIL32, used=USED32))
    ram, n = rings(all_requests(), qlog=5, event_idx=False, avail_flags=1, avail=AVAIL32)
    fill_requests(ram)
    save(t, "all-types-no-event-idx",
         blk_input(ram, n, qlog=5, event_idx=False, avail=AVAIL32, used=USED32))
    ram, n = rings([simple(0, T_IN, 1024), simple(1, T_OUT, 512, writable=False)])
    fill_requests(ram)
    save(t, "in-out", blk_input(ram, n))
    ram, n = rings([simple(2, T_FLUSH), simple(3, T_GET_ID, 20), simple(6, 99)])
    fill_requests(ram)
    req(ram, 6, 99)
    save(t, "flush-getid-unsupp", blk_input(ram, n))
    # A loop: descriptor 1 points back to 0. The device must refuse it, not spin.
    ram, n = rings(None, descs=[(hdr_gpa(0), 16, F_NEXT, 1),
                                (status_gpa(0), 1, F_WRITE | F_NEXT, 0)], heads=[0])
    req(ram, 0, T_IN)
    save(t, "loop-chain", blk_input(ram, n))
    # A buffer across the boundary of the two RAM regions (0x10000).
    ram, n = rings([[(hdr_gpa(0), 16, False), (0xFFF0, 0x20, True)]])
    req(ram, 0, T_IN)
    save(t, "cross-region", blk_input(ram, n))
    # A read into region 1 in three buffers, the status byte in the last.
    ram, n = rings([[(hdr_gpa(0), 16, False), (0x10000, 512, True), (0x10400, 512, True),
                     (0x10800, 1, True)]])
    req(ram, 0, T_IN, 7)
    save(t, "region1-multi", blk_input(ram, n))
    ram, n = rings([[(hdr_gpa(0), 16, False), (data_gpa(0), 512, False)]])
    req(ram, 0, T_OUT)
    save(t, "no-status", blk_input(ram, n))
    ram, n = rings([simple(0, T_IN, 512)])
    req(ram, 0, T_IN)
    save(t, "too-many-available", blk_input(ram, 17))
    # 64 reads on a queue of 256 (rings moved apart to make room).
    chains = [[(0x3000 + 16 * s, 16, False), (0x8000 + 512 * s, 512, True),
               (0x2C00 + s, 1, True)] for s in range(64)]
    ram, n = rings(chains, qlog=8, desc=0x0, avail=0x1000)
    for s in range(64):
        ram.put(0x3000 + 16 * s, struct.pack("<IIQ", T_IN, 0, s))
    save(t, "queue256-64-reads", blk_input(ram, n, qlog=8, desc=0x0, avail=0x1000, used=0x1400))
    # A read whose data lands on the used ring: the device overwrites its own ring.
    ram, n = rings([[(hdr_gpa(0), 16, False), (USED, 512, True), (status_gpa(0), 1, True)]])
    req(ram, 0, T_IN)
    save(t, "read-over-used-ring", blk_input(ram, n))


def vq_seeds():
    t = "fuzz_virtq"
    ops = [(OP_POP, 0, 0), (OP_READ, 0, 16), (OP_WRITE, 0, 1025), (OP_PUSH, 0, 1025),
           (OP_NEED_IRQ, 0, 0), (OP_ENABLE_NOTIFY, 0, 0), (OP_POP, 0, 0), (OP_READ, 8, 520),
           (OP_PUSH, 0, 1), (OP_POP, 0, 0), (OP_WRITE, 0, 1), (OP_PUSH, 0, 1),
           (OP_NEED_IRQ, 0, 0), (OP_PUBLISH, 1, 0), (OP_POP, 0, 0), (OP_ENABLE_NOTIFY, 0, 0)]
    ram, n = rings(all_requests(), qlog=5, avail=AVAIL32)
    fill_requests(ram)
    save(t, "pop-push", vq_input(ram, 3, ops, qlog=5, avail=AVAIL32, used=USED32))
    ram, n = rings(all_requests(), qlog=5, event_idx=False, avail=AVAIL32)
    fill_requests(ram)
    save(t, "pop-push-no-event-idx",
         vq_input(ram, 3, ops, qlog=5, event_idx=False, avail=AVAIL32, used=USED32))
    ram, n = rings(None, descs=[(hdr_gpa(0), 16, F_NEXT, 1),
                                (status_gpa(0), 1, F_WRITE | F_NEXT, 0)], heads=[0])
    save(t, "loop-chain", vq_input(ram, n, [(OP_POP, 0, 0), (OP_PUSH, 0, 1)]))
    # Region 1 starts at 0x4000 here. Chain 2 crosses into it until the driver shortens it,
    # is served, then made to cross again.
    ram, n = rings([[(hdr_gpa(0), 16, False), (0x4000, 0x20, True)],
                    [(hdr_gpa(1), 16, False), (0x3FF0, 0x20, True)]])
    ram.put(AVAIL + 4, struct.pack("<HHH", 0, 2, 2))
    b_len = DESC + 16 * 3 + 8
    save(t, "cross-region-poke", vq_input(ram, 1, [
        (OP_POP, 0, 0), (OP_WRITE, 0, 0x20), (OP_PUSH, 0, 0x20), (OP_PUBLISH, 1, 0),
        (OP_POKE, 0x10, b_len), (OP_POP, 0, 0), (OP_WRITE, 0, 0x10), (OP_PUSH, 0, 0x10),
        (OP_POKE, 0x20, b_len), (OP_PUBLISH, 1, 0), (OP_POP, 0, 0), (OP_PUSH, 0, 1)]))
    # A queue of 4: a whole pass spends the budget; refused pushes; too much made available.
    ram, n = rings(None, descs=[(hdr_gpa(0), 16, F_NEXT, 1), (status_gpa(0), 1, F_WRITE, 0),
                                (hdr_gpa(1), 16, F_NEXT, 3), (status_gpa(1), 1, F_WRITE, 0)],
                   heads=[0, 2, 0, 2], qlog=2)
    save(t, "budget", vq_input(ram, 4, [(OP_POP, 0, 0)] * 4 + [(OP_PUSH, 0, 1)] * 2 + [
        (OP_PUBLISH, 4, 0), (OP_POP, 0, 0), (OP_BEGIN_PASS, 0, 0), (OP_POP, 0, 0),
        (OP_PUSH, 0, 1), (OP_PUSH, 0x85, 1), (OP_ENABLE_NOTIFY, 0, 0), (OP_PUBLISH, 0x80, 40),
        (OP_POP, 0, 0), (OP_PUSH, 0, 1)], qlog=2))
    save(t, "misplaced", vq_input(Ram(), 0, [], desc=0x8))


# ---- fuzz_virtio_net: rx and tx rings in RAM, host frames through the socketpair ----

NRX_DESC, NRX_AVAIL, NRX_USED = 0x0000, 0x0100, 0x0200  # queues of 16 entries
NTX_DESC, NTX_AVAIL, NTX_USED = 0x0400, 0x0500, 0x0600
NTX_BUF, NRX_BUF, NFRAME_SRC = 0x1000, 0x4000, 0x8000
R_EVENT_IDX, R_MRG_RXBUF, R_GUEST_CSUM = 1, 2, 4  # feature bits the driver refuses


def net_input(ram, rx_n, tx_n, frames=(), refuse=0, rx_qlog=4, tx_qlog=4):
    """{refuse, rx qlog, tx qlog, nframes, navail x2, rings x6, 8 x (len, src)} then RAM."""
    tab = list(frames) + [(0, 0)] * (8 - len(frames))
    return (struct.pack("<BBBBHH6I", refuse, rx_qlog, tx_qlog, len(frames), rx_n, tx_n,
                        NRX_DESC, NRX_AVAIL, NRX_USED, NTX_DESC, NTX_AVAIL, NTX_USED) +
            b"".join(struct.pack("<II", ln, src) for ln, src in tab) + bytes(ram.b))


def net_rings(rx_chains, tx_chains, rx_descs=None, rx_heads=None, tx_descs=None, tx_heads=None):
    """Both queues' rings in one RAM image, plus a frame source: a vnet header, then data."""
    ram, rx_n = rings(rx_chains, descs=rx_descs, heads=rx_heads, desc=NRX_DESC, avail=NRX_AVAIL)
    tx, tx_n = rings(tx_chains, descs=tx_descs, heads=tx_heads, desc=NTX_DESC, avail=NTX_AVAIL)
    ram.put(NTX_DESC, bytes(tx.b[NTX_DESC:]))
    ram.put(NFRAME_SRC, bytes(12) + bytes((i * 13 + 7) & 0xFF for i in range(2048)))
    return ram, rx_n, tx_n


def rx_bufs(count, size, gpa=NRX_BUF):
    return [[(gpa + size * i, size, True)] for i in range(count)]


def net_seeds():
    t = "fuzz_virtio_net"
    # One small frame to send (header and payload in two buffers), two rx buffers idle.
    ram, rx_n, tx_n = net_rings(rx_bufs(2, 2048),
                                [[(NTX_BUF, 12, False), (NTX_BUF + 0x100, 60, False)]])
    ram.put(NTX_BUF + 0x100, bytes(range(60)))
    save(t, "tx-small", net_input(ram, rx_n, tx_n))
    # Mergeable rx buffers of 256 bytes: a 1000-byte frame spans four, a 60-byte one fits.
    ram, rx_n, tx_n = net_rings(rx_bufs(8, 256), [])
    save(t, "rx-mergeable", net_input(ram, rx_n, tx_n, [(1000, NFRAME_SRC), (72, NFRAME_SRC)]))
    # Without MRG_RXBUF: a frame, one shorter than the header, an oversize one, a frame.
    ram, rx_n, tx_n = net_rings(rx_bufs(4, 2048), [])
    save(t, "rx-single-short-oversize",
         net_input(ram, rx_n, tx_n, [(100, NFRAME_SRC), (5, NFRAME_SRC),
                                     (65563, NFRAME_SRC), (1500, NFRAME_SRC)],
                   refuse=R_MRG_RXBUF | R_EVENT_IDX))
    # A tx loop: descriptor 1 points back to 0. The device must refuse it, not spin.
    ram, rx_n, tx_n = net_rings(rx_bufs(1, 2048), None,
                                tx_descs=[(NTX_BUF, 12, F_NEXT, 1), (NTX_BUF + 0x100, 60, F_NEXT, 0)],
                                tx_heads=[0])
    save(t, "tx-loop-chain", net_input(ram, rx_n, tx_n, [(60, NFRAME_SRC)]))
    # An rx chain with a readable buffer (returned empty), then a good one.
    ram, rx_n, tx_n = net_rings([[(NRX_BUF, 64, False), (NRX_BUF + 0x100, 2048, True)],
                                 [(NRX_BUF + 0x1000, 2048, True)]], [])
    save(t, "rx-readable-buffer", net_input(ram, rx_n, tx_n, [(300, NFRAME_SRC)],
                                            refuse=R_MRG_RXBUF))
    # A checksum-offload frame (NEEDS_CSUM) with and without GUEST_CSUM, plus tx and rx at once.
    ram, rx_n, tx_n = net_rings(rx_bufs(4, 2048), [[(NTX_BUF, 200, False)]])
    ram.put(NFRAME_SRC, struct.pack("<BBHHHHH", 1, 0, 0, 0, 34, 16, 0))
    save(t, "csum-offload", net_input(ram, rx_n, tx_n, [(120, NFRAME_SRC)]))
    save(t, "csum-refused", net_input(ram, rx_n, tx_n, [(120, NFRAME_SRC)], refuse=R_GUEST_CSUM))
    # A 64 KiB frame into one chain of two 32 KiB buffers, one in each RAM region.
    ram, rx_n, tx_n = net_rings([[(0x18000, 0x8000, True), (0x20000, 0x8000, True)]], [])
    save(t, "rx-64k-two-regions", net_input(ram, rx_n, tx_n, [(0x10000, NFRAME_SRC)],
                                            refuse=R_MRG_RXBUF))


def save(target, name, data):
    d = os.path.join(HERE, "corpus", target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


# ---- fuzz_uart, fuzz_i8042: port operations as a driver does them ----

def uart_seeds():
    t = "fuzz_uart"
    op = lambda o, port, v: bytes([o, port, v])
    # 8250 probe and set-up: scratch, LCR with DLAB, divisor, 8N1, FIFO, IER, MCR; then
    # text out, host input read back, the line failing and recovering.
    setup = b"".join([op(0, 7, 0x55), op(1, 7, 0), op(0, 3, 0x80), op(0, 0, 1), op(0, 1, 0),
                      op(0, 3, 0x03), op(0, 2, 0xc7), op(0, 1, 0x0f), op(0, 4, 0x0b)])
    save(t, "setup-and-echo", setup + b"".join(op(0, 0, c) for c in b"hello\n") +
         op(2, 0, 10) + b"".join(op(1, r, 0) for r in (2, 5, 0, 0, 5, 2)))
    save(t, "loopback-and-irq-failure", setup + op(0, 4, 0x1b) + op(0, 0, 0x41) + op(1, 0, 0) +
         op(3, 0, 0) + op(0, 1, 0x02) + op(2, 0, 20) + op(3, 0, 0) + op(1, 2, 0) + op(1, 5, 0))


def i8042_seeds():
    t = "fuzz_i8042"
    cmd = lambda v: bytes([0, v])
    dat = lambda v: bytes([1, v])
    rd_st, rd_dat, cad = bytes([2, 0]), bytes([3, 0]), bytes([4, 0])
    # Linux's i8042 probe: self test, read and write the control register, then keys.
    save(t, "linux-probe-then-keys", cmd(0xaa) + rd_st + rd_dat + cmd(0x20) + rd_dat +
         cmd(0x60) + dat(0x47) + cmd(0xae) + cad + rd_st + rd_dat + rd_dat + rd_dat)
    save(t, "reset-paths", cmd(0xd1) + cmd(0x20) + rd_dat + dat(0xfe) + cmd(0xfe) + cmd(0xfc) +
         cmd(0xd0) + rd_dat)


# ---- fuzz_vmconf: config files ----

def vmconf_seeds():
    t = "fuzz_vmconf"
    with open(os.path.join(HERE, "..", "..", "examples", "web.json"), "rb") as f:
        save(t, "web", f.read())
    save(t, "sandbox", b'{"name": "box", "rootfs": "box-root", "memory_mib": 128, '
         b'"vsock": {"cid": 0, "uds": null}, "seccomp": "kill"}')
    save(t, "bad-types", b'{"cpus": "two", "disks": [{"path": ""}], "log_level": 3}')


# ---- fuzz_boot: kernel and initrd files ----

def boot_seeds():
    t = "fuzz_boot"
    # A minimal bzImage: one setup sector after the boot sector, protocol 2.15, 64-bit entry,
    # relocatable, a 4 KiB payload; then a 1 KiB initrd.
    img = bytearray(512 * 2 + 4096)
    struct.pack_into("<B", img, 0x1f1, 1)              # setup_sects
    struct.pack_into("<I", img, 0x1f4, 4096 // 16)     # syssize
    struct.pack_into("<H", img, 0x1fe, 0xaa55)         # boot_flag
    struct.pack_into("<BB", img, 0x200, 0xeb, 0x66)    # jump: header up to 0x268
    img[0x202:0x206] = b"HdrS"
    struct.pack_into("<H", img, 0x206, 0x020f)         # version
    struct.pack_into("<B", img, 0x211, 0x01)           # loadflags: LOADED_HIGH
    struct.pack_into("<I", img, 0x22c, 0x7fffffff)     # initrd_addr_max
    struct.pack_into("<I", img, 0x230, 0x200000)       # kernel_alignment
    struct.pack_into("<B", img, 0x234, 1)              # relocatable
    struct.pack_into("<H", img, 0x236, 0x0003)         # xloadflags: 64-bit, above 4G
    struct.pack_into("<I", img, 0x238, 2047)           # cmdline_size
    struct.pack_into("<Q", img, 0x258, 0x1000000)      # pref_address
    struct.pack_into("<I", img, 0x260, 0x400000)       # init_size
    save(t, "bzimage-and-initrd", struct.pack("<I", len(img)) + bytes(img) + b"\x07" * 1024)
    save(t, "bzimage-no-initrd", struct.pack("<I", len(img)) + bytes(img))
    save(t, "not-a-kernel", struct.pack("<I", 16) + b"\x7fELF" + b"\0" * 12 + b"initrd")


def main():
    uart_seeds()
    i8042_seeds()
    vmconf_seeds()
    boot_seeds()
    t = "fuzz_virtio_mmio"
    save(t, "init-notify-reset", driver_init() + w(0x050, 0) + r(0x060) + w(0x064, 3) + w(0x070, 0))
    save(t, "config-widths", driver_init() + b"".join(
        mmio_op(False, wd, 0x100 + o, 0) for wd in (1, 2, 4, 8) for o in (0, 3, 16, 20, 23)) +
        mmio_op(True, 4, 0x104, 0xdeadbeef) + r(0x0fc))
    save(t, "bad-queue", driver_init(queue_num=17) + driver_init(desc=0xfff8) + w(0x070, 0) +
         driver_init(features_hi=0))
    blk_seeds()
    vq_seeds()
    net_seeds()


if __name__ == "__main__":
    main()
