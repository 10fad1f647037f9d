"""Local development stack: a real Apache Kafka broker and the project's services."""
