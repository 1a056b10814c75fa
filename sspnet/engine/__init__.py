"""Training: `sspnet train` and its pieces.

    config       TrainConfig (preset + dataset + schedule), --data folder / YAML, config.yaml
    schedule     linear warm-up + step decay of the original recipe, scaled to the run
    sampler      deterministic, resumable, rank-sharded batches
    state        the pickle-free resume state (weights, optimizer, RNG, counters in one safetensors)
    distributed  torchrun process group (gloo on CPU, NCCL on GPU) and small collectives
    builders     datasets, model and val evaluation from a TrainConfig
    runlog       log.jsonl, one whole line per write, rolled back on --resume (+ TensorBoard when installed)
    trainer      the loop: Trainer / train(); rank 0 locks the run folder (sspnet.io.run_lock)

Import the submodule you need; this package imports nothing itself.
"""
