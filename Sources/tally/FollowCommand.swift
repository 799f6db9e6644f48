import ArgumentParser
import Foundation
import KernelAPI
import TallyCluster
import TallyEngine

struct FollowCommand: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "follow",
    abstract: "Keep the seven SPEC §5 files of a folder current from the cluster's voted stream.",
    discussion: helpText(
      """
      Subscribes to the voter's stream (docs/STREAM.md), replays what it missed, and
      rewrites OUT's files atomically (each file by a rename, then OUT/as_of_seq) as
      batches are voted. Its position is in OUT/.follow: SIGKILL it at any moment and
      start it again; it resumes, losing and duplicating nothing. With --exit-at-seq N
      it exits 0 once the files are as of seq N.
      """))

  @OptionGroup var cluster: ClusterOptions

  @Option(name: .long, help: "The folder to keep current (created if missing).")
  var out: String

  @Option(name: .long, help: "Exit once the files are as of this seq.")
  var exitAtSeq: Int64?

  func run() throws {
    let c = cluster.load()
    guard let referenceDir = cluster.referenceDir(c) else {
      fail("give --reference (or set reference in the config)", code: 64)
    }
    let reference: ReferenceData
    do { reference = try FileIO.loadReference(referenceDir) } catch { fail("\(error)", code: 2) }
    do {
      let follower = try Follower(
        config: c, reference: reference, out: out, exitAtSeq: exitAtSeq, log: { note($0) })
      try follower.run(context: makeContext())
      note("follow: \(out) is as of seq \(follower.next - 1)")
    } catch { fail("\(error)", code: 3) }
  }
}
