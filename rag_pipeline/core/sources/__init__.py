"""Sources of a collection: buckets and web sites whose objects or pages are kept in step with
its documents, and single documents fetched by URL.

`s3` lists and reads an S3-compatible bucket; `web` finds a site's pages (listed, sitemap),
obeying robots.txt, and reads them through `fetch`; `sync` turns what changed since the last look
into documents through the documents service (new, new version, retired). `fetch` brings one
document back from a URL a writer gives, under the rules of `addresses`: what it may reach.
"""
