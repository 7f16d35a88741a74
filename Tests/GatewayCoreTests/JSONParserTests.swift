import Foundation
import GatewayCore
import Seeded
import Testing

@Suite struct JSONParserTests {
    private func parse(_ text: String) throws(JSONParseError) -> JSONValue { try JSONParser.parse(Array(text.utf8)) }

    @Test func readsEveryKindOfValue() throws {
        let value = try parse(#" {"a": [1, -2.5e3, true, false, null, "x\"\\\/\b\f\n\r\tyé\u00e9\ud83d\ude00"], "b": {}, "c": []} "#)
        #expect(value["a"]?.array?.count == 6)
        #expect(value["a"]?.array?[0].int == 1)
        #expect(value["a"]?.array?[1] == .number(JSONNumber(text: "-2.5e3")))
        #expect(value["a"]?.array?[1].int == -2500)
        #expect(value["a"]?.array?[5].string == "x\"\\/\u{8}\u{c}\n\r\tyéé😀")
        #expect(value["b"] == .object([]) && value["c"] == .array([]))
    }

    @Test func aRepeatedKeyKeepsItsLastValue() throws {
        #expect(try parse(#"{"model":"a","model":"b"}"#)["model"]?.string == "b")
    }

    @Test func integersAreExactAndFractionsAreNotIntegers() throws {
        #expect(try parse("9007199254740993").int == 9_007_199_254_740_993)  // not representable as a Double
        #expect(try parse("16.0").int == 16)
        #expect(try parse("16.5").int == nil)
        #expect(try parse("1e400").int == nil)
    }

    @Test(arguments: [
        "", " ", "{", "}", "[1,]", "[,1]", #"{"a":1,}"#, #"{"a" 1}"#, #"{a:1}"#, "01", "1.", ".5", "-", "1e", "+1",
        "tru", "nul", "True", #""abc"#, "\"a\u{1}b\"", #""\x""#, #""\u12""#, #""\u12g4""#, "[1] [2]", "{} x", "NaN",
        "Infinity", "'a'",
    ])
    func refusesWhatIsNotJSON(text: String) {
        #expect(throws: JSONParseError.self) { try parse(text) }
    }

    @Test func refusesInvalidUTF8() {
        #expect(throws: JSONParseError.self) { try JSONParser.parse([0x22, 0xFF, 0xFE, 0x22]) }
        #expect(throws: JSONParseError.self) { try JSONParser.parse([0x22, 0x5C, 0x6E, 0xC3, 0x22]) }  // after an escape too
    }

    /// A body of nothing but brackets must be an error, never a stack overflow.
    @Test func deepNestingIsRefusedNotOverflowed() throws {
        let deep = String(repeating: "[", count: 200_000)
        #expect(throws: JSONParseError.self) { try parse(deep) }
        let allowed = String(repeating: "[", count: JSONParser.maxDepth) + String(repeating: "]", count: JSONParser.maxDepth)
        _ = try parse(allowed)
        let tooDeep = "[" + allowed + "]"
        #expect(throws: JSONParseError.self) { try parse(tooDeep) }
    }

    @Test func aLoneSurrogateBecomesTheReplacementCharacter() throws {
        #expect(try parse(#""a\ud800b""#).string == "a\u{FFFD}b")
        #expect(try parse(#""\udc00""#).string == "\u{FFFD}")
        #expect(try parse(#""\ud800\u0041""#).string == "\u{FFFD}A")
    }

    /// Seeded random documents, written by Foundation's serializer (which escapes as it likes),
    /// read back by the parser: the same value every time, for thousands of documents.
    @Test func agreesWithFoundationOnRandomDocuments() throws {
        var random = SplitMix64(seed: 0x5EED_0001)
        for _ in 0..<3_000 {
            let object = Self.randomObject(depth: 0, &random)
            let data = try JSONSerialization.data(withJSONObject: object, options: [.fragmentsAllowed])
            let parsed = try JSONParser.parse(Array(data))
            #expect(Self.matches(parsed, object), "\(String(decoding: data, as: UTF8.self))")
        }
    }

    private static func randomObject(depth: Int, _ random: inout SplitMix64) -> Any {
        let pick = depth > 3 ? Int.random(in: 0..<4, using: &random) : Int.random(in: 0..<6, using: &random)
        switch pick {
        case 0: return Int.random(in: -1_000_000...1_000_000, using: &random)
        case 1: return Bool.random(using: &random)
        case 2: return NSNull()
        case 3: return randomString(&random)
        case 4: return (0..<Int.random(in: 0..<5, using: &random)).map { _ in randomObject(depth: depth + 1, &random) }
        default:
            var object: [String: Any] = [:]
            for _ in 0..<Int.random(in: 0..<5, using: &random) { object[randomString(&random)] = randomObject(depth: depth + 1, &random) }
            return object
        }
    }

    private static func randomString(_ random: inout SplitMix64) -> String {
        let alphabet: [Character] = ["a", "Z", "0", " ", "\"", "\\", "/", "\n", "\t", "\u{1}", "\u{1F}", "é", "中", "😀", "\u{7F}"]
        return String((0..<Int.random(in: 0..<12, using: &random)).map { _ in alphabet.randomElement(using: &random)! })
    }

    private static func matches(_ value: JSONValue, _ object: Any) -> Bool {
        switch (value, object) {
        case (.null, is NSNull): return true
        case (.bool(let a), let b as Bool): return a == b
        case (.number(let a), let b as Int): return a.int == b
        case (.string(let a), let b as String): return a == b
        case (.array(let a), let b as [Any]): return a.count == b.count && zip(a, b).allSatisfy { matches($0, $1) }
        case (.object(let a), let b as [String: Any]):
            return a.count == b.count && a.allSatisfy { member in b[member.key].map { matches(member.value, $0) } ?? false }
        default: return false
        }
    }
}
