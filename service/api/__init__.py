"""The HTTP API (FastAPI): the same functions as the command line, behind API keys, with
object-level checks (``service.auth.access``) on everything it returns."""
