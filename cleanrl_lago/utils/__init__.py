"""Plumbing shared by the single-file scripts that is not the algorithm (as CleanRL's ``cleanrl_utils``):
checkpoints and stopping (:mod:`.runs`), evaluation of saved agents (:mod:`.evals`), agent upload to the
Hugging Face Hub (:mod:`.huggingface`) and the command line (:mod:`.cli`)."""
