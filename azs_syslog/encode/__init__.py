"""Encoding: CEF, syslog framing and the renderer, the only place a message is assembled."""
