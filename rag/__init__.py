"""rag: offline question answering over German news articles with checked citations.

The pipeline is one module per stage: documents -> chunking -> embedding -> index ->
retrieval -> generation -> citations, with evaluation on top. The CLI (cli.py) is a thin
layer over these library calls.
"""

__version__ = "0.1.0"
