// raft-sim: runs the deterministic Raft simulation for a range of seeds.
//   swift run -c release raft-sim --seed 1 --count 2000
// Exit status 0 only if every seed passes. A failing seed prints the one line that replays it.
#if canImport(Glibc)
import Glibc
#else
import Darwin
#endif
import RaftSim

struct Options: Sendable {
    var seed: UInt64 = 1
    var count = 1
    var nodes: Int? = nil
    var bug: InjectedBug? = nil
    var verbose = false
    var jobs = 2
    var quiet = false
}

func usage() -> Never {
    print("""
        usage: raft-sim [--seed S] [--count N] [--nodes 3|5] [--bug NAME] [--jobs J] [--verbose] [--quiet]
          --seed S     first seed (default 1)
          --count N    seeds to run: S, S+1, ... (default 1)
          --nodes N    force the group size (default: drawn from the seed, 3 or 5)
          --bug NAME   inject a known Raft bug to show the checkers catch it: \(InjectedBug.allCases.map(\.rawValue).joined(separator: ", "))
          --jobs J     seeds run in parallel (default 2)
          --verbose    print each seed's parameters, and the event trace of a failure
        """)
    exit(2)
}

func parse() -> Options {
    var options = Options()
    var args = CommandLine.arguments.dropFirst()
    func value(_ name: String) -> String {
        guard let v = args.popFirst() else { print("raft-sim: \(name) needs a value"); usage() }
        return v
    }
    while let arg = args.popFirst() {
        switch arg {
        case "--seed": guard let v = UInt64(value(arg)) else { usage() }; options.seed = v
        case "--count": guard let v = Int(value(arg)), v > 0 else { usage() }; options.count = v
        case "--nodes": guard let v = Int(value(arg)), v >= 1, v <= 9 else { usage() }; options.nodes = v
        case "--bug": guard let v = InjectedBug(rawValue: value(arg)) else { usage() }; options.bug = v
        case "--jobs": guard let v = Int(value(arg)), v > 0 else { usage() }; options.jobs = v
        case "--verbose": options.verbose = true
        case "--quiet": options.quiet = true
        case "--help", "-h": usage()
        default: print("raft-sim: unknown argument \(arg)"); usage()
        }
    }
    return options
}

@main
struct RaftSimCommand {
    static func main() async {
        let options = parse()
        let summary = await SimulationRunner.run(
            firstSeed: options.seed, count: options.count, nodes: options.nodes, bug: options.bug,
            jobs: options.jobs, trace: options.verbose
        ) { result in
            if options.verbose { print("seed \(result.seed): \(result.parameters)") }
            if let failure = result.failure {
                print("FAIL seed \(result.seed) at \(result.failedAt ?? 0)ms: \(failure)")
                if options.verbose { result.trace.forEach { print("  \($0)") } }
                print("  reproduce: swift run -c release raft-sim --seed \(result.seed) --count 1"
                      + (options.nodes.map { " --nodes \($0)" } ?? "")
                      + (options.bug.map { " --bug \($0.rawValue)" } ?? "") + " --verbose")
            } else if options.verbose {
                print("  ok: \(result.events) events, \(result.committed) committed, \(result.elections) terms with a leader, "
                      + "\(result.operations) client operations, \(result.crashes) crashes, \(result.snapshotsInstalled) snapshots installed, \(result.membershipChanges) membership changes proposed (\(result.membershipChangesCommitted) committed), \(result.wipes) disks wiped")
            }
        }
        print(summary.description)
        exit(summary.failed == 0 ? 0 : 1)
    }
}
