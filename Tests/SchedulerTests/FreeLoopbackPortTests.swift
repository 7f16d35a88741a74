import ProcessHarness
import Testing

/// The harness's port picker, which every multi-process test relies on.
@Suite struct FreeLoopbackPortTests {
    /// A port is handed out once per process, bound or not by its taker. A thousand random picks
    /// from the ~22,000 ports below the ephemeral range would repeat one almost surely (the
    /// birthday bound) if the picker only checked that the port binds now.
    @Test func noPortIsHandedOutTwice() throws {
        var seen: Set<Int> = []
        for _ in 0..<1_000 {
            let port = try freeLoopbackPort()
            #expect(seen.insert(port).inserted, "port \(port) handed out twice")
        }
    }
}
