/// A deterministic stand-in for a real tokenizer, about 4 characters a token.
///
/// Text is cut into lines; each newline is a token of its own and each line is cut into chunks of
/// 4 UTF-8 bytes (the last chunk of a line may be shorter). A chunk's token id is a hash of its
/// bytes. Because every line starts a new chunk, a piece of text that starts a line always
/// tokenizes the same way wherever it appears, so an answer the engine generated (made of whole
/// 4-byte words, see `Vocabulary`) and later sent back inside a longer chat history gives the same
/// tokens, as a real tokenizer (nearly always) does. English text comes out at about one token
/// per 4 characters, close to what BPE tokenizers of 7B-class models give.
public enum StandInTokenizer {
    public static let bytesPerToken = 4
    /// Token ids are kept below this bound so they look like a real vocabulary's ids.
    public static let vocabularySize: UInt32 = 151_646

    public static func tokenize(_ text: String) -> [UInt32] {
        var tokens: [UInt32] = []
        tokens.reserveCapacity(text.utf8.count / bytesPerToken + 4)
        var chunk: UInt64 = 0xcbf2_9ce4_8422_2325
        var chunkLength = 0
        for byte in text.utf8 {
            if byte == 0x0A {
                if chunkLength > 0 { tokens.append(finish(chunk)) }
                tokens.append(newlineToken)
                chunk = 0xcbf2_9ce4_8422_2325
                chunkLength = 0
                continue
            }
            chunk = (chunk ^ UInt64(byte)) &* 0x0000_0100_0000_01B3
            chunkLength += 1
            if chunkLength == bytesPerToken {
                tokens.append(finish(chunk))
                chunk = 0xcbf2_9ce4_8422_2325
                chunkLength = 0
            }
        }
        if chunkLength > 0 { tokens.append(finish(chunk)) }
        return tokens
    }

    /// How many tokens `tokenize` would return, without building the array.
    public static func count(_ text: String) -> Int {
        var count = 0
        var chunkLength = 0
        for byte in text.utf8 {
            if byte == 0x0A {
                count += chunkLength > 0 ? 2 : 1
                chunkLength = 0
            } else {
                chunkLength += 1
                if chunkLength == bytesPerToken {
                    count += 1
                    chunkLength = 0
                }
            }
        }
        return count + (chunkLength > 0 ? 1 : 0)
    }

    static let newlineToken: UInt32 = 198

    private static func finish(_ hash: UInt64) -> UInt32 {
        UInt32(truncatingIfNeeded: (hash ^ (hash >> 32)) % UInt64(vocabularySize))
    }
}
