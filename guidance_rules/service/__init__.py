"""The CDS Hooks service: a thin web shell over the library (install the `service` extra).

Only this package imports web, database and FHIR libraries; the core never does. Importing
`guidance_rules.service` itself stays cheap: the app, the store and the FHIR models are
imported by the modules that need them (`app`, `store`, `fhir`).
"""
