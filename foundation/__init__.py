"""What every room needs and may import without climbing: the user-facing error, JSON logging,
port and HTTP probes, and the one factory of Kafka clients. It imports nothing of ours."""
