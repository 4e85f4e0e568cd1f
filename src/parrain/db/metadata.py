"""The complete metadata: importing this module registers every domain's tables.

Alembic's autogenerate and ``alembic check`` compare the database with this.
"""

from __future__ import annotations

from sqlalchemy import MetaData

import parrain.access.models
import parrain.audit.models
import parrain.campaigns.models
import parrain.consent.models
import parrain.coupons.models
import parrain.ledger.models
import parrain.members.models
import parrain.operators.models
import parrain.outbox.models
import parrain.payouts.models
import parrain.referrals.models  # noqa: F401
from parrain.db.base import Base

metadata: MetaData = Base.metadata
