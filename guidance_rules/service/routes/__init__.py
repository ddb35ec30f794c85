"""The service's routes, one router per area: CDS Hooks, the JSON API, operations (the page's
routes are registered by `service.page`)."""
