"""The persisted configuration: what ``set-syslog-server`` / ``set-syslog-client`` write and the
forwarder worker reads.

The room, from the bottom up: ``vocabulary`` (the words and limits, once for the package),
``model`` (the frozen settings dataclasses), ``rules`` (what is valid; ``build_server``),
``codec`` (the JSON file format), ``store`` (files, the lock, the changes of the set-* commands);
``facility`` and ``certs`` (the client certificate store) beside them. The public names of all
but ``certs`` are here, so ``config.X`` is the way to reach them.
"""

from __future__ import annotations

from azs_syslog import paths as paths  # config.paths: some callers reach paths through here
from azs_syslog.config.codec import certificate_to_dict as certificate_to_dict
from azs_syslog.config.codec import client_to_dict as client_to_dict
from azs_syslog.config.codec import config_to_dict as config_to_dict
from azs_syslog.config.codec import parse_config as parse_config
from azs_syslog.config.codec import serialize_config as serialize_config
from azs_syslog.config.codec import server_to_dict as server_to_dict
from azs_syslog.config.facility import FACILITIES as FACILITIES
from azs_syslog.config.facility import facility_name as facility_name
from azs_syslog.config.facility import parse_facility as parse_facility
from azs_syslog.config.model import LEVEL_CLEAR as LEVEL_CLEAR
from azs_syslog.config.model import LEVEL_NAMES as LEVEL_NAMES
from azs_syslog.config.model import LEVEL_TLS_UNVERIFIED as LEVEL_TLS_UNVERIFIED
from azs_syslog.config.model import LEVEL_TLS_VERIFIED as LEVEL_TLS_VERIFIED
from azs_syslog.config.model import ClientCertificate as ClientCertificate
from azs_syslog.config.model import ClientSettings as ClientSettings
from azs_syslog.config.model import Config as Config
from azs_syslog.config.model import ServerSettings as ServerSettings
from azs_syslog.config.rules import SERVER_CONFLICTS as SERVER_CONFLICTS
from azs_syslog.config.rules import SERVER_OPTIONS as SERVER_OPTIONS
from azs_syslog.config.rules import Conflict as Conflict
from azs_syslog.config.rules import build_server as build_server
from azs_syslog.config.rules import check_client as check_client
from azs_syslog.config.rules import check_config as check_config
from azs_syslog.config.rules import check_server as check_server
from azs_syslog.config.rules import is_ip_address as is_ip_address
from azs_syslog.config.rules import normalize_server_name as normalize_server_name
from azs_syslog.config.rules import server_conflict as server_conflict
from azs_syslog.config.store import LOCK_TIMEOUT as LOCK_TIMEOUT
from azs_syslog.config.store import change_recorder as change_recorder
from azs_syslog.config.store import config_lock as config_lock
from azs_syslog.config.store import load_config as load_config
from azs_syslog.config.store import remove_client_certificate as remove_client_certificate
from azs_syslog.config.store import remove_private_file as remove_private_file
from azs_syslog.config.store import remove_server as remove_server
from azs_syslog.config.store import set_output_severity as set_output_severity
from azs_syslog.config.store import set_server as set_server
from azs_syslog.config.store import stale_client_files as stale_client_files
from azs_syslog.config.store import update_config as update_config
from azs_syslog.config.store import write_private_file as write_private_file
from azs_syslog.config.vocabulary import CEF_VERSIONS as CEF_VERSIONS
from azs_syslog.config.vocabulary import CONFIG_FRAMINGS as CONFIG_FRAMINGS
from azs_syslog.config.vocabulary import CONFIG_VERSION as CONFIG_VERSION
from azs_syslog.config.vocabulary import DEFAULT_FACILITY as DEFAULT_FACILITY
from azs_syslog.config.vocabulary import DEFAULT_FAILOVER_AFTER as DEFAULT_FAILOVER_AFTER
from azs_syslog.config.vocabulary import DEFAULT_MAX_MESSAGE_SIZE as DEFAULT_MAX_MESSAGE_SIZE
from azs_syslog.config.vocabulary import DEFAULT_UDP_RATE as DEFAULT_UDP_RATE
from azs_syslog.config.vocabulary import EXPIRY_WARNING_DAYS as EXPIRY_WARNING_DAYS
from azs_syslog.config.vocabulary import FRAMINGS as FRAMINGS
from azs_syslog.config.vocabulary import MAX_FAILOVER_AFTER as MAX_FAILOVER_AFTER
from azs_syslog.config.vocabulary import MAX_HEARTBEAT_INTERVAL as MAX_HEARTBEAT_INTERVAL
from azs_syslog.config.vocabulary import MAX_MESSAGE_SIZE as MAX_MESSAGE_SIZE
from azs_syslog.config.vocabulary import MAX_UDP_MESSAGE_SIZE as MAX_UDP_MESSAGE_SIZE
from azs_syslog.config.vocabulary import MAX_UDP_RATE as MAX_UDP_RATE
from azs_syslog.config.vocabulary import MESSAGE_FORMATS as MESSAGE_FORMATS
from azs_syslog.config.vocabulary import MIN_MESSAGE_SIZE as MIN_MESSAGE_SIZE
from azs_syslog.config.vocabulary import MONTHS as MONTHS
from azs_syslog.config.vocabulary import OUTPUT_SEVERITIES as OUTPUT_SEVERITIES
from azs_syslog.config.vocabulary import CefVersion as CefVersion
from azs_syslog.config.vocabulary import ConfigFraming as ConfigFraming
from azs_syslog.config.vocabulary import Framing as Framing
from azs_syslog.config.vocabulary import MessageFormat as MessageFormat
from azs_syslog.config.vocabulary import OutputSeverity as OutputSeverity
from azs_syslog.errors import ConfigError as ConfigError
