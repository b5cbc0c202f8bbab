"""The lock core: pure decisions, the waiting loop, lock kinds, lock_many, asyncio, status."""
