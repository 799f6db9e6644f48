// `tally dashboard` in a real browser: a real cluster, the dashboard process, and
// headless Chromium (Tests/interop/dashboard_browser.py) holding the page open while
// events are submitted: it updates itself by server-sent events. The
// numbers on the page must be the voted ones: the trade count from the events and
// rejections, and each participant's net cash equal to the embedded run's
// settlement.csv. Ports: 211xx and 212xx (the dashboards at 21180 and 21280). With DASHBOARD_SCREENSHOT=PATH
// set, the test also saves a screenshot of the page there (docs/dashboard.png).
import Foundation
import XCTest

final class DashboardTests: ClusterTestCase {
  func testThePageShowsTheVotedNumbersLive() throws {
    let chromium = try requireBrowser()
    let m = try Market.generate(in: work, days: 1, tradesPerDay: 400)
    let events = try m.eventCount()
    let c = try cluster(basePort: 21_100, reference: m.reference)
    try c.up()
    let url = "http://127.0.0.1:21180/"
    let dashboard = try Child(
      Paths.tally, ["dashboard"] + c.common + ["--reference", m.reference, "--listen", "127.0.0.1:21180"],
      workDir: work, name: "dashboard")
    children.append(dashboard)
    XCTAssertTrue(
      eventually(30) { (try? httpGet(url + "state").body.contains("\"healthy\":true")) ?? false },
      "the dashboard never showed a healthy cluster: \((try? httpGet(url + "state").body) ?? "no answer")")

    // One page load in headless Chromium (DevTools protocol): the DOM once every node
    // is listed, then, never reloaded, once server-sent events brought the last seq.
    let browser = try Child(
      "/usr/bin/env",
      [
        "python3", Paths.interop + "/dashboard_browser.py", "--chromium", chromium, "--url", url,
        "--profile", work + "/chromium-profile",
        "--ready-js", "document.querySelectorAll('#nodes tbody tr').length === 5",
        "--before", work + "/before.html",
        // (and the cluster shown healthy: one status poll may time out on a loaded machine)
        "--until-js",
        "document.getElementById('last-seq').textContent === '\(events)'"
          + " && document.getElementById('health').textContent === 'healthy'"
          // (and every node's step time, from a status polled after its first batch)
          + " && [...document.querySelectorAll('#nodes td.step')].every((td) => td.textContent !== '')",
        "--after", work + "/after.html", "--timeout", "120",
      ] + screenshotArguments(), workDir: work, name: "browser")
    children.append(browser)
    XCTAssertTrue(
      eventually(90) { FileManager.default.fileExists(atPath: work + "/before.html") || !browser.isRunning },
      "the browser never loaded the page")
    let before = (try? String(contentsOfFile: work + "/before.html", encoding: .utf8)) ?? ""
    XCTAssertEqual(number(before, id: "trades-cleared"), "0", before)
    XCTAssertEqual(number(before, id: "last-seq"), "0", before)
    for node in TestCluster.nodeNames {
      XCTAssertTrue(before.contains("data-node=\"\(node)\""), "no row for \(node): \(before)")
    }

    try c.submit([m.events], batchLines: 100)
    let browsed = browser.wait(timeout: 150)
    XCTAssertEqual(browsed.status, 0, "the page did not reach seq \(events): \(browsed.output)")
    let after = (try? String(contentsOfFile: work + "/after.html", encoding: .utf8)) ?? ""

    // After: the page (fed by server-sent events) shows the voted figures.
    XCTAssertEqual(number(after, id: "last-seq"), String(events), after)
    XCTAssertEqual(number(after, id: "trades-cleared"), String(try appliedTrades(m)), after)
    let rejected = try csvRows(m.expected + "/rejections.csv").count
    XCTAssertEqual(number(after, id: "rejections-total"), String(rejected), after)
    // Net cash per participant for the open (latest) trade date, as in settlement.csv.
    let settlement = try csvRows(m.expected + "/settlement.csv")
    let openDate = settlement.map { $0[0] }.max() ?? ""
    let rows = settlement.filter { $0[0] == openDate }
    XCTAssertFalse(rows.isEmpty, "settlement.csv has no row")
    for row in rows {
      let participant = row[2]
      let net = row[3]
      let pattern = "data-participant=\"\(participant)\"><td>\(participant)</td><td class=\"num net [a-z]+\">"
      guard let r = after.range(of: pattern, options: .regularExpression) else {
        XCTFail("no row for \(participant) on \(openDate): \(after)")
        continue
      }
      let shown = after[r.upperBound...].prefix { $0 != "<" }
      XCTAssertEqual(String(shown), net, "net cash of \(participant) on \(openDate)")
    }
    XCTAssertEqual(number(after, id: "open-date"), openDate, after)
    XCTAssertTrue(after.contains("id=\"health\" class=\"ok\">healthy<"), after)
    // Every node's row ends with its step's mean (journal commit, batch, decision
    // commit), in milliseconds, from its status's StageTime.
    for node in TestCluster.nodeNames {
      let pattern =
        "data-node=\"\(node)\">(<td[^>]*>[^<]*</td>)*<td class=\"num step\">[0-9]+\\.[0-9]{2}</td></tr>"
      XCTAssertNotNil(
        after.range(of: pattern, options: .regularExpression), "no step time for \(node): \(after)")
    }

  }

