from dagster import DynamicPartitionsDefinition

# One partition per document; the key is the document id (readable name + content hash).
DOCUMENTS = "documents"
documents = DynamicPartitionsDefinition(name=DOCUMENTS)

# Range runs the sensor launches also name their documents: a document at either end of the
# range that is deleted before the run starts leaves Dagster unable to resolve the range, and
# the others must still run (and their status must still find the run).
DOCUMENT_IDS_TAG = "rag/document_ids"
