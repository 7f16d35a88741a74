import Testing

@testable import Gateway

/// The access log carries a client's text (its model name): it cannot end the line or forge a field.
@Suite struct AccessLogTests {
    @Test func aClientsTextCannotBreakTheLine() {
        #expect(RequestRun.loggable("tiny") == "tiny")
        #expect(RequestRun.loggable("a b\nstatus=200 client=admin") == "a%20b%0Astatus=200%20client=admin")
        #expect(RequestRun.loggable("100%") == "100%25")
        #expect(RequestRun.loggable("é") == "%C3%A9")
        #expect(RequestRun.loggable(String(repeating: "m", count: 1_000)).count == 128)
    }
}
