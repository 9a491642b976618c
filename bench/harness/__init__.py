"""What every benchmark and the reliability suite share: processes and free ports
(`processes`), the local stack on a temporary folder (`stack`), the corpus (`corpus`), the
pipeline run in this process (`pipeline`), clients timing requests (`clients`), the search
index grown by copies (`retrieval`) and the results written to bench/results (`results`).

A benchmark imports from here and from the packages, never from another benchmark.
"""
