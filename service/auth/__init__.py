"""Who is asking: API keys (created, listed, revoked by an operator) and the principal a key
stands for, an operator of a park (or of every park) or one tenant of one park.

The checks themselves are pure (``access``): the API asks them for every object it returns,
so a route cannot hand a tenant another tenant's object by forgetting a filter.
"""

from service.auth.access import (
    OPERATOR,
    TENANT,
    Principal,
    can_see,
    can_see_tenant,
    visible_parks,
)
from service.auth.keys import ApiKey, KeyRepository, NewKey, Pepper, load_pepper

__all__ = [
    "OPERATOR",
    "TENANT",
    "ApiKey",
    "KeyRepository",
    "NewKey",
    "Pepper",
    "Principal",
    "can_see",
    "can_see_tenant",
    "load_pepper",
    "visible_parks",
]
