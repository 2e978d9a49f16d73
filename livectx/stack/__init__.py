"""Local stack control: a real single-node Apache Kafka (KRaft) broker and a real Redis server.

Each service owns its PID file, log file and readiness probe under the stack's state directory, so
``down`` stops exactly what ``up`` started and ``status`` can tell a dead process from a sick one.
"""
