"""C37.118.2 STAT word → IEC 61850 quality (see docs/synchrophasors.md for the table).

===========  ======================================  =========================================
STAT bits    meaning (C37.118.2-2011, table 7)        Leitstand quality
===========  ======================================  =========================================
15-14 = 01   PMU error, no information about data     invalid + failure
15-14 = 10   PMU in test mode / absent data inserted  invalid + test
15-14 = 11   PMU error, do not use values             invalid + failure
13           PMU time not synchronised                questionable + inaccurate
12           data sorted by arrival, not timestamp    questionable + inconsistent
11           PMU trigger detected                     unchanged (reported as an event, reason in bits 3-0)
10           configuration change pending             unchanged (the source re-reads CFG-2)
9            data modified by post-processing         source = substituted
8-6 = 111    time uncertainty > 10 ms or unknown      questionable + inaccurate
5-4 >= 10    unlocked for 100 s or longer             questionable + inaccurate
===========  ======================================  =========================================

Invalid wins over questionable; detail flags accumulate.
"""

from __future__ import annotations

from dms_hookspecs import Detail, Quality, QualitySource, Validity

__all__ = ["stat_to_quality", "LINK_LOST", "STALLED", "STAT_DATA_ERROR", "STAT_SYNC_ERROR", "STAT_SORTING", "STAT_TRIGGER",
           "STAT_CFG_CHANGE", "STAT_MODIFIED", "TRIGGER_REASONS", "stat_flags"]

STAT_DATA_ERROR = 0xC000
STAT_SYNC_ERROR = 0x2000
STAT_SORTING = 0x1000
STAT_TRIGGER = 0x0800
STAT_CFG_CHANGE = 0x0400
STAT_MODIFIED = 0x0200

TRIGGER_REASONS = {
    0: "manual", 1: "magnitude low", 2: "magnitude high", 3: "phase angle difference", 4: "frequency high or low",
    5: "df/dt high", 7: "digital",
}

LINK_LOST = Quality(Validity.INVALID, Detail.OLD_DATA).to_bits()
"""Every point of a PMU whose connection is down."""
STALLED = Quality(Validity.INVALID, Detail.OLD_DATA).to_bits()
"""Every point of a PMU that sends no frames while its connection stays up."""

_CACHE: dict[int, int] = {}


def stat_to_quality(stat: int) -> int:
    """Packed IEC 61850 quality bits for the values of a stream with this STAT word."""
    cached = _CACHE.get(stat)
    if cached is not None:
        return cached
    validity = Validity.GOOD
    detail = Detail.NONE
    test = False
    error = (stat >> 14) & 0b11
    if error:
        validity = Validity.INVALID
        if error == 0b10:
            test = True
        else:
            detail |= Detail.FAILURE
    questionable = False
    if stat & STAT_SYNC_ERROR:
        questionable, detail = True, detail | Detail.INACCURATE
    if stat & STAT_SORTING:
        questionable, detail = True, detail | Detail.INCONSISTENT
    if (stat >> 6) & 0b111 == 0b111:
        questionable, detail = True, detail | Detail.INACCURATE
    if (stat >> 4) & 0b11 >= 0b10:
        questionable, detail = True, detail | Detail.INACCURATE
    if questionable and validity is Validity.GOOD:
        validity = Validity.QUESTIONABLE
    source = QualitySource.SUBSTITUTED if stat & STAT_MODIFIED else QualitySource.PROCESS
    bits = Quality(validity, detail, source, test=test).to_bits()
    if len(_CACHE) < 4096:
        _CACHE[stat] = bits
    return bits


def stat_flags(stat: int) -> list[str]:
    """Readable names of the set STAT flags, for logs and alarm texts."""
    names = []
    error = (stat >> 14) & 0b11
    if error:
        names.append({1: "PMU error", 2: "test mode", 3: "PMU error (do not use)"}[error])
    for bit, name in ((STAT_SYNC_ERROR, "sync error"), (STAT_SORTING, "sorted by arrival"), (STAT_TRIGGER, "trigger"),
                      (STAT_CFG_CHANGE, "configuration change"), (STAT_MODIFIED, "modified")):
        if stat & bit:
            names.append(name)
    return names
