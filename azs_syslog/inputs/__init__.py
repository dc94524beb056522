"""Where events come in besides ``send-event``: the forwarder's Unix-socket input.

Imports nothing: each input is imported by whoever starts it.
"""
