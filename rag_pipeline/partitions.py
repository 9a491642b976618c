from dagster import DynamicPartitionsDefinition

# One partition per document; the key is the document id (readable name + content hash).
DOCUMENTS = "documents"
documents = DynamicPartitionsDefinition(name=DOCUMENTS)
