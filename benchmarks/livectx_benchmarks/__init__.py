"""``livectx bench NAME``: named benchmarks that print a table and write a flat JSON object of figures.

Every benchmark measures its own baseline in the same run (raw Kafka, raw Redis), because these machines
are shared and noisy: compare ratios, not absolute times.
"""
