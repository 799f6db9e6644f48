// ZeroMQTransport: placeholder until its module lands.
