"""An OpenAI-compatible server of the search runtime (`python -m search serve`; docs/serve.md).

settings.py (ServeConfig, no torch), schema.py (requests and their checks), jobs.py and engine.py (a batch of
jobs on the runtime), batcher.py (the queue), routes.py, streaming.py, responses.py, limits.py, errors.py,
metrics.py, app.py (the FastAPI app), server.py (load and run uvicorn).
"""
