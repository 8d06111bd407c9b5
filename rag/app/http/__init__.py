"""`rag serve`'s HTTP layer: FastAPI routers over `app.service.AnswerService`."""
