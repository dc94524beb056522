"""Golden messages: one for every row of every table of SPEC section 5.

The tables here are typed in again from SPEC section 5 (not imported from the package), so a
wrong table in the code fails here. ``SPEC_EVENTS`` is reused by test_format_event.py.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from azs_syslog.encode.render import Renderer, RenderSettings
from tests.cef_decoder import decode_syslog

TIME = "2026-11-26T10:00:00.123Z"
RT = "rt=1795687200123"
STAMP = "Nov 26 10:00:00"
HOST = "testhost"
PREFIX = "CEF:0|Microsoft|Microsoft Azure Stack Hub|1.0|"
# CEF severity -> PRI with facility authpriv (10): 10*8 + syslog severity.
PRI = {10: 82, 9: 82, 8: 83, 7: 83, 5: 84, 4: 84, 6: 84, 2: 86, 1: 86, 3: 86, 0: 87}
WHO = "AZURESTACK\\CloudAdmin"  # the backslash is escaped in the message
WHO_ESCAPED = "AZURESTACK\\\\CloudAdmin"

# type, event, event id, task name, default severity: the PEP and REP tables of the source.
ENDPOINT_TABLE = """
pep PrivilegedEndpointAccessed 1000 PrivilegedEndpointAccessedEvent 5
pep SupportSessionTokenRequested 1001 SupportSessionTokenRequestedEvent 5
pep SupportSessionDevelopmentTokenRequested 1002 SupportSessionDevelopmentTokenRequestedEvent 5
pep SupportSessionUnlocked 1003 SupportSessionUnlockedEvent 10
pep SupportSessionFailedToUnlock 1004 SupportSessionFailedToUnlockEvent 10
pep PrivilegedEndpointClosed 1005 PrivilegedEndpointClosedEvent 5
pep NewCloudAdminUser 1006 NewCloudAdminUserEvent 10
pep RemoveCloudAdminUser 1007 RemoveCloudAdminUserEvent 10
pep SetCloudAdminUserPassword 1008 SetCloudAdminUserPasswordEvent 5
pep GetCloudAdminPasswordRecoveryToken 1009 GetCloudAdminPasswordRecoveryTokenEvent 10
pep ResetCloudAdminPassword 1010 ResetCloudAdminPasswordEvent 10
pep PrivilegedEndpointSessionTimedOut 1017 PrivilegedEndpointSessionTimedOutEvent 5
rep RecoveryEndpointAccessed 1011 RecoveryEndpointAccessedEvent 5
rep RecoverySessionTokenRequested 1012 RecoverySessionTokenRequestedEvent 5
rep RecoverySessionDevelopmentTokenRequested 1013 RecoverySessionDevelopmentTokenRequestedEvent 5
rep RecoverySessionUnlocked 1014 RecoverySessionUnlockedEvent 10
rep RecoverySessionFailedToUnlock 1015 RecoverySessionFailedToUnlockEvent 10
rep RecoveryEndpointClosed 1016 RecoveryEndpointClosedEvent 5
"""
ENDPOINT_ROWS = [
    (kind, event, int(event_id), task, int(severity))
    for kind, event, event_id, task, severity in map(str.split, ENDPOINT_TABLE.split("\n")[1:-1])
]
PEP_ROWS = [row[1:] for row in ENDPOINT_ROWS if row[0] == "pep"]
REP_ROWS = [row[1:] for row in ENDPOINT_ROWS if row[0] == "rep"]
WAC_ROWS = [
    ("WACServiceStartFailedEvent", 8),
    ("WACConnectedUserNotRetrievedEvent", 2),
    ("WACEnableExceptionEvent", 8),
    ("WACUserAddedEvent", 2),
    ("WACAddUserToLocalGroupFailedEvent", 8),
    ("WACIsUserInLocalGroupFailedEvent", 8),
    ("WACServiceStartTimeoutEvent", 8),
    ("WACServiceStartInvalidOperationEvent", 8),
    ("WACGetSidFromUserFailedEvent", 8),
    ("WACDisableFirewallFailedEvent", 8),
    ("WACCreateLocalGroupIfNotExistFailedEvent", 8),
    ("WACEnableFlagIsTrueEvent", 2),
    ("WACEnableFlagIsFalseEvent", 2),
    ("WACServiceStartedEvent", 2),
]


def cef_header(version: str, *fields: str) -> list[str]:
    """The decoded header fields of a message: ours, then ``fields`` (ID, Name, Severity)."""
    return [version, "Microsoft", "Microsoft Azure Stack Hub", "1.0", *fields]


ACTIVITY = "C8F40D7C-3764-423B-A4FA-C994442238AF"
DESCRIPTION = "The Group Policy settings for the user were processed successfully."
PROVIDER_GUID = "AEA1B4FA-97D1-45F2-A64C-4D69FFFD92C9"
# (JSON field, JSON value, CEF key, value in the message), SPEC's Windows table in order.
MAS_ROWS: list[tuple[str, Any, str, str]] = [
    ("channel", "System", "MasChannel", "System"),
    ("computer", "test.azurestack.contoso.com", "MasComputer", "test.azurestack.contoso.com"),
    ("correlation_activity_id", ACTIVITY, "MasCorrelationActivityID", ACTIVITY),
    ("correlation_related_activity_id", ACTIVITY, "MasCorrelationRelatedActivityID", ACTIVITY),
    (
        "event_data",
        ["svchost", "4132,G,0", "", "EseDiskFlushConsistency", "ESENT", "0x800000"],
        "MasEventData",
        "svchost!!4132,G,0!!!!EseDiskFlushConsistency!!ESENT!!0x800000",
    ),
    ("event_description", DESCRIPTION, "MasEventDescription", DESCRIPTION),
    ("event_id", 1501, "MasEventID", "1501"),
    ("event_record_id", 26637, "MasEventRecordID", "26637"),
    ("execution_process_id", 29380, "MasExecutionProcessID", "29380"),
    ("execution_thread_id", 25480, "MasExecutionThreadID", "25480"),
    ("keywords", "0x8000000000000000", "MasKeywords", "0x8000000000000000"),
    ("keyword_name", "Audit Success", "MasKeywordName", "Audit Success"),
    ("level", 4, "MasLevel", "4"),
    ("opcode", 1, "MasOpcode", "1"),
    ("opcode_name", "info", "MasOpcodeName", "info"),
    ("provider_event_source_name", "GroupPolicy", "MasProviderEventSourceName", "GroupPolicy"),
    ("provider_guid", PROVIDER_GUID, "MasProviderGuid", PROVIDER_GUID),
    (
        "provider_name",
        "Microsoft-Windows-GroupPolicy",
        "MasProviderName",
        "Microsoft-Windows-GroupPolicy",
    ),
    ("security_user_id", "S-1-5-18", "MasSecurityUserId", "S-1-5-18"),
    ("task", 0, "MasTask", "0"),
    ("task_category", "Process Creation", "MasTaskCategory", "Process Creation"),
    (
        "user_data",
        ["KB4093112", "5112", "Installed", "0x0", "WindowsUpdateAgent"],
        "MasUserData",
        "KB4093112!!5112!!Installed!!0x0!!WindowsUpdateAgent Xpath: /Event/UserData/*",
    ),
    ("version", 0, "MasVersion", "0"),
]


def render(event: dict[str, Any], **settings: Any) -> str:
    settings.setdefault("output_severity", "Verbose")
    settings.setdefault("framing", "none")
    renderer = Renderer(RenderSettings(**settings), default_host=HOST)
    message = renderer.render_line(json.dumps(event), 0)
    assert message is not None
    return message.decode("utf-8")


def golden(severity: int, signature: str, name: str, extensions: str) -> str:
    return f"<{PRI[severity]}>{STAMP} {HOST} {PREFIX}{signature}|{name}|{severity}|{RT}{extensions}"


# --- SPEC_EVENTS: every row of every table, as (input, documented header, extensions) ----------

SpecEvent = tuple[dict[str, Any], list[str], list[tuple[str, str]]]


def _spec_events() -> list[SpecEvent]:
    events: list[SpecEvent] = []
    for kind, rows in (("pep", PEP_ROWS), ("rep", REP_ROWS)):
        for event, event_id, task, severity in rows:
            events.append(
                (
                    {"type": kind, "event": event, "who": WHO, "which_ip": "10.0.0.5"},
                    [
                        f"Microsoft-AzureStack-PrivilegedEndpoint: {event_id}",
                        task,
                        str(severity),
                    ],
                    [("Who", WHO), ("WhichIP", "10.0.0.5")],
                )
            )
    for event, severity in WAC_ROWS:
        events.append(
            (
                {"type": "pep_wac", "event": event, "who": WHO, "which_ip": "10.0.0.5"},
                [f"Microsoft-AzureStack-PrivilegedEndpoint: {event}", event, str(severity)],
                [("Who", WHO), ("WhichIP", "10.0.0.5")],
            )
        )
    windows: dict[str, Any] = {"type": "windows"}
    windows.update({field: value for field, value, _, _ in MAS_ROWS})
    events.append(
        (
            windows,
            ["Microsoft-Windows-GroupPolicy:1501", "Process Creation", "2"],
            [(key, text) for _, _, key, text in MAS_ROWS],
        )
    )
    for alert_severity, number in (("Critical", 10), ("Warning", 5), ("Undefined", 0)):
        events.append(
            (
                {
                    "type": "alert",
                    "state": "created",
                    "severity": alert_severity,
                    "fault_type_id": "UserAccounts:UserAccountCreated",
                    "alert_id": "8e5b5c7a-1c55-4d7e-9f2a-2d1f7e0c8a10",
                    "title": "User Account Created",
                    "description": "A user account <TestUser> was created for <TestDomain>.",
                    "remediation": "Please contact Support.",
                },
                [
                    "Microsoft Azure Stack Hub Alert Creation : UserAccounts:UserAccountCreated",
                    "UserAccounts:UserAccountCreated : 8e5b5c7a-1c55-4d7e-9f2a-2d1f7e0c8a10",
                    str(number),
                ],
                [
                    (
                        "MasEventDescription",
                        "TITLE: User Account Created -- DESCRIPTION: A user account <TestUser> "
                        "was created for <TestDomain>. -- REMEDIATION: Please contact Support.",
                    ),
                    ("act", "Created"),
                ],
            )
        )
    events.append(
        (
            {
                "type": "alert",
                "state": "resolved",
                "fault_type_id": "UserAccounts:UserAccountCreated",
                "alert_id": "8e5b5c7a-1c55-4d7e-9f2a-2d1f7e0c8a10",
                "title": "User Account Created",
            },
            [
                "Microsoft Azure Stack Hub Alert Creation : UserAccounts:UserAccountCreated",
                "UserAccounts:UserAccountCreated : 8e5b5c7a-1c55-4d7e-9f2a-2d1f7e0c8a10",
                "2",
            ],
            [("MasEventDescription", "TITLE: User Account Created"), ("act", "Resolved")],
        )
    )
    events.append(
        (
            {
                "type": "arm",
                "AzsOperationName": "Microsoft.Compute/virtualMachines/write",
                "AzsSubscriptionId": "0b3e1a2c-1111-2222-3333-444455556666",
                "AzsEventName": "EndRequest",
                "AzsEventLevel": "Warning",
                "AzsStatus": "Succeeded",
                "AzsClaims": {"name": "admin@contoso.com", "roles": ["Owner"]},
            },
            [
                "Microsoft-AzureStack-ARM: Microsoft.Compute/virtualMachines/write",
                "EndRequest",
                "5",
            ],
            [
                ("AzsSubscriptionId", "0b3e1a2c-1111-2222-3333-444455556666"),
                ("AzsOperationName", "Microsoft.Compute/virtualMachines/write"),
                ("AzsEventName", "EndRequest"),
                ("AzsEventLevel", "Warning"),
                ("AzsStatus", "Succeeded"),
                ("AzsClaims", '{"name":"admin@contoso.com","roles":["Owner"]}'),
            ],
        )
    )
    events.append(
        (
            {"type": "bcdr", "event": "AuditingManualBackup"},
            ["Microsoft-AzureStack-BCDR: AuditingManualBackup", "AuditingManualBackup", "5"],
            [],
        )
    )
    events.append(
        (
            {
                "type": "bcdr",
                "event": "AuditingConfig",
                "Interval": 12,
                "Retention": 7,
                "IsSchedulerEnabled": True,
                "BackupPath": "\\\\fileserver\\backup",
            },
            ["Microsoft-AzureStack-BCDR: AuditingConfig", "AuditingConfig", "5"],
            [
                ("Interval", "12"),
                ("Retention", "7"),
                ("IsSchedulerEnabled", "true"),
                ("BackupPath", "\\\\fileserver\\backup"),
            ],
        )
    )
    events.append(
        (
            {"type": "bcdr", "event": "AuditingPruneBackupStore", "IsInternalStore": False},
            [
                "Microsoft-AzureStack-BCDR: AuditingPruneBackupStore",
                "AuditingPruneBackupStore",
                "5",
            ],
            [("IsInternalStore", "false")],
        )
    )
    infra = {
        "AzsFaultId": "f-1",
        "AzsFaultTypeName": "StorageVolumeDegraded",
        "AzsComponentType": "Storage",
        "AzsComponentName": "S-Cluster",
        "AzsFaultHash": "abc123",
    }
    service = {
        "AzsFaultId": "f-2",
        "AzsFaultTypeName": "ServiceUnhealthy",
        "AzsSubscriptionId": "sub-1",
        "AzsResourceGroup": "rg-1",
        "AzsServiceName": "KeyVault",
        "AzsResourceId": "/subscriptions/sub-1/resourceGroups/rg-1",
        "AzsFaultHash": "def456",
    }
    for kind, event, base, stamp_field, severity in (
        ("infrastructure_fault", "InfrastructureFaultOpen", infra, "AzsCreatedTimeUtc", 5),
        ("infrastructure_fault", "InfrastructureFaultClose", infra, "AzsLastUpdatedTimeUtc", 2),
        ("service_fault", "ServiceFaultOpen", service, "AzsCreatedTimeUtc", 5),
        ("service_fault", "ServiceFaultClose", service, "AzsLastUpdatedTimeUtc", 2),
    ):
        fields = {**base, stamp_field: "2026-11-26T09:59:00Z", "AzsSource": "HealthService"}
        events.append(
            (
                {"type": kind, "event": event, **fields},
                [f"Microsoft-AzureStack-Fault: {event}", base["AzsFaultTypeName"], str(severity)],
                list(fields.items()),
            )
        )
    for fields_of_event, _, _ in events:
        fields_of_event["time"] = TIME
        fields_of_event["host"] = HOST
    return events


SPEC_EVENTS = _spec_events()


def test_spec_events_cover_every_row() -> None:
    kinds = [event["type"] for event, _, _ in SPEC_EVENTS]
    assert kinds.count("pep") + kinds.count("rep") == 18
    assert kinds.count("pep_wac") == 14
    assert kinds.count("alert") == 4
    assert kinds.count("bcdr") == 3
    assert kinds.count("infrastructure_fault") + kinds.count("service_fault") == 4


# --- golden messages -------------------------------------------------------------------------


@pytest.mark.parametrize(("event", "event_id", "task", "severity"), PEP_ROWS + REP_ROWS)
def test_pep_rep_golden(event: str, event_id: int, task: str, severity: int) -> None:
    kind = "rep" if event.startswith("Recovery") else "pep"
    message = render(
        {"type": kind, "event": event, "who": WHO, "which_ip": "10.0.0.5", "time": TIME}
    )
    assert message == golden(
        severity,
        f"Microsoft-AzureStack-PrivilegedEndpoint: {event_id}",
        task,
        f" Who={WHO_ESCAPED} WhichIP=10.0.0.5",
    )
    # Given by id instead of name: the same message.
    by_id = render(
        {"type": kind, "event_id": event_id, "who": WHO, "which_ip": "10.0.0.5", "time": TIME}
    )
    assert by_id == message


def test_pep_level_overrides_the_table_severity() -> None:
    message = render(
        {
            "type": "pep",
            "event": "NewCloudAdminUser",
            "who": "a",
            "which_ip": "b",
            "level": "Warning",
            "time": TIME,
        }
    )
    assert message == golden(
        5,
        "Microsoft-AzureStack-PrivilegedEndpoint: 1006",
        "NewCloudAdminUserEvent",
        " Who=a WhichIP=b",
    )


@pytest.mark.parametrize(("event", "severity"), WAC_ROWS)
def test_wac_golden(event: str, severity: int) -> None:
    message = render(
        {"type": "pep_wac", "event": event, "who": WHO, "which_ip": "10.0.0.5", "time": TIME}
    )
    assert message == golden(
        severity,
        f"Microsoft-AzureStack-PrivilegedEndpoint: {event}",
        event,
        f" Who={WHO_ESCAPED} WhichIP=10.0.0.5",
    )


def test_wac_event_id_and_level() -> None:
    message = render(
        {
            "type": "pep_wac",
            "event": "WACUserAddedEvent",
            "event_id": 4,
            "level": 1,
            "who": "u",
            "which_ip": "ip",
            "time": TIME,
        }
    )
    assert message == golden(
        10, "Microsoft-AzureStack-PrivilegedEndpoint: 4", "WACUserAddedEvent", " Who=u WhichIP=ip"
    )


REQUIRED_WINDOWS = {"provider_name": "Microsoft-Windows-GroupPolicy", "event_id": 1501, "level": 4}


@pytest.mark.parametrize(("field", "value", "key", "text"), MAS_ROWS)
def test_each_mas_extension_golden(field: str, value: Any, key: str, text: str) -> None:
    event = {"type": "windows", "time": TIME, **REQUIRED_WINDOWS, field: value}
    required = [
        ("event_id", "MasEventID", "1501"),
        ("level", "MasLevel", "4"),
        ("provider_name", "MasProviderName", "Microsoft-Windows-GroupPolicy"),
    ]
    pairs = {f: (k, t) for f, k, t in required}
    pairs[field] = (key, text)
    order = [f for f, _, _, _ in MAS_ROWS if f in pairs]
    extensions = "".join(f" {pairs[f][0]}={pairs[f][1]}" for f in order)
    name = "Process Creation" if field == "task_category" else "0"
    assert render(event) == golden(2, "Microsoft-Windows-GroupPolicy:1501", name, extensions)


def test_windows_full_event_golden() -> None:
    event = {"type": "windows", "time": TIME}
    event.update({field: value for field, value, _, _ in MAS_ROWS})
    assert render(event) == (
        "<86>Nov 26 10:00:00 testhost CEF:0|Microsoft|Microsoft Azure Stack Hub|1.0|"
        "Microsoft-Windows-GroupPolicy:1501|Process Creation|2|rt=1795687200123 "
        "MasChannel=System MasComputer=test.azurestack.contoso.com "
        "MasCorrelationActivityID=C8F40D7C-3764-423B-A4FA-C994442238AF "
        "MasCorrelationRelatedActivityID=C8F40D7C-3764-423B-A4FA-C994442238AF "
        "MasEventData=svchost!!4132,G,0!!!!EseDiskFlushConsistency!!ESENT!!0x800000 "
        "MasEventDescription=The Group Policy settings for the user were processed successfully. "
        "MasEventID=1501 MasEventRecordID=26637 MasExecutionProcessID=29380 "
        "MasExecutionThreadID=25480 MasKeywords=0x8000000000000000 MasKeywordName=Audit Success "
        "MasLevel=4 MasOpcode=1 MasOpcodeName=info MasProviderEventSourceName=GroupPolicy "
        "MasProviderGuid=AEA1B4FA-97D1-45F2-A64C-4D69FFFD92C9 "
        "MasProviderName=Microsoft-Windows-GroupPolicy MasSecurityUserId=S-1-5-18 MasTask=0 "
        "MasTaskCategory=Process Creation "
        "MasUserData=KB4093112!!5112!!Installed!!0x0!!WindowsUpdateAgent Xpath: /Event/UserData/* "
        "MasVersion=0"
    )


@pytest.mark.parametrize(
    ("level", "severity"),
    [
        *[(0, 0), (1, 10), (2, 8), (3, 5), (4, 2), (5, 0)],
        *[("Undefined", 0), ("critical", 10), ("ERROR", 8), ("Warning", 5)],
        *[("Information", 2), ("Verbose", 0)],
    ],
)
def test_windows_level_table(level: int | str, severity: int) -> None:
    event = {"type": "windows", "time": TIME, "provider_name": "P", "event_id": 7, "level": level}
    number = {"undefined": 0, "critical": 1, "error": 2, "warning": 3}.get(
        str(level).lower(), {"information": 4, "verbose": 5}.get(str(level).lower(), level)
    )
    assert render(event) == golden(
        severity, "P:7", "0", f" MasEventID=7 MasLevel={number} MasProviderName=P"
    )


def test_windows_name_fallbacks() -> None:
    base = {"type": "windows", "time": TIME, "provider_name": "P", "event_id": 7, "level": 2}
    assert "|P:7|Logon|8|" in render({**base, "task_name": "Logon", "task_category": "x"})
    assert "|P:7|Cat|8|" in render({**base, "task_category": "Cat", "task": 3})
    assert "|P:7|3|8|" in render({**base, "task": 3})
    assert "|P:7|0|8|" in render(base)


def test_alert_golden_created_and_resolved() -> None:
    alerts = [e for e in SPEC_EVENTS if e[0]["type"] == "alert"]
    assert render(alerts[0][0]) == (
        "<82>Nov 26 10:00:00 testhost CEF:0|Microsoft|Microsoft Azure Stack Hub|1.0|"
        "Microsoft Azure Stack Hub Alert Creation : UserAccounts:UserAccountCreated|"
        "UserAccounts:UserAccountCreated : 8e5b5c7a-1c55-4d7e-9f2a-2d1f7e0c8a10|10|"
        "rt=1795687200123 MasEventDescription=TITLE: User Account Created -- DESCRIPTION: "
        "A user account <TestUser> was created for <TestDomain>. -- REMEDIATION: "
        "Please contact Support. act=Created"
    )
    assert render(alerts[1][0]).startswith("<84>")
    assert "|5|rt=" in render(alerts[1][0])
    assert render(alerts[2][0]).startswith("<87>")
    assert "|0|rt=" in render(alerts[2][0])
    assert render(alerts[3][0]) == (
        "<86>Nov 26 10:00:00 testhost CEF:0|Microsoft|Microsoft Azure Stack Hub|1.0|"
        "Microsoft Azure Stack Hub Alert Creation : UserAccounts:UserAccountCreated|"
        "UserAccounts:UserAccountCreated : 8e5b5c7a-1c55-4d7e-9f2a-2d1f7e0c8a10|2|"
        "rt=1795687200123 MasEventDescription=TITLE: User Account Created act=Resolved"
    )


def test_alert_without_text_has_only_act() -> None:
    message = render(
        {"type": "alert", "state": "resolved", "fault_type_id": "F", "alert_id": "A", "time": TIME}
    )
    assert message == golden(
        2, "Microsoft Azure Stack Hub Alert Creation : F", "F : A", " act=Resolved"
    )


def test_arm_golden() -> None:
    arm = next(e for e in SPEC_EVENTS if e[0]["type"] == "arm")[0]
    assert render(arm) == (
        "<84>Nov 26 10:00:00 testhost CEF:0|Microsoft|Microsoft Azure Stack Hub|1.0|"
        "Microsoft-AzureStack-ARM: Microsoft.Compute/virtualMachines/write|EndRequest|5|"
        "rt=1795687200123 AzsSubscriptionId=0b3e1a2c-1111-2222-3333-444455556666 "
        "AzsOperationName=Microsoft.Compute/virtualMachines/write AzsEventName=EndRequest "
        "AzsEventLevel=Warning AzsStatus=Succeeded "
        'AzsClaims={"name":"admin@contoso.com","roles":["Owner"]}'
    )
    minimal = render({"type": "arm", "AzsOperationName": "op", "time": TIME})
    assert minimal == golden(2, "Microsoft-AzureStack-ARM: op", "op", " AzsOperationName=op")


@pytest.mark.parametrize(
    ("level", "severity"),
    [("Critical", 10), ("Error", 8), ("Warning", 5), ("Informational", 2), ("Verbose", 0)],
)
def test_arm_levels(level: str, severity: int) -> None:
    message = render(
        {"type": "arm", "AzsOperationName": "op", "AzsEventLevel": level, "time": TIME}
    )
    assert f"|op|{severity}|" in message


def test_bcdr_golden() -> None:
    bcdr = [e[0] for e in SPEC_EVENTS if e[0]["type"] == "bcdr"]
    base = "<84>Nov 26 10:00:00 testhost CEF:0|Microsoft|Microsoft Azure Stack Hub|1.0|"
    assert [render(e) for e in bcdr] == [
        base + "Microsoft-AzureStack-BCDR: AuditingManualBackup|AuditingManualBackup|5|"
        "rt=1795687200123",
        base + "Microsoft-AzureStack-BCDR: AuditingConfig|AuditingConfig|5|rt=1795687200123 "
        "Interval=12 Retention=7 IsSchedulerEnabled=true BackupPath=\\\\\\\\fileserver\\\\backup",
        base + "Microsoft-AzureStack-BCDR: AuditingPruneBackupStore|AuditingPruneBackupStore|5|"
        "rt=1795687200123 IsInternalStore=false",
    ]


def test_fault_golden() -> None:
    faults = [e[0] for e in SPEC_EVENTS if e[0]["type"].endswith("_fault")]
    messages = [render(e) for e in faults]
    assert messages[0] == (
        "<84>Nov 26 10:00:00 testhost CEF:0|Microsoft|Microsoft Azure Stack Hub|1.0|"
        "Microsoft-AzureStack-Fault: InfrastructureFaultOpen|StorageVolumeDegraded|5|"
        "rt=1795687200123 AzsFaultId=f-1 AzsFaultTypeName=StorageVolumeDegraded "
        "AzsComponentType=Storage AzsComponentName=S-Cluster AzsFaultHash=abc123 "
        "AzsCreatedTimeUtc=2026-11-26T09:59:00Z AzsSource=HealthService"
    )
    assert messages[1] == (
        "<86>Nov 26 10:00:00 testhost CEF:0|Microsoft|Microsoft Azure Stack Hub|1.0|"
        "Microsoft-AzureStack-Fault: InfrastructureFaultClose|StorageVolumeDegraded|2|"
        "rt=1795687200123 AzsFaultId=f-1 AzsFaultTypeName=StorageVolumeDegraded "
        "AzsComponentType=Storage AzsComponentName=S-Cluster AzsFaultHash=abc123 "
        "AzsLastUpdatedTimeUtc=2026-11-26T09:59:00Z AzsSource=HealthService"
    )
    assert messages[2] == (
        "<84>Nov 26 10:00:00 testhost CEF:0|Microsoft|Microsoft Azure Stack Hub|1.0|"
        "Microsoft-AzureStack-Fault: ServiceFaultOpen|ServiceUnhealthy|5|"
        "rt=1795687200123 AzsFaultId=f-2 AzsFaultTypeName=ServiceUnhealthy "
        "AzsSubscriptionId=sub-1 AzsResourceGroup=rg-1 AzsServiceName=KeyVault "
        "AzsResourceId=/subscriptions/sub-1/resourceGroups/rg-1 AzsFaultHash=def456 "
        "AzsCreatedTimeUtc=2026-11-26T09:59:00Z AzsSource=HealthService"
    )
    assert messages[3] == (
        "<86>Nov 26 10:00:00 testhost CEF:0|Microsoft|Microsoft Azure Stack Hub|1.0|"
        "Microsoft-AzureStack-Fault: ServiceFaultClose|ServiceUnhealthy|2|"
        "rt=1795687200123 AzsFaultId=f-2 AzsFaultTypeName=ServiceUnhealthy "
        "AzsSubscriptionId=sub-1 AzsResourceGroup=rg-1 AzsServiceName=KeyVault "
        "AzsResourceId=/subscriptions/sub-1/resourceGroups/rg-1 AzsFaultHash=def456 "
        "AzsLastUpdatedTimeUtc=2026-11-26T09:59:00Z AzsSource=HealthService"
    )


@pytest.mark.parametrize(("event", "header", "extensions"), SPEC_EVENTS)
def test_every_spec_event_decodes_to_the_documented_fields(
    event: dict[str, Any], header: list[str], extensions: list[tuple[str, str]]
) -> None:
    for message_format in ("rfc3164", "rfc5424"):
        for version in ("0", "0.0"):
            decoded = decode_syslog(
                render(event, message_format=message_format, cef_version=version).encode()
            )
            assert decoded.host == HOST
            assert decoded.cef.header == cef_header(version, *header)
            assert decoded.cef.extensions == [("rt", "1795687200123"), *extensions]
            assert decoded.pri == PRI[int(header[2])]
            if message_format == "rfc5424":
                assert decoded.timestamp == "2026-11-26T10:00:00.123Z"
                assert decoded.app_name == "azs-syslog"
                assert decoded.msgid == event["type"]
            else:
                assert decoded.timestamp == STAMP
