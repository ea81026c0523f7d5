"""A call run in a thread of its own beside the caller's work: the encoder's helpers whose inner loops
release the GIL (zlib, lzma, numba's nogil loops) use it to fill a second core."""
from __future__ import annotations

import threading


class Background:
    """``fn(*args)`` in a thread of its own, started now; ``result()`` waits, then returns or raises. A
    thread per call (~0.1 ms), not a shared pool: nothing lingers between encodes, and encodes running
    in several threads (``encode_batch``'s workers, the CLI's) never queue behind one another's work."""

    def __init__(self, fn, *args):
        self._out = (False, RuntimeError("background call did not finish"))
        self._thread = threading.Thread(target=self._run, args=(fn, args), name="tricodec-background", daemon=True)
        self._thread.start()

    def _run(self, fn, args) -> None:
        try:
            self._out = (True, fn(*args))
        except BaseException as e:   # handed to the caller by result()
            self._out = (False, e)

    def result(self):
        self._thread.join()
        ok, value = self._out
        if not ok:
            raise value
        return value
