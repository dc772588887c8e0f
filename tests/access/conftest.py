from tests.access.world import world  # noqa: F401 - the module-scoped matrix data
