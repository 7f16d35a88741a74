/// Bounds an instance's registration must keep, shared by the agent (which trims what it
/// registers to fit) and the scheduler (which refuses a registration that does not).
public enum RegistrationLimits {
    /// Names one instance may serve besides its model (aliases, LoRA adapters), and adapters one
    /// report may show loaded. vLLM serves as many adapters as `--lora-modules` lists.
    public static let maxServedNames = 512
}
