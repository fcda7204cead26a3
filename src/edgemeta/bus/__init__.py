"""Message bus adapters (in-process, MQTT, NATS), the topic builder, the EdgeX envelope, the
outbox relay and the device-validation request/reply."""
