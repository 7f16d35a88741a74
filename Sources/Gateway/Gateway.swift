/// The OpenAI-compatible gateway (issue: Gateway). Empty until that issue lands.
public enum GatewayModule {}
