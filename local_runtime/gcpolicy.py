"""Garbage-collector policy of a bounded sm-local command (demo, run, upsert, ...; not the long-lived studio server).

The runtime's process holds several hundred thousand long-lived objects: moto's backends, botocore's service
models, the SageMaker SDK's classes and the shared clients of the builds. CPython's full collection runs each time
the heap has grown by a quarter and scans all of them again: in `sm-local demo` 14 full collections cost 4 s of
its 33 (measured with gc.callbacks). Objects that survived a full collection are the command's state, so they are
frozen (``gc.freeze``: moved out of every later collection) and each later full collection scans only what came
after. The price: a reference cycle among frozen objects that dies later is freed at exit instead (about 70 MB
more peak memory in the demo), which a command that ends can afford and a server cannot.
"""

from __future__ import annotations

import gc


def _freeze_survivors(phase: str, info: dict) -> None:
    if phase == "stop" and info["generation"] == 2:
        gc.freeze()


def freeze_survivors_of_full_collections() -> None:
    """Install the policy for the rest of this process (idempotent)."""
    if _freeze_survivors not in gc.callbacks:
        gc.callbacks.append(_freeze_survivors)
