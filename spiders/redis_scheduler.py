"""scrapy-redis's scheduler (`--redis-url`), except that a request marked `memory_only` (the login,
whose body holds the password) waits in this process's memory instead of the shared Redis queue."""
from __future__ import annotations

from collections import deque

from scrapy_redis.scheduler import Scheduler


class RedisScheduler(Scheduler):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.memory: deque = deque()

    def __len__(self):
        return len(self.memory) + super().__len__()

    def enqueue_request(self, request):
        if getattr(request, "memory_only", False):
            self.memory.append(request)
            if self.stats:
                self.stats.inc_value("scheduler/enqueued/memory", spider=self.spider)
            return True
        return super().enqueue_request(request)

    def next_request(self):
        if self.memory:
            return self.memory.popleft()
        return super().next_request()
