from dagster import DynamicPartitionsDefinition

# One partition per document; the key is the document id (readable name + content hash).
documents = DynamicPartitionsDefinition(name="documents")
