"""Connection security of the local exchange: the project's CA, SCRAM credentials, the principals."""
