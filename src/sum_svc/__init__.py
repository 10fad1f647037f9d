"""The sum service: a gRPC API that adds two int64 numbers and publishes each sum to Kafka."""
