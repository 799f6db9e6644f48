import ArgumentParser
import Foundation
import TallyCluster

struct KeygenCommand: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "keygen",
    abstract: "Make a CurveZMQ key folder for a cluster ([security] keys = \"DIR\" in the config).",
    discussion: helpText(
      """
      Writes server.public/secret (every bound socket), node.public/secret (nodes talking to
      each other), client.public/secret (submit, report, status on this machine) and
      authorized_clients (client public keys the cluster admits, one per line; add other
      clients' public keys there). Secret files are mode 0600.
      """))
  @Option(name: .long, help: "The folder to create.")
  var out: String

  func run() throws {
    if FileManager.default.fileExists(atPath: out + "/server.secret") {
      fail("\(out) already holds keys; refusing to overwrite them", code: 2)
    }
    do { try CurveKeys.generate(into: out) } catch {
      fail("cannot write keys into \(out): \(error)", code: 3)
    }
    note("keygen: wrote CURVE keys into \(out)")
  }
}
