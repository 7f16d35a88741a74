import Testing
import Wire

/// Only a well-formed W3C `traceparent` reaches a tracer (https://www.w3.org/TR/trace-context/).
@Suite struct TraceParentTests {
    static let good = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"

    @Test func theSpecsExampleAndLaterVersionsAreAccepted() {
        #expect(TraceParent.isValid(Self.good))
        #expect(TraceParent.isValid("00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-00"))
        // A later version may carry more after a dash; its first four fields are read as 00's.
        #expect(TraceParent.isValid("01-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01-more"))
        #expect(TraceParent.isValid("01-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"))
    }

    @Test func theSampledFlagIsBitZeroOfTheFlags() {
        #expect(TraceParent.isSampled(Self.good))
        #expect(TraceParent.isSampled("00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-03"))
        #expect(!TraceParent.isSampled("00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-00"))
        #expect(!TraceParent.isSampled("00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-02"))
        #expect(!TraceParent.isSampled("garbage-01"))
    }

    @Test(arguments: [
        "", "garbage", String(good.dropLast()), good + "0", good + "-x",
        "00-00000000000000000000000000000000-b7ad6b7169203331-01",
        "00-0af7651916cd43dd8448eb211c80319c-0000000000000000-01",
        "00-0AF7651916CD43DD8448EB211C80319C-b7ad6b7169203331-01",
        "ff-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
        "00_0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
        "00-0af7651916cd43dd8448eb211c80319g-b7ad6b7169203331-01",
        "01-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01x",
        "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01" + String(repeating: "-x", count: 300),
    ])
    func malformedValuesAreRefused(_ value: String) {
        #expect(!TraceParent.isValid(value))
    }
}
