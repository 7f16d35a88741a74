/// One client operation on a register, as the client saw it.
public struct RegisterOperation: Sendable, Hashable {
    public enum Kind: Sendable, Hashable {
        case put(UInt64)
        /// The value read; 0 for "never written".
        case get(UInt64)
    }

    public var client: Int
    public var kind: Kind
    public var call: Int
    /// When the client saw the answer; nil when it never did (the write may or may not have
    /// happened, at any time after `call`).
    public var returned: Int?

    public init(client: Int, kind: Kind, call: Int, returned: Int?) {
        self.client = client
        self.kind = kind
        self.call = call
        self.returned = returned
    }
}

/// Decides whether a history of register operations is linearizable: whether some total order
/// of them respects real time (an operation that returned before another was called comes first)
/// and register semantics (a read returns the latest write). Wing & Gong's search with Lowe's
/// memoisation of (operations linearized, register value), as in Porcupine.
public enum LinearizabilityChecker {
    public enum Verdict: Sendable, Equatable {
        case linearizable
        case notLinearizable
        /// The search visited `budget` states without an answer.
        case gaveUp
    }

    public static func check(_ history: [RegisterOperation], budget: Int = 2_000_000) -> Verdict {
        // A write of unknown outcome whose value nobody read can always be placed last, after
        // everything else, so it never decides the answer; dropping it keeps the search small.
        // (Values are unique per write, which is what makes "nobody read it" exact.)
        var observed = Set<UInt64>()
        for op in history { if case .get(let v) = op.kind { observed.insert(v) } }
        let relevant = history.filter { op in
            if op.returned == nil, case .put(let v) = op.kind { return observed.contains(v) }
            return true
        }
        if relevant.isEmpty { return .linearizable }
        var search = Search(relevant)
        return search.run(budget: budget)
    }

    private struct Search {
        // The history as a doubly linked list of call and return events in time order.
        struct Node {
            var op: Int
            var isCall: Bool
            var match: Int   // a call's return node, or a return's call node
            var prev: Int
            var next: Int
        }

        let ops: [RegisterOperation]
        var nodes: [Node] = []
        let headIndex: Int  // a sentinel before the first event

        init(_ history: [RegisterOperation]) {
            ops = history
            let never = Int.max
            // Calls sort before returns at the same instant: such operations count as concurrent.
            var events: [(time: Int, isReturn: Int, op: Int)] = []
            for (i, op) in history.enumerated() {
                events.append((op.call, 0, i))
                events.append((op.returned ?? never, 1, i))
            }
            events.sort { ($0.time, $0.isReturn, $0.op) < ($1.time, $1.isReturn, $1.op) }
            nodes.append(Node(op: -1, isCall: false, match: -1, prev: -1, next: 1))
            var callNode = [Int](repeating: -1, count: history.count)
            for (position, event) in events.enumerated() {
                let index = position + 1
                nodes.append(Node(op: event.op, isCall: event.isReturn == 0, match: -1,
                                  prev: index - 1, next: index + 1 <= events.count ? index + 1 : -1))
                if event.isReturn == 0 {
                    callNode[event.op] = index
                } else {
                    nodes[index].match = callNode[event.op]
                    nodes[callNode[event.op]].match = index
                }
            }
            headIndex = 0
        }

        private mutating func lift(_ call: Int) {
            for index in [call, nodes[call].match] {
                let node = nodes[index]
                nodes[node.prev].next = node.next
                if node.next != -1 { nodes[node.next].prev = node.prev }
            }
        }

        private mutating func unlift(_ call: Int) {
            for index in [nodes[call].match, call] {
                let node = nodes[index]
                nodes[node.prev].next = index
                if node.next != -1 { nodes[node.next].prev = index }
            }
        }

        struct CacheKey: Hashable {
            var linearized: [UInt64]
            var value: UInt64
        }

        mutating func run(budget: Int) -> Verdict {
            var linearized = [UInt64](repeating: 0, count: (ops.count + 63) / 64)
            var value: UInt64 = 0
            var cache = Set<CacheKey>()
            var stack: [(call: Int, value: UInt64)] = []
            var entry = nodes[headIndex].next
            while nodes[headIndex].next != -1 {
                let node = nodes[entry]
                if node.isCall {
                    let op = ops[node.op]
                    var newValue = value
                    var legal = true
                    switch op.kind {
                    case .put(let v): newValue = v
                    case .get(let v): legal = v == value
                    }
                    if legal {
                        var bits = linearized
                        bits[node.op / 64] |= 1 << UInt64(node.op % 64)
                        if cache.insert(CacheKey(linearized: bits, value: newValue)).inserted {
                            if cache.count > budget { return .gaveUp }
                            stack.append((entry, value))
                            value = newValue
                            linearized = bits
                            lift(entry)
                            entry = nodes[headIndex].next
                            continue
                        }
                    }
                    entry = node.next
                } else {
                    // A return whose call is not linearized yet: undo the last choice.
                    guard let (call, previous) = stack.popLast() else { return .notLinearizable }
                    value = previous
                    let op = nodes[call].op
                    linearized[op / 64] &= ~(1 << UInt64(op % 64))
                    unlift(call)
                    entry = nodes[call].next
                }
            }
            return .linearizable
        }
    }
}
