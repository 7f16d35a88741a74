#if canImport(Glibc)
import Glibc
#else
import Darwin
#endif

extension SplitMix64 {
    /// A uniform draw in [0, 1) with 53 bits of precision.
    public mutating func nextUnit() -> Double { Double(next() >> 11) / Double(1 << 53) }

    /// A log-normal draw with the given median and σ of its logarithm (Box–Muller; two draws).
    public mutating func nextLogNormal(median: Double, sigma: Double) -> Double {
        let u1 = max(nextUnit(), 1e-12)
        let u2 = nextUnit()
        let normal = (-2 * log(u1)).squareRoot() * cos(2 * Double.pi * u2)
        return median * exp(sigma * normal)
    }
}
