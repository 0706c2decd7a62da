"""What training and evaluation share, below both: checkpoints (finding, loading, resolving runs), the model
and pseudo-labeler build, the input pipelines and transforms, the evaluation loop, and Ray's start-up."""
