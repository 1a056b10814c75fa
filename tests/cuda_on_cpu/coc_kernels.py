"""ctypes front of a library from coc_build.build_library: every kernel of csrc/kernels on the CPU
(its CPU twin) and emulated on the CUDA execution layer, on NumPy arrays.

    lib = KernelLibrary(build_library("plain"))
    lib.set_schedule("reverse")
    keep, scores, valid, status = lib.nms("cuda", boxes, scores, labels, method="hard", ...)
"""

from __future__ import annotations

import ctypes
from pathlib import Path

import numpy as np

DTYPES = {np.dtype(np.float32): 0, np.dtype(np.float16): 1, np.dtype(np.float64): 2}
METHODS = {"hard": 0, "linear": 1, "gaussian": 2}
SCHEDULES = {"forward": 0, "reverse": 1, "random": 2}
STATUS_OK = 0
STATUS_CUDA_ERROR = 4

_p = ctypes.c_void_p
_i64 = ctypes.c_int64
_f = ctypes.c_float
_i = ctypes.c_int


def _ptr(array) -> ctypes.c_void_p | None:
    return None if array is None else ctypes.c_void_p(array.ctypes.data)


class KernelLibrary:
    def __init__(self, path: Path):
        self.path = Path(path)
        self.lib = lib = ctypes.CDLL(str(path))
        nms_args = [_p, _p, _p, _i64, _i64, _i, _f, _f, _f, _f, _i, _i, _p, _p, _p]
        roi_head = [_i, _i64, _i64, _p, _p, _p]
        roi_tail = [_i, _i, _i, _i, _f, _i]
        for name, args in {
            "coc_nms_cpu": nms_args,
            "coc_nms_cuda": nms_args,
            "coc_roi_forward_cpu": [*roi_head, _p, _p, _i64, *roi_tail, _p],
            "coc_roi_backward_cpu": [*roi_head, _p, _p, _i64, *roi_tail, _p],
            "coc_roi_forward_cuda": [*roi_head, _p, _p, _i, _i64, *roi_tail, _p],
            "coc_roi_backward_cuda": [*roi_head, _p, _p, _i64, *roi_tail, _p],
        }.items():
            getattr(lib, name).argtypes = args
            getattr(lib, name).restype = _i
        lib.coc_set_schedule.argtypes = [_i, ctypes.c_uint64]
        lib.coc_set_grid_cap.argtypes = [ctypes.c_uint]
        lib.coc_last_report.restype = ctypes.c_char_p

    # ---- layer controls
    def set_schedule(self, schedule: str, seed: int = 0) -> None:
        self.lib.coc_set_schedule(SCHEDULES[schedule], seed)

    def set_grid_cap(self, blocks: int) -> None:
        self.lib.coc_set_grid_cap(blocks)

    def last_report(self) -> str:
        return self.lib.coc_last_report().decode()

    def clear_report(self) -> None:
        self.lib.coc_clear_report()

    # ---- kernels
    def nms(
        self,
        device,
        boxes,
        scores,
        labels,
        method="hard",
        iou_threshold=0.5,
        sigma=0.5,
        score_threshold=0.0,
        min_score=0.0,
        max_output=100,
    ):
        """boxes [N, M, 4], scores [N, M], labels [N, M] int32 or None -> keep, scores, num_valid, status."""
        boxes = np.ascontiguousarray(boxes)
        scores = np.ascontiguousarray(scores, dtype=boxes.dtype)
        labels = None if labels is None else np.ascontiguousarray(labels, dtype=np.int32)
        batch, num = scores.shape
        keep = np.full((batch, max_output), -7, np.int32)
        out = np.full((batch, max_output), 7, boxes.dtype)
        valid = np.full(batch, -7, np.int32)
        fn = self.lib.coc_nms_cuda if device == "cuda" else self.lib.coc_nms_cpu
        status = fn(
            _ptr(boxes),
            _ptr(scores),
            _ptr(labels),
            batch,
            num,
            METHODS[method],
            iou_threshold,
            sigma,
            score_threshold,
            min_score,
            max_output,
            DTYPES[boxes.dtype],
            _ptr(keep),
            _ptr(out),
            _ptr(valid),
        )
        return keep, out, valid, status

    @staticmethod
    def _pyramid(features, scales):
        levels = len(features)
        heights = np.array([f.shape[2] for f in features], np.int64)
        widths = np.array([f.shape[3] for f in features], np.int64)
        scales = np.asarray(scales, np.float32)
        return levels, features[0].shape[0], features[0].shape[1], heights, widths, scales

    def roi_forward(
        self, device, features, scales, rois, output_size=(7, 7), sampling_ratio=0, aligned=True, finest_scale=56.0
    ):
        """features: list of [N, C, H, W] (one dtype), rois [R, 5] -> (output [R, C, oh, ow], status)."""
        features = [np.ascontiguousarray(f) for f in features]
        rois = np.ascontiguousarray(rois)
        levels, batch, channels, heights, widths, scales = self._pyramid(features, scales)
        pointers = (ctypes.c_void_p * levels)(*[f.ctypes.data for f in features])
        out = np.full((rois.shape[0], channels, *output_size), 7, features[0].dtype)
        head = (levels, batch, channels, _ptr(heights), _ptr(widths), _ptr(scales), pointers, _ptr(rois))
        tail = (*output_size, sampling_ratio, int(aligned), finest_scale, DTYPES[features[0].dtype], _ptr(out))
        if device == "cuda":
            status = self.lib.coc_roi_forward_cuda(*head, DTYPES[rois.dtype], rois.shape[0], *tail)
        else:
            status = self.lib.coc_roi_forward_cpu(*head, rois.shape[0], *tail)
        return out, status

    def roi_backward(
        self, device, feature_shapes, scales, grad_output, rois, sampling_ratio=0, aligned=True, finest_scale=56.0
    ):
        """-> (list of gradients, one per level, status)."""
        grad_output = np.ascontiguousarray(grad_output)
        rois = np.ascontiguousarray(rois, dtype=grad_output.dtype)
        grads = [np.zeros(shape, grad_output.dtype) for shape in feature_shapes]
        levels, batch, channels, heights, widths, scales = self._pyramid(grads, scales)
        pointers = (ctypes.c_void_p * levels)(*[g.ctypes.data for g in grads])
        fn = self.lib.coc_roi_backward_cuda if device == "cuda" else self.lib.coc_roi_backward_cpu
        status = fn(
            levels,
            batch,
            channels,
            _ptr(heights),
            _ptr(widths),
            _ptr(scales),
            _ptr(grad_output),
            _ptr(rois),
            rois.shape[0],
            *grad_output.shape[2:],
            sampling_ratio,
            int(aligned),
            finest_scale,
            DTYPES[grad_output.dtype],
            pointers,
        )
        return grads, status
