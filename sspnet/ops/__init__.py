"""Compiled detection ops (torch custom ops backed by csrc/)."""

from sspnet.ops.nms import batched_nms  # noqa: F401
