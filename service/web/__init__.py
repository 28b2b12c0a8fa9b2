"""The pages for operators and tenants, served by the service, with no CDN: thin views over
the same functions the API calls."""
