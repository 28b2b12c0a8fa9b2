"""The API's routes, one module per subject; ``service.api.app`` includes their routers."""
