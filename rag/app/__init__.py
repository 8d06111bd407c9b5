"""App: what people run. The wiring of models, index and answerer (pipeline), chat and batch, the
answering service, and its two faces: the command line (cli/) and the HTTP server (http/)."""
