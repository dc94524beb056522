"""Where events come in besides JSON lines: files in other formats (EVTX, Windows Event XML,
PowerShell exports; see ``detect``) and the forwarder's Unix-socket input.

Imports nothing: each input is imported by whoever uses it.
"""
