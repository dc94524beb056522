"""The forwarder: the worker loop that drains the queue, its status, metrics, audit events
and repair."""
