"""The order WAL's record format: the sequenced command log, made durable.

One fixed-size record per sequenced command, in seq order:

     0 length(u4)   the record's size in bytes (104)
     4 type(u2)     WAL_COMMAND
     6 version(u1)  WAL_VERSION
     7 reserved
     8 seq(i8)      the command's seq (each record's is its predecessor's + 1)
    16 check(u8)    checksum of every other word of the record
    24 payload      the CMD record (engine/records.py), seq and ref as sequenced

The checksum mixes the record's 64-bit words one by one through steps that
are each a bijection of the running value (xor the word in, multiply by an
odd constant, xor-shift), so a record that differs from the one sealed in
exactly one word can never match its check; a random record matches with
probability 2^-64. A record of zeros (a hole in a file) does not verify.
"""
import numpy as np

from . import records as R
from .jit import kernel

WAL_COMMAND = 1
WAL_VERSION = 1
_PAYLOAD_WORDS = R.CMD.itemsize // 8

WAL_RECORD = R._dtype([
    ("length", "u4"), ("type", "u2"), ("version", "u1"), ("reserved", "u1", 1),
    ("seq", "i8"), ("check", "u8"), ("payload", "u8", _PAYLOAD_WORDS),
], 24 + R.CMD.itemsize)
RECORD_BYTES = WAL_RECORD.itemsize
RECORD_WORDS = RECORD_BYTES // 8
_CHECK_WORD = 2                      # word index of `check`

_SEED = np.uint64(0x9E3779B97F4A7C15)
_MUL = np.uint64(0xFF51AFD7ED558CCD)


@kernel(inline="always")
def _checksum(words, r):
    h = _SEED
    for w in range(RECORD_WORDS):
        if w != _CHECK_WORD:
            h = (h ^ words[r, w]) * _MUL
            h ^= h >> np.uint64(31)
    return h


@kernel(inline="always")
def _intact(words, i):
    return words[i, _CHECK_WORD] == _checksum(words, i)


@kernel()
def wal_seal(recs, words, cmds, cmd_words, n):
    """Fill recs[:n] from the sequenced commands cmds[:n] (words: both as uint64 rows)."""
    for i in range(n):
        r = recs[i]
        r.length = RECORD_BYTES
        r.type = WAL_COMMAND
        r.version = WAL_VERSION
        r.seq = cmds[i].seq
        for w in range(_PAYLOAD_WORDS):
            words[i, 3 + w] = cmd_words[i, w]
        words[i, _CHECK_WORD] = _checksum(words, i)


@kernel()
def wal_verify(recs, words, n, first_seq):
    """Index of the first record of recs[:n] that is not intact and in
    sequence (seq first_seq, first_seq + 1, ...), or n when all are."""
    for i in range(n):
        r = recs[i]
        if (r.length != RECORD_BYTES or r.type != WAL_COMMAND or r.version != WAL_VERSION
                or not _intact(words, i) or r.seq != first_seq + i
                or words[i, 3] != np.uint64(r.seq)):
            return i
    return n


@kernel()
def wal_intact(words, i):
    """Record i passes its checksum (whatever its place in the sequence)."""
    return _intact(words, i)


@kernel()
def wal_count_intact(words, start, n):
    """How many of records start..n-1 pass their checksum."""
    k = 0
    for i in range(start, n):
        if _intact(words, i):
            k += 1
    return k


def commands_of(recs: np.ndarray) -> np.ndarray:
    """The CMD payloads of WAL records (a copy, contiguous)."""
    return np.ascontiguousarray(recs["payload"]).view(R.CMD).reshape(len(recs))
