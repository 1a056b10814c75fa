"""Inference around the runtime's Detector: model files of every kind, frame sources, drawing.

    torch_backend TorchBackend: a PyTorch detector as a Backend (imports torch; runtime/ never does);
                  sspnet.runtime.load_backend opens checkpoints with it, by name
    sources       images, folders, globs, videos, cameras and stream URLs as frame iterators;
                  a bounded queue that drops frames of live streams when inference is slower
    draw          boxes and attention-map heat-maps drawn on frames
    results       detections as COCO results JSON

Nothing is imported here, so `sspnet predict --backend onnxruntime` needs no torch.
"""
