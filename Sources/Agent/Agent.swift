/// The sidecar beside each engine (issue: Agent). Empty until that issue lands.
public enum AgentModule {}
