@testable import Gateway
import NIOCore
import Testing

@Suite struct StreamMeterTests {
    private func meter(_ chunks: [String]) -> StreamMeter {
        var meter = StreamMeter(started: .now)
        for chunk in chunks { meter.saw(ByteBuffer(string: chunk)) }
        return meter
    }

    @Test func theTerminalEventIsSeenWholeEvenAcrossChunks() {
        #expect(meter(["data: {\"a\":1}\n\n", "data: [DONE]\n\n"]).endsWithTerminalEvent)
        #expect(meter(["data: {\"a\":1}\n\ndata: [DO", "NE]\n", "\n"]).endsWithTerminalEvent)
        #expect(meter(["data:[DONE]\r\n\r\n"]).endsWithTerminalEvent)
    }

    @Test func anythingShortOfTheTerminalEventIsNot() {
        // Its blank line has not come, it is not a whole line, or more followed it.
        #expect(!meter(["data: [DONE]\n"]).endsWithTerminalEvent)
        #expect(!meter(["data: x data: [DONE]\n\n"]).endsWithTerminalEvent)
        #expect(!meter(["data: [DONE]\n\ndata: {}\n\n"]).endsWithTerminalEvent)
        #expect(!meter(["data: {\"content\":\"[DONE]\"}\n\n"]).endsWithTerminalEvent)
        #expect(!meter([]).endsWithTerminalEvent)
    }
}
