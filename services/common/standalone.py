"""An RPC client for operators' scripts and tests, outside any service: it
signs its calls as a service (it holds the configuration's secret), as the
services' own calls are signed (services/common/credentials.py)."""

from __future__ import annotations

from nameko.standalone import rpc as standalone

from services.common import config
from services.common.credentials import CREDENTIAL, issue_service_token


class ServiceRpcClient(standalone.ServiceRpcClient):
    def __init__(self, service_name: str, *args, caller: str = "operator", context_data=None,
                 **kwargs):
        token = issue_service_token(caller, config.require("JWT_SECRET"))
        super().__init__(service_name, *args,
                         context_data={**(context_data or {}), CREDENTIAL: token}, **kwargs)
