import Routing
import Seeded

/// Eight instances in random states, models, roles and loads, for the policies' property tests.
/// `role` picks each instance's role from the roll that also picked its state (and may draw more).
func randomPool(
    _ rng: inout SplitMix64, otherModelOneIn: UInt64, role: (_ roll: UInt64, _ rng: inout SplitMix64) -> RoutingInstance.Role
) -> [RoutingInstance] {
    (0..<8).map { index in
        let roll = rng.next() % 10
        let model = rng.next() % otherModelOneIn == 0 ? "other" : "m"
        let role = role(roll, &rng)
        return RoutingInstance(
            id: "i\(index)", model: model, state: roll == 0 ? .down : roll == 1 ? .draining : .up, role: role,
            load: rng.next() % 3 == 0 ? nil : EngineLoad(
                running: Int(rng.next() % 50), waiting: Int(rng.next() % 80),
                kvUsage: Double(rng.next() % 101) / 100, ageMilliseconds: Int(rng.next() % 8_000)),
            inFlight: Int(rng.next() % 20))
    }
}
