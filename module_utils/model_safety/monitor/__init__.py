"""The canary monitor: probe, sequential evidence, judgement, loop and what it keeps."""
