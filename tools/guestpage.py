"""The dirtier's page format (guest/page.h) read back from guest memory, stdlib only.

A page is 512 little-endian 64-bit words: [0] guest page frame number, [1]
generation, [2] checksum of words 3..511 (each weighed by 2i + 1, mod 2^64),
then the body. The guest's generation table holds the generation last
written to each working-set page. Memory read while the guest is stopped at
an arbitrary instruction may hold one page mid-write (in_flight()); the
dirtier's own verify runs between writes and never sees one. Used by tools/compare_qemu.py and
tests/e2e/test_mbimage.sh on memory QEMU saved with pmemsave.
"""
import struct

PAGE = 4096
BOOT_MAGIC = 0x31746F6F426D4868  # HM_BOOT_MAGIC, guest/abi.h
_MASK = (1 << 64) - 1


def page_ok(data, gfn, gen):
    """True when the 4096 bytes @data hold a consistent generation @gen of page @gfn."""
    w = struct.unpack_from("<512Q", data, 0)
    if gen == 0:
        return not any(w)
    csum = sum(w[i] * (2 * i + 1) for i in range(3, 512)) & _MASK
    return w[0] == gfn and w[1] == gen and w[2] == csum


def in_flight(data, gen):
    """True when a page that fails page_ok() can be the one the guest was writing when it
    was stopped: the header is written last and the table after it, so such a page still
    has its old generation @gen in its header (torn body) or already the next one."""
    return struct.unpack_from("<Q", data, 8)[0] in (gen, gen + 1)


def generations(data, n):
    """The first @n entries of a generation table."""
    return struct.unpack_from("<%dQ" % n, data, 0)