  /// SSE clients beyond `DashboardHub.clientsMax` (16) are refused with 503, and a slot
  /// is given back when a client goes.
  func testServerSentEventClientsAreBounded() throws {
    let m = try Market.generate(in: work, days: 1, tradesPerDay: 50)
    let c = try cluster(basePort: 21_200, reference: m.reference)
    try c.up()
    let dashboard = try Child(
      Paths.tally, ["dashboard"] + c.common + ["--listen", "127.0.0.1:21280"], workDir: work,
      name: "dashboard")
    children.append(dashboard)
    XCTAssertTrue(eventually(30) { (try? httpGet("http://127.0.0.1:21280/health").status) == 200 })
    let script = """
      import http.client, sys, time
      def open_events():
          c = http.client.HTTPConnection("127.0.0.1", 21280, timeout=10)
          c.request("GET", "/events")
          r = c.getresponse()
          if r.status == 200:
              r.fp.readline()  # the first event
          return c, r.status
      held = [open_events() for _ in range(16)]
      print("held", " ".join(str(s) for _, s in held))
      extra, status = open_events()
      print("extra", status)
      c = http.client.HTTPConnection("127.0.0.1", 21280, timeout=10)
      c.request("GET", "/metrics")
      print([l for l in c.getresponse().read().decode().split("\\n") if l.startswith("tally_dashboard_sse_clients ")][0])
      held[0][0].close()
      for _ in range(100):
          time.sleep(0.1)
          again, status = open_events()
          if status == 200:
              break
      print("after one left", status)
      """
    let r = try runCommand("/usr/bin/env", ["python3", "-c", script], workDir: work, timeout: 60)
    XCTAssertEqual(r.status, 0, r.output)
    XCTAssertTrue(
      r.stdout.contains("held " + Array(repeating: "200", count: 16).joined(separator: " ")), r.output)
    XCTAssertTrue(r.stdout.contains("extra 503"), r.output)
    XCTAssertTrue(r.stdout.contains("tally_dashboard_sse_clients 16"), r.output)
    XCTAssertTrue(r.stdout.contains("after one left 200"), r.output)
  }

  /// `--screenshot PATH` when DASHBOARD_SCREENSHOT is set (how docs/dashboard.png is made).
  func screenshotArguments() -> [String] {
    guard let shot = ProcessInfo.processInfo.environment["DASHBOARD_SCREENSHOT"], !shot.isEmpty else {
      return []
    }
    return ["--screenshot", shot]
  }

  func requireBrowser() throws -> String {
    for dir in (ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin").split(separator: ":") {
      let path = "\(dir)/chromium"
      if FileManager.default.isExecutableFile(atPath: path) { return path }
    }
    XCTFail("chromium is not installed (scripts/setup.sh installs Debian's chromium)")
    throw TestFailure("no chromium")
  }

  /// The text of the element with `id` (a leaf element).
  func number(_ dom: String, id: String) -> String? {
    guard let r = dom.range(of: "id=\"\(id)\"") else { return nil }
    guard let gt = dom[r.upperBound...].firstIndex(of: ">") else { return nil }
    return String(dom[dom.index(after: gt)...].prefix { $0 != "<" })
  }

  /// Data rows of a SPEC §5 CSV file, split on commas.
  func csvRows(_ path: String) throws -> [[String]] {
    try String(contentsOfFile: path, encoding: .utf8).split(separator: "\n").dropFirst().map {
      $0.split(separator: ",", omittingEmptySubsequences: false).map(String.init)
    }
  }

  /// TRADE lines of the events file less the rejected TRADEs: the trades cleared.
  func appliedTrades(_ m: Market) throws -> Int {
    let lines = try String(contentsOfFile: m.events, encoding: .utf8).split(separator: "\n")
    let trades = lines.filter { $0.hasPrefix("TRADE,") }.count
    let rejected = try csvRows(m.expected + "/rejections.csv").filter { $0[1] == "TRADE" }.count
    return trades - rejected
  }
}
