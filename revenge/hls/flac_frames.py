"""Renumber FLAC frames so independently encoded segments form one valid FLAC stream.

A fresh FLAC encoder per segment numbers its frames from 0; a fixed-blocksize FLAC stream must
count frames from the start of the stream (RFC 9639 §9.1.5). We rewrite the coded number in each
frame header and fix both checksums. The header's CRC-8 is recomputed; the frame's CRC-16 is
updated in O(log n) from the header change alone (CRC is linear), so the audio bytes are not
re-read in Python.
"""

from __future__ import annotations


def _crc8_table() -> tuple[int, ...]:
    table = []
    for byte in range(256):
        crc = byte
        for _ in range(8):
            crc = ((crc << 1) ^ 0x07) & 0xFF if crc & 0x80 else (crc << 1) & 0xFF
        table.append(crc)
    return tuple(table)


def _crc16_table() -> tuple[int, ...]:
    table = []
    for byte in range(256):
        crc = byte << 8
        for _ in range(8):
            crc = ((crc << 1) ^ 0x8005) & 0xFFFF if crc & 0x8000 else (crc << 1) & 0xFFFF
        table.append(crc)
    return tuple(table)


_CRC8 = _crc8_table()
_CRC16 = _crc16_table()


def crc8(data: bytes) -> int:
    crc = 0
    for byte in data:
        crc = _CRC8[crc ^ byte]
    return crc


def crc16(data: bytes, crc: int = 0) -> int:
    for byte in data:
        crc = ((crc << 8) & 0xFFFF) ^ _CRC16[(crc >> 8) ^ byte]
    return crc


def _zero_byte_step(state: int) -> int:
    return ((state << 8) & 0xFFFF) ^ _CRC16[state >> 8]


def _apply(matrix: tuple[int, ...], state: int) -> int:
    out = 0
    bit = 0
    while state:
        if state & 1:
            out ^= matrix[bit]
        state >>= 1
        bit += 1
    return out


def _square(matrix: tuple[int, ...]) -> tuple[int, ...]:
    return tuple(_apply(matrix, column) for column in matrix)


def _zero_shift_powers(levels: int = 40) -> tuple[tuple[int, ...], ...]:
    """M^(2^k) for k < levels, where M advances the CRC-16 register over one zero byte."""
    first = tuple(_zero_byte_step(1 << bit) for bit in range(16))
    powers = [first]
    for _ in range(levels - 1):
        powers.append(_square(powers[-1]))
    return tuple(powers)


_SHIFT_POWERS = _zero_shift_powers()


def crc16_shift(state: int, zero_bytes: int) -> int:
    """The CRC-16 register after feeding ``zero_bytes`` zero bytes starting from ``state``."""
    k = 0
    while zero_bytes:
        if zero_bytes & 1:
            state = _apply(_SHIFT_POWERS[k], state)
        zero_bytes >>= 1
        k += 1
    return state


def encode_number(value: int) -> bytes:
    """FLAC's UTF-8-like coding of a frame/sample number (up to 36 bits)."""
    if value < 0x80:
        return bytes([value])
    for length, limit in ((2, 1 << 11), (3, 1 << 16), (4, 1 << 21), (5, 1 << 26), (6, 1 << 31), (7, 1 << 36)):
        if value < limit:
            tail = [0x80 | ((value >> (6 * i)) & 0x3F) for i in range(length - 2, -1, -1)]
            lead_bits = value >> (6 * (length - 1))
            lead = (0xFF << (8 - length)) & 0xFF | lead_bits if length < 7 else 0xFE
            return bytes([lead, *tail])
    raise ValueError(f"FLAC frame number too large: {value}")


def _number_length(first: int) -> int:
    """Bytes of a coded number, from its first byte: the count of leading one bits (1 if none)."""
    ones, mask = 0, 0x80
    while first & mask:
        ones, mask = ones + 1, mask >> 1
    if ones == 0:
        return 1
    if ones == 1 or ones > 7:
        raise ValueError("bad FLAC frame number coding")
    return ones


def _header_length(frame: bytes) -> tuple[int, int]:
    """(offset of the coded number, header length without the CRC-8 byte)."""
    if len(frame) < 6 or frame[0] != 0xFF or frame[1] & 0xFE != 0xF8:
        raise ValueError("not a FLAC frame")
    number_at = 4
    end = number_at + _number_length(frame[number_at])
    block_code, rate_code = frame[2] >> 4, frame[2] & 0x0F
    end += {6: 1, 7: 2}.get(block_code, 0)
    end += {12: 1, 13: 2, 14: 2}.get(rate_code, 0)
    return number_at, end


def renumber(frame: bytes, number: int) -> bytes:
    """``frame`` (one complete FLAC frame, fixed-blocksize) with its frame number set to ``number``."""
    if frame[1] & 0x01:
        raise ValueError("variable-blocksize FLAC frames carry sample numbers, not frame numbers")
    number_at, header_end = _header_length(frame)
    old_header = frame[: header_end + 1]  # including the CRC-8 byte
    coded = encode_number(number)
    head = frame[:number_at] + coded + frame[number_at + _number_length(frame[number_at]) : header_end]
    new_header = head + bytes([crc8(head)])
    body = len(frame) - 2 - len(old_header)  # bytes between the header and the CRC-16
    old_crc = int.from_bytes(frame[-2:], "big")
    new_crc = old_crc ^ crc16_shift(crc16(old_header) ^ crc16(new_header), body)
    return new_header + frame[len(old_header) : -2] + new_crc.to_bytes(2, "big")
