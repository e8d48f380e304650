"""cleanrl-lago: LaGO (online RL guided by a language-model action prior) in CleanRL's single-file style."""

__version__ = "0.1.0"
