"""The pages: operators' park overview, opportunities, pipeline and savings, and the tenant
portal, server-rendered under ``/web`` from the same functions the API and the CLI call."""
