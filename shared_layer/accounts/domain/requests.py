"""The account routes' input, parsed and validated (camelCase JSON, unknown fields refused).

Example::

    parse(AdvertiserRequest, b'{"name": "Acme", "currency": "EUR"}')
    parse(KeyRequest, b'{"role": "advertiser", "advertiserId": "...", "label": "console"}')
"""

from __future__ import annotations

import uuid
from typing import Annotated, Self

from pydantic import BaseModel, StringConstraints, model_validator

from shared_layer.kernel.access import Role
from shared_layer.kernel.models import API_MODEL_CONFIG, TimeZoneName

__all__ = ["AdvertiserRequest", "KeyRequest"]


class _Request(BaseModel):
    model_config = API_MODEL_CONFIG


class AdvertiserRequest(_Request):
    """POST /advertisers: a name, the ISO 4217 currency (USD) and the reports' time zone (UTC);
    `id` to register an advertiser whose campaigns exist already (generated when absent)."""

    id: uuid.UUID | None = None
    name: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=255)]
    currency: Annotated[str, StringConstraints(pattern=r"^[A-Z]{3}$")] = "USD"
    time_zone: TimeZoneName = "UTC"


class KeyRequest(_Request):
    """POST /keys: the role, the advertiser (required unless admin, refused for admin), a label."""

    role: Role
    advertiser_id: uuid.UUID | None = None
    label: Annotated[str, StringConstraints(max_length=255)] = ""

    @model_validator(mode="after")
    def _advertiser_by_role(self) -> Self:
        if (self.role == "admin") != (self.advertiser_id is None):
            raise ValueError(
                "advertiserId is required for advertiser and reporting keys, "
                "and refused for admin keys"
            )
        return self
