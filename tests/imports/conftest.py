"""The automation tests' demo org (shipped processes deployed), for routing of imports."""
from tests.automation.conftest import demo, engine  # noqa: F401  (fixtures)
