"""Child process of the kill -9 tests: writes numbered rows through the ``sql`` sink as fast
as it can and prints ``acked <n>`` after every acknowledged write.

    python writer_child.py URL SPOOL_DIR [SCHEMA]

Row k has point ``P<k % 10>`` and value ``k``.
"""

from __future__ import annotations

import asyncio
import sys

import numpy as np

from dms_hookspecs import MeasurementBatch
from dms_sqlhistorian.sink import SqlSink

BATCH = 500


async def main(url: str, spool_dir: str, schema: str | None) -> None:
    sink = SqlSink("child", {"url": url, "spool_dir": spool_dir, "schema": schema, "retry_s": 0.05, "retry_max_s": 0.2})
    await sink.open()
    print("open", flush=True)
    names = [f"P{k % 10}" for k in range(BATCH)]
    quality = np.zeros(BATCH, np.uint16)
    start = 0
    while True:
        values = np.arange(start, start + BATCH, dtype=np.float64)
        await sink.write([MeasurementBatch("child", np.arange(BATCH), values, quality, values, names=names)])
        start += BATCH
        status = sink.status()
        print(f"acked {sink.rows_written} spooling {int(status['spooling'])}", flush=True)


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2], sys.argv[3] if len(sys.argv) > 3 else None))
