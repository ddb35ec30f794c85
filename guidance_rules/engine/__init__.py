"""The engine: rules compiled into strata (`compile`), fired by durable-rules behind a safe
wrapper (`durable`), and fired ratings turned into one modality (`policy`)."""
