"""``livectx ui``: a live web dashboard over the running platform, served by the product itself.

It lives in the core package because everything it shows is read through the core's own readers (Kafka
offsets, the Feast online store, the vector store and its watermark, the dead-letter topic, the model
registry) and the workers' ``/metrics`` endpoints, which it finds through the same file_sd target files
the stack's Prometheus reads. It imports none of the workers or agents, so it works beside any of them,
with or without Prometheus. The page is plain HTML and one vanilla JS file (``static/``): no build step.
"""
