"""A document's life: the documents service, reruns, options, metadata, the landing zone."""
