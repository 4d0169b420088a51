"""The rules of the service: who may do what, the limits, and the audit log beside every write.

No web framework here: `api/` turns HTTP into principals and calls, `schema/` turns GraphQL into
calls, and both map this package's errors (`domain.errors`) to their own answers.
"""
