"""Every exception class of dsar that is not a child of `domain.errors.DomainError`, and why.

A rule that says no raises a `DomainError` child (domain/errors.py: Refused, NotFound,
LimitReached, StepUpRequired, Busy, Gone, Forbidden, InsufficientScope, AuditUnavailable and
their kinds), and `schema/outcomes.py` alone decides what each looks like. The classes below
are not rules' answers: they belong to the edge (a token, a header, a command line, a page, a
GraphQL error shape), to the packages below the domain (which cannot import it), or they never
leave the module that raises them. `tests/test_errors.py` fails on a class in neither place.
"""

from __future__ import annotations

EDGE_ONLY: dict[str, str] = {
    # Credentials: no token or header reaches the domain (api/challenges.py maps these).
    "api.tokens.InvalidToken": "a bearer token that failed validation (RFC 6750 invalid_token)",
    "api.authn.NoCredentials": "no bearer token at all (RFC 6750: a challenge with no error)",
    "api.dpop.InvalidDPoPProof": "a missing or refused DPoP proof (RFC 9449 invalid_dpop_proof)",
    # The command line, the settings and the account page.
    "api.cli._common.CommandError": "a command that cannot do what was asked: one line, exit 1",
    "api.settings.SettingsError": "a setting that cannot be used: the process does not start",
    "api.cli.export.WriteFailed": "the export's file could not be written (disk full, …)",
    "api.account.data.BadPage": "a page cursor of the account page that is not one",
    "api.account.data.DataUnavailable": "the account page's own GraphQL read found no data",
    "api.middleware._Overloaded": "control flow: shed a request beyond the in-flight limit",
    "api.admission.Refused": "control flow: no slot came free in time; the edge answers 503",
    "api.middleware._BodyTimeout": "control flow: a body not received in time becomes a 408",
    "api.middleware._ClientGone": "control flow: a client that hung up mid-body is counted 499",
    "api.middleware._TooLarge": "control flow: a body over the size limit",
    # GraphQL error shapes, chosen by schema/outcomes.py (their messages are safe to show).
    "schema.errors.PublicError": "a GraphQL error whose message is fixed text",
    "schema.errors.InvalidCursor": "a GraphQL error: a cursor not of this list",
    "schema.errors.InvalidArgument": "a GraphQL error: an argument out of range",
    "schema.errors.Forbidden": "the GraphQL error of domain Forbidden",
    "schema.errors.SupportError": "a typed GraphQL error of the support query fields",
    "schema.errors.AccessRefused": "the GraphQL error of domain InvalidAccess",
    "schema.errors.BadArgument": "the GraphQL error of domain InvalidInput",
    "schema.errors.LookLimit": "the GraphQL error of domain LimitReached on support looks",
    "schema.errors.AuditDown": "the GraphQL error of domain AuditUnavailable on support fields",
    "schema.request_errors.RequestError": "a GraphQL request error: a value of the wrong type",
    "schema.scopes.Unscoped": "a root field missing from the scope table (then refused)",
    "schema.plan.Unplannable": "control flow: a selection the planner leaves to the executor",
    "schema.planner.StoreFailed": "control flow: a store failed under a planned field; the "
    "executor's own 503 answer is given",
}

BELOW_THE_DOMAIN: dict[str, str] = {
    "domain._auditchain.Malformed": "a stored audit row that cannot be read back (verify only)",
    "domain.checkpoints.CheckpointError": "a checkpoint copy kept outside that is not one of ours",
    "domain.checkpoints.CheckpointRefused": "the log since the last checkpoint is broken: "
    "nothing is signed (the CLI and the periodic writer report it)",
    "exporters._registry.UnknownFormat": "no exporter by that name",
    "exporters._zip._Stopped": "control flow: the ZIP thread learns that its members stopped",
    "exporters.bundle.BundleError": "a bundle that cannot be planned as asked",
    "exporters.jwe.UnusableKey": "a partner key that bundles cannot be encrypted to",
    "stores.config.StoresError": "a stores file that cannot be used (one line naming the section)",
    "stores.migrate.MigrationError": "a migration that cannot be applied",
    "stores.postgres.NotInShape": "a page the database cannot write as JSON (the planner "
    "answers it with the executor)",
    "catalogue._reader.CatalogueError": "a catalogue that cannot be used",
}
