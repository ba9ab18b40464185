"""The training layer: the plain-PyTorch loop, checkpoints and seeds. Imports neither Ray nor MLflow
(a test checks it in a fresh interpreter), so ``train()`` runs anywhere torch does."""
