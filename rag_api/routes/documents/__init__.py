"""Documents: uploads and their records (`records`), fetching by URL (`fetch`), the progress
stream (`events`), and reprocess and retry (`reruns`)."""
