"""Any-length super-resolution in bounded memory, exact to the whole-clip result (see ``engine`` for how and why).

The engine drives a *stepper*: any object with these members, operating on float32 torch tensors
(x: (N, 3, h, w) in [0, 1]; h: (N, C, h, w); sr: (N, 3, 4h, 4w)):

- ``bidirectional: bool`` — False for an online (forward-only, BasicVSR-uni) network;
- ``flow(x_a, x_b) -> (N, 2, h, w)`` — the flow that warps features of frame b onto frame a (not called by the
  engine itself; part of the contract for exporters);
- ``backward_step(x_t, x_next | None, h_next | None) -> h_t`` — ``None`` at the last frame;
- ``forward_step(x_t, x_prev | None, h_prev | None, h_b | None) -> (sr_t, h_t)`` — ``h_b`` is ``None`` when
  not bidirectional; ``x_prev``/``h_prev`` ``None`` at the first frame.

Optional: ``num_feat`` (state channels, for the disk estimate; 64 assumed). ``core.models.basicvsr.BasicVSR`` is a
stepper; the engine runs a private copy of it (``private_stepper``) and never changes the model it is given.
Any other stepper (the onnxruntime one of ``core.deploy``) is used as it is.

Entry points: ``stream_frames(model, frames, count, ...)`` is an iterable of SR frames; ``stream_sr(model,
source, sink, ...)`` writes them to a sink. Both return a ``StreamRun`` that reports ``frames_done``,
``seconds``, ``scratch_bytes`` (peak disk used) and ``timing`` (network time per frame, reading and writing, start-up).
"""
from .engine import DEFAULT_MEMORY_BUDGET, RunTiming, StreamRun, private_stepper, stream_frames, stream_sr

__all__ = ["DEFAULT_MEMORY_BUDGET", "RunTiming", "StreamRun", "private_stepper", "stream_frames", "stream_sr"]
