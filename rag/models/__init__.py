"""Models: the packaged weights, the embedders, the answer model (in process or on a model
server), its prompt states, and question translation. Imports text only."""
