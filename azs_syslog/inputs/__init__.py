"""Inputs: where events come from besides JSON lines (files in other formats, sockets)."""
