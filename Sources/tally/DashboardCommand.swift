import ArgumentParser
import Foundation
import KernelAPI
import TallyCluster
import TallyEngine
import TallyOps

struct DashboardCommand: AsyncParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "dashboard",
    abstract: "Serve a live web dashboard of the cluster: voted business figures and every node's status.",
    discussion: helpText(
      """
      One page (inline CSS and JavaScript) updated by server-sent events: from the voted
      stream (replayed from seq 1, then live) net cash per participant for the open trade
      date, settlement rows by status, defaults, rejections by reason, trades per second;
      from the nodes (as `cluster status --json`) seqs, lag, kernel, votes, quarantine and
      the voter's latest alerts. Also serves /metrics (business metrics from voted data),
      /state (the page's JSON) and /health. Default address: the metrics host, base_port + 80.
      """))

  /// The status of the nodes and the alerts are polled this often.
  static let statusPollMs = 1_000

  @OptionGroup var cluster: ClusterOptions

  @Option(name: .long, help: "HOST:PORT to serve on (default: the metrics host, base_port + 80).")
  var listen: String?

  func run() async throws {
    let c = cluster.load()
    var host = c.ops.metricsHost ?? c.host
    var port = c.basePort + 80
    if let listen {
      guard let colon = listen.lastIndex(of: ":"), let p = Int(listen[listen.index(after: colon)...]),
        p > 0, p < 65_536
      else { throw ValidationError("--listen must be HOST:PORT") }
      host = String(listen[..<colon])
      port = p
    }
    let hub = DashboardHub()
    let configPath = cluster.config
    let data = cluster.dataDir(c)
    let reference = cluster.referenceDir(c)
    // The stream names rows by id; their keys start with the reference data's snapshot.
    if let reference {
      do { try hub.seed(snapshot: Follower.genesisSnapshot(try FileIO.loadReference(reference))) } catch {
        fail("dashboard: reference data \(reference): \(error)", code: 2)
      }
    } else {
      hub.nameUnknownRowsById()
      note(
        "dashboard: no reference folder (--reference or the config's `reference`): reference rows are named by id"
      )
    }
    let executable = selfExecutable()

    // The voted stream, from seq 1 (the business view), on its own thread (blocking ZeroMQ).
    Thread.detachNewThread {
      let context = makeContext()
      while true {
        do {
          let tap = StreamTap(config: c) { note("dashboard: " + $0) }
          try tap.run(
            context: context, next: { hub.next },
            apply: { _, _, records in try hub.apply(records: records) },
            idle: { caughtUp in if caughtUp { hub.setStreamError("") } })
        } catch {
          note("dashboard: stream: \(error); retrying")
          hub.setStreamError("\(error)")
          Thread.sleep(forTimeInterval: 2)
        }
      }
    }
    // The nodes' status and the voter's alerts (the technical view), and the rates.
    Thread.detachNewThread {
      let context = makeContext()
      let sup = Supervisor(
        config: c, configPath: configPath, data: data, reference: reference, executable: executable)
      while true {
        let g = ClusterStatus.gather(c, sup, context)
        let alerts = DashboardHub.tailLines(data + "/alerts.jsonl", max: DashboardHub.alertsKeptMax)
        hub.setStatus(g.json, alerts: alerts, alertsTotal: Int(g.alerts))
        hub.sample()
        Thread.sleep(forTimeInterval: Double(Self.statusPollMs) / 1_000)
      }
    }
    note("dashboard: http://\(host):\(port)/ (stream \(c.voterStream), data \(data))")
    do {
      try await DashboardServer.run(hub: hub, host: host, port: port)
    } catch { fail("dashboard on \(host):\(port): \(error)") }
  }
}
