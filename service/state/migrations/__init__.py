"""Alembic's environment and revisions for the operational database, run in-process by
``service.state.migrate`` (there is no alembic.ini: the URL is the service's setting)."""
