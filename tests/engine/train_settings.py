"""Model overrides that make the small presets fast enough for a handful of CPU iterations in tests."""

TINY_FOVEA = {
    "neck_channels": 32,
    "fovea_feat_channels": 32,
    "fovea_stacked_convs": 1,
    "fovea_nms_pre": 100,
    "max_detections": 50,
}
TINY_FASTER = {
    "neck_channels": 32,
    "roi_fc_channels": 32,
    "rpn_num_samples": 64,
    "roi_num_samples": 32,
    "rpn_train_nms_pre": 200,
    "rpn_train_max_proposals": 50,
    "rpn_test_nms_pre": 100,
    "rpn_test_max_proposals": 50,
    "max_detections": 50,
}
