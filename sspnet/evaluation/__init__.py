"""Evaluation: the TinyPerson protocol (AP and MR over size ranges) and model-based evaluation.

tinyperson  evaluate, print_results_table, detections_to_coco_results, AP_RANGES, MR_RANGES
results     read_results (checked COCO results), merge_corner_results (sub-image results -> whole images)
inference   detect_dataset (tiled / multi-scale model inference over a data set)
"""

from .tinyperson import AP_RANGES, MR_RANGES, evaluate, print_results_table

__all__ = ["AP_RANGES", "MR_RANGES", "evaluate", "print_results_table"]
