"""Every Kafka client of the services and the tools is built here: one place for what all of them share
(bootstrap, reconnect back-off, diagnostics) and what every producer of events needs (idempotence,
acks=all), so a new setting (credentials, TLS) is written once."""
