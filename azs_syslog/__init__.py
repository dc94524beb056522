"""azs-syslog: forward security, audit and alert events to a SIEM as CEF over syslog.

Data flows one way: input -> event -> CEF -> syslog message -> queue -> transport -> SIEM.
The configuration flows CLI -> config file -> worker. Importing this package imports nothing
else: command start-up time matters (SPEC section 10).
"""

__version__ = "0.1.0"
