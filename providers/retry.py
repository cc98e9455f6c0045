"""Calling again after a failure, each pause twice as long as the one before."""
import time


def retried(call, attempts, is_retryable=lambda error: True, delay=0.5, max_delay=10):
    """What `call()` returns, calling it up to `attempts` times while it raises an error that
    `is_retryable(error)` accepts; the last error is raised. The pauses double from `delay`
    seconds, to `max_delay` at most; an error's `retry_after` (the server's Retry-After)
    replaces the pause."""
    for attempt in range(attempts):
        try:
            return call()
        except Exception as error:
            if attempt == attempts - 1 or not is_retryable(error):
                raise
            time.sleep(min(getattr(error, "retry_after", None) or delay * 2 ** attempt, max_delay))
