"""Export: dense embeddings of whole tiles, the daily product, and series at flux towers."""
