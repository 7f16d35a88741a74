import CFuzzDriver
import PromText

/// libFuzzer entry point: the input is a `/metrics` page as an engine might serve it. The
/// oracle: the parser never traps, and whatever it accepts renders to text that parses back to
/// an equal exposition.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzPromText(_ start: UnsafePointer<UInt8>?, _ count: Int) -> CInt {
    let bytes = Array(UnsafeBufferPointer(start: start, count: count))
    guard let exposition = try? PromTextParser.parse(bytes) else { return 0 }
    let rendered = exposition.text
    guard let again = try? PromTextParser.parse(rendered) else {
        fatalError("parsed, but its rendering does not parse:\n\(rendered)")
    }
    guard again == exposition else {
        fatalError("parsed, but its rendering parses to something else:\n\(rendered)")
    }
    return 0
}

/// SwiftPM names this target's entry point FuzzPromtext_main; libFuzzer's driver takes over from it.
@_cdecl("FuzzPromtext_main")
public func fuzzPromTextMain(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> CInt {
    var argc = argc
    var argv = argv
    return LLVMFuzzerRunDriver(&argc, &argv, fuzzPromText)
}
