"""Where batches are decoded and validated: in this process, or in decoding processes beside it.

Decoding Avro and checking the domain rules is pure Python CPU work, about half of what a record
costs the worker, and one process runs it on one core at a time (the GIL). Handed to another
process, it overlaps with what this process does meanwhile: consuming (faust's own per-record
work) and applying the previous batch to the index. Batches still come back in the order they
were handed over, so per-partition order holds.

The decoding processes are spawned (not forked: the worker has threads) and each loads the
schema catalog once. They exit when their parent does, as a pool's workers do when the pipe to
their parent closes.
"""

from __future__ import annotations

import asyncio
import multiprocessing
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor

from schemas.catalog import load_schema_catalog
from streams.pipeline import DecodedBatch, Decoder, SourceRecord

_decoder: Decoder | None = None


def _start(topic_datasets: dict[str, str]) -> None:
    global _decoder
    _decoder = Decoder(load_schema_catalog(), topic_datasets)


def _decode(batch: Sequence[SourceRecord]) -> DecodedBatch:
    if _decoder is None:
        raise RuntimeError("decoding process not initialised")
    return _decoder.decode(batch)


class Decoding:
    """`await decoding.decode(batch)`: in `processes` other processes, or in a thread when 0."""

    def __init__(self, decoder: Decoder, processes: int) -> None:
        self.decoder = decoder
        self.processes = processes
        self._pool = ProcessPoolExecutor(
            processes, mp_context=multiprocessing.get_context("spawn"), initializer=_start,
            initargs=(decoder.topic_datasets,)) if processes > 0 else None

    def submit(self, batch: Sequence[SourceRecord]) -> asyncio.Future[DecodedBatch]:
        """Start decoding now; the future resolves in the running loop."""
        if self._pool is None:
            return asyncio.ensure_future(asyncio.to_thread(self.decoder.decode, batch))
        return asyncio.wrap_future(self._pool.submit(_decode, list(batch)))

    async def decode(self, batch: Sequence[SourceRecord]) -> DecodedBatch:
        return await self.submit(batch)

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
