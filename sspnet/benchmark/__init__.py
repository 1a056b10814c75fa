"""Speed (and accuracy at the deployed settings) of detectors on every backend: `sspnet benchmark`.

    stats       latency statistics (mean, percentiles), throughput, the speed-up column
    harness     rows to run (model x backend x mode x precision x batch x input size), warm-up,
                timed iterations through the runtime's Detector, per-stage times, memory, AP50-tiny
    reference   torchvision's Faster R-CNN R50-FPN (random weights) as a reference row
    memory      peak host memory (RSS) sampled while a row runs
    tegrastats  power and clocks on a Jetson (when the `tegrastats` binary exists)
    report      the terminal table, the JSON file and the PNG plot

Nothing is imported here; torch is imported only for torch rows.
"""
