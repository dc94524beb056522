"""Task-category names for providers whose logs hold only the task number.

An ``.evtx`` file (and Event XML without ``RenderingInfo``) carries the task as a number: the
name lives in the provider's manifest on the machine that wrote the log. Without a name the CEF
Name would be ``12544``; with this table it is ``Logon``, as Event Viewer shows it.

Sources: Microsoft's list of advanced audit policy subcategories (each subcategory is one task
of Microsoft-Windows-Security-Auditing, numbered from 12288 by category: System, Logon/Logoff,
Object Access, Privilege Use, Detailed Tracking, Policy Change, Account Management, DS Access,
Account Logon; the names are those ``auditpol /list /subcategory:*`` and Event Viewer show),
and Sysmon's list of event ids (its manifest gives each event id a task of the same number).
"""

from __future__ import annotations

from typing import Final

SECURITY_AUDITING: Final = "Microsoft-Windows-Security-Auditing"
SYSMON: Final = "Microsoft-Windows-Sysmon"

# Microsoft-Windows-Security-Auditing: task number -> audit subcategory.
SECURITY_AUDITING_TASKS: Final[dict[int, str]] = {
    # System
    12288: "Security State Change",
    12289: "Security System Extension",
    12290: "System Integrity",
    12291: "IPsec Driver",
    12292: "Other System Events",
    # Logon/Logoff
    12544: "Logon",
    12545: "Logoff",
    12546: "Account Lockout",
    12547: "IPsec Main Mode",
    12548: "Special Logon",
    12549: "IPsec Quick Mode",
    12550: "IPsec Extended Mode",
    12551: "Other Logon/Logoff Events",
    12552: "Network Policy Server",
    12553: "User / Device Claims",
    12554: "Group Membership",
    # Object Access
    12800: "File System",
    12801: "Registry",
    12802: "Kernel Object",
    12803: "SAM",
    12804: "Other Object Access Events",
    12805: "Certification Services",
    12806: "Application Generated",
    12807: "Handle Manipulation",
    12808: "File Share",
    12809: "Filtering Platform Packet Drop",
    12810: "Filtering Platform Connection",
    12811: "Detailed File Share",
    12812: "Removable Storage",
    12813: "Central Policy Staging",
    # Privilege Use
    13056: "Sensitive Privilege Use",
    13057: "Non Sensitive Privilege Use",
    13058: "Other Privilege Use Events",
    # Detailed Tracking
    13312: "Process Creation",
    13313: "Process Termination",
    13314: "DPAPI Activity",
    13315: "RPC Events",
    13316: "Plug and Play Events",
    13317: "Token Right Adjusted Events",
    # Policy Change
    13568: "Audit Policy Change",
    13569: "Authentication Policy Change",
    13570: "Authorization Policy Change",
    13571: "MPSSVC Rule-Level Policy Change",
    13572: "Filtering Platform Policy Change",
    13573: "Other Policy Change Events",
    # Account Management
    13824: "User Account Management",
    13825: "Computer Account Management",
    13826: "Security Group Management",
    13827: "Distribution Group Management",
    13828: "Application Group Management",
    13829: "Other Account Management Events",
    # DS Access
    14080: "Directory Service Access",
    14081: "Directory Service Changes",
    14082: "Directory Service Replication",
    14083: "Detailed Directory Service Replication",
    # Account Logon
    14336: "Credential Validation",
    14337: "Kerberos Service Ticket Operations",
    14338: "Other Account Logon Events",
    14339: "Kerberos Authentication Service",
}

# Microsoft-Windows-Sysmon: event id -> event name.
SYSMON_EVENTS: Final[dict[int, str]] = {
    1: "Process Create",
    2: "File creation time changed",
    3: "Network connection detected",
    4: "Sysmon service state changed",
    5: "Process terminated",
    6: "Driver loaded",
    7: "Image loaded",
    8: "CreateRemoteThread detected",
    9: "RawAccessRead detected",
    10: "Process accessed",
    11: "File created",
    12: "Registry object added or deleted",
    13: "Registry value set",
    14: "Registry object renamed",
    15: "File stream created",
    16: "Sysmon config state changed",
    17: "Pipe Created",
    18: "Pipe Connected",
    19: "WmiEventFilter activity detected",
    20: "WmiEventConsumer activity detected",
    21: "WmiEventConsumerToFilter activity detected",
    22: "Dns query",
    23: "File Delete archived",
    24: "Clipboard changed",
    25: "Process Tampering",
    26: "File Delete logged",
    27: "File Block Executable",
    28: "File Block Shredding",
    29: "File Executable Detected",
    255: "Error",
}


def known_task_name(provider: object, task: object, event_id: object) -> str | None:
    """The task-category name of a Security-Auditing task or a Sysmon event, else None."""
    if provider == SECURITY_AUDITING and type(task) is int:
        return SECURITY_AUDITING_TASKS.get(task)
    if provider == SYSMON and type(event_id) is int:
        return SYSMON_EVENTS.get(event_id)
    return None
