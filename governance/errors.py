"""Why a governance action was refused, each with the HTTP status the API answers."""


class GovernanceError(Exception):
    """Base: a governance action was refused for a reason the user can act on."""

    status_code = 400


class NotAllowed(GovernanceError):
    """The actor may see the record but may not do this to it (separation of duties, role)."""

    status_code = 403


class Conflict(GovernanceError):
    """The record is no longer in a state that allows this (decided, superseded, pending)."""

    status_code = 409


class PasswordRequired(GovernanceError):
    """Signing re-asks the password (21 CFR 11.200(a)); it was wrong or the account is locked."""

    status_code = 403
