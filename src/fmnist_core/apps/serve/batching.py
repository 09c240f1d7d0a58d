"""Concurrent requests' images, batched into one forward pass off the event loop."""

import asyncio
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from .settings import ServeSettings


class MicroBatcher:
    """Collects concurrent requests' images into one forward pass."""

    def __init__(self, logits, settings: ServeSettings):
        self.logits, self.settings = logits, settings
        self.queue: asyncio.Queue | None = None
        self.executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="fmnist-inference")
        self.task: asyncio.Task | None = None
        self.batches = 0

    def start(self) -> None:
        self.queue = asyncio.Queue()
        self.task = asyncio.get_running_loop().create_task(self._run())

    async def stop(self) -> None:
        if self.task:
            self.task.cancel()
        self.executor.shutdown(wait=False, cancel_futures=True)

    async def submit(self, images: np.ndarray) -> np.ndarray:
        future = asyncio.get_running_loop().create_future()
        assert self.queue is not None, "start() first"
        await self.queue.put((images, future))
        return await future

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        queue = self.queue
        assert queue is not None, "start() first"
        while True:
            items = [await queue.get()]
            count = len(items[0][0])
            deadline = loop.time() + self.settings.wait_ms / 1000
            while count < self.settings.max_batch:
                remaining = deadline - loop.time()
                if remaining <= 0:
                    break
                try:
                    item = await asyncio.wait_for(queue.get(), remaining)
                except asyncio.TimeoutError:
                    break
                items.append(item)
                count += len(item[0])
            batch = np.concatenate([images for images, _ in items])
            try:
                logits = await loop.run_in_executor(self.executor, self.logits, batch)
                self.batches += 1
            except Exception as exc:  # the model failed: every waiting request gets a 500
                for _, future in items:
                    if not future.done():
                        future.set_exception(exc)
                continue
            start = 0
            for images, future in items:
                if not future.done():
                    future.set_result(logits[start : start + len(images)])
                start += len(images)
