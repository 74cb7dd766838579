"""The contract between agencies and consumers: Avro schemas, their codec and the evolution gate."""
