"""Language-model action priors and the data they are trained on."""
