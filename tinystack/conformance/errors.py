"""The one error the harness raises when it cannot do its job (as opposed to tests failing)."""


class HarnessError(Exception):
    """The harness could not run: no Tempest, no clouds.yaml, no tests selected, Tempest crashed."""
