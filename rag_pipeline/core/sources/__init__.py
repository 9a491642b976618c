"""Sources of a collection: buckets whose objects are kept in step with its documents.

`s3` lists and reads an S3-compatible bucket; `sync` turns what changed since the last look
into documents through the documents service (new, new version, retired).
"""
