"""The two tiny eBPF programs that carry a trunk subport's VLAN, as ELF objects ``tc ... bpf da obj`` loads.

On the parent's tap (ingress), ``pop``: a frame tagged with the subport's VLAN id loses its tag and is sent out of
the subport's relay device (whose veth peer is the subport's port on its network's bridge); any other frame goes
on (``TC_ACT_UNSPEC``: the next filter, then the parent's bridge). On the relay device (ingress), ``push``: every
frame from the subport's network gets the tag and is sent out of the parent's tap, to the guest. The device
indexes are part of the program, so a program is made per subport and made again when a device is.

This needs no 802.1Q support in the kernel (VLAN devices, VLAN-filtering bridges or tc's ``vlan`` action), only
``clsact`` and ``cls_bpf``. The objects are written here, instruction by instruction: there is no compiler on a
node. Each is one program in section ``tc`` with a GPL license section (bpf_redirect and the VLAN helpers are
available to any license; GPL costs nothing here)."""

from __future__ import annotations

import struct

SECTION = "tc"
ETH_P_8021Q_BE = 0x0081  # htons(0x8100) as the helper takes it
# Helper ids of include/uapi/linux/bpf.h.
SKB_VLAN_PUSH, SKB_VLAN_POP, REDIRECT = 18, 19, 23
# struct __sk_buff offsets.
VLAN_PRESENT, VLAN_TCI = 20, 24
TC_ACT_UNSPEC = -1


def _insn(op: int, dst: int = 0, src: int = 0, off: int = 0, imm: int = 0) -> bytes:
    return struct.pack("<BBhi", op, (src << 4) | dst, off, imm)


_MOV_REG, _MOV_IMM, _LDX_W, _AND_IMM, _JEQ_IMM, _JNE_IMM, _CALL, _EXIT = (
    0xBF, 0xB7, 0x61, 0x57, 0x15, 0x55, 0x85, 0x95)


def pop_program(vid: int, relay_ifindex: int) -> bytes:
    """Tagged ``vid`` → untag, out of the relay device; anything else → the next filter."""
    return b"".join([
        _insn(_MOV_REG, 6, 1),                       # r6 = skb
        _insn(_LDX_W, 2, 6, VLAN_TCI),               # r2 = skb->vlan_tci
        _insn(_LDX_W, 3, 6, VLAN_PRESENT),           # r3 = skb->vlan_present
        _insn(_JEQ_IMM, 3, 0, 8, 0),                 # untagged: pass
        _insn(_AND_IMM, 2, 0, 0, 0xFFF),             # the VLAN id
        _insn(_JNE_IMM, 2, 0, 6, vid),               # another VLAN: pass
        _insn(_MOV_REG, 1, 6),
        _insn(_CALL, imm=SKB_VLAN_POP),
        _insn(_MOV_IMM, 1, imm=relay_ifindex),
        _insn(_MOV_IMM, 2, imm=0),                   # egress
        _insn(_CALL, imm=REDIRECT),                  # r0 = TC_ACT_REDIRECT
        _insn(_EXIT),
        _insn(_MOV_IMM, 0, imm=TC_ACT_UNSPEC),       # pass:
        _insn(_EXIT),
    ])


def push_program(vid: int, parent_ifindex: int) -> bytes:
    """Every frame → tagged ``vid``, out of the parent's tap."""
    return b"".join([
        _insn(_MOV_REG, 6, 1),
        _insn(_MOV_REG, 1, 6),
        _insn(_MOV_IMM, 2, imm=ETH_P_8021Q_BE),
        _insn(_MOV_IMM, 3, imm=vid),
        _insn(_CALL, imm=SKB_VLAN_PUSH),
        _insn(_MOV_IMM, 1, imm=parent_ifindex),
        _insn(_MOV_IMM, 2, imm=0),
        _insn(_CALL, imm=REDIRECT),
        _insn(_EXIT),
    ])


def elf_object(code: bytes, name: str) -> bytes:
    """A relocatable ELF64 object for EM_BPF holding ``code`` as the global function ``name`` in section ``tc``."""
    if len(name.encode()) > 15:
        raise ValueError(f"BPF program names have at most 15 bytes: {name!r}")
    shstrtab = b"\0" + b"\0".join(s.encode() for s in (SECTION, "license", ".symtab", ".strtab", ".shstrtab")) + b"\0"
    strtab = b"\0" + name.encode() + b"\0"
    # Elf64_Sym: name, info (STB_GLOBAL << 4 | STT_FUNC), other, section 1, value, size.
    symtab = b"\0" * 24 + struct.pack("<IBBHQQ", 1, (1 << 4) | 2, 0, 1, 0, len(code))
    license_ = b"GPL\0"
    parts: list[bytes] = []
    offset = 64  # after the ELF header

    def place(data: bytes, align: int) -> int:
        nonlocal offset
        pad = (-offset) % align
        parts.append(b"\0" * pad + data)
        offset += pad
        start = offset
        offset += len(data)
        return start

    at = {"code": place(code, 8), "license": place(license_, 4), "symtab": place(symtab, 8),
          "strtab": place(strtab, 1), "shstrtab": place(shstrtab, 1)}
    pad = (-offset) % 8
    parts.append(b"\0" * pad)
    section_headers_at = offset + pad

    def name_of(section: str) -> int:
        return shstrtab.index(b"\0" + section.encode() + b"\0") + 1

    def header(name: int, kind: int, flags: int, start: int, size: int, link: int = 0, info: int = 0,
               align: int = 1, entsize: int = 0) -> bytes:
        return struct.pack("<IIQQQQIIQQ", name, kind, flags, 0, start, size, link, info, align, entsize)

    sections = [b"\0" * 64,
                header(name_of(SECTION), 1, 0x6, at["code"], len(code), align=8),  # PROGBITS, ALLOC|EXECINSTR
                header(name_of("license"), 1, 0x3, at["license"], len(license_), align=4),  # ALLOC|WRITE
                header(name_of(".symtab"), 2, 0, at["symtab"], len(symtab), link=4, info=1, align=8, entsize=24),
                header(name_of(".strtab"), 3, 0, at["strtab"], len(strtab)),
                header(name_of(".shstrtab"), 3, 0, at["shstrtab"], len(shstrtab))]
    ident = b"\x7fELF" + bytes([2, 1, 1, 0]) + b"\0" * 8  # 64-bit, little endian, version 1
    # ET_REL, EM_BPF, version, entry, phoff, shoff, flags, ehsize, phentsize, phnum, shentsize, shnum, shstrndx.
    elf_header = ident + struct.pack("<HHIQQQIHHHHHH", 1, 247, 1, 0, 0, section_headers_at, 0, 64, 0, 0, 64,
                                     len(sections), 5)
    return elf_header + b"".join(parts) + b"".join(sections)
