/// The simulated inference engine (issue: Engine simulator). Empty until that issue lands.
public enum EngineSimModule {}
