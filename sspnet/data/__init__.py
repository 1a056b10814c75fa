"""Data: TinyPerson / COCO loading, the synthetic set, augmentation, cutting into pieces.

Modules (import what you need; only `dataset` and `transforms` import torch):
    tinyperson  load_annotations -> AnnotationSet of ImageRecord, LoadReport, dataset_paths
    images      read_image (a record's image as uint8 RGB; no torch)
    dataset     TinyPersonDataset, collate, make_dataset
    transforms  build_train_transforms, build_eval_transforms, PRESETS
    cutting     cut_annotations, cut_annotation_file
    synth       write_dataset, generate_image
"""

from .tinyperson import AnnotationSet, ImageRecord, LoadReport, dataset_paths, load_annotations

__all__ = ["AnnotationSet", "ImageRecord", "LoadReport", "dataset_paths", "load_annotations"]
