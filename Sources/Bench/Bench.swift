/// Benchmarks that print figures.
public enum BenchModule {}
