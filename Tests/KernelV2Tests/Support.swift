import Foundation
import KernelAPI
import KernelV2
import TallyFormat

/// The repository root (…/Tests/KernelV2Tests/Support.swift → three levels up).
let sandboxRoot: String = {
  var url = URL(fileURLWithPath: #filePath)
  for _ in 0..<3 { url.deleteLastPathComponent() }
  return url.path
}()

let fixturesRoot = sandboxRoot + "/Tests/KernelV2Tests/Fixtures"

func readBytes(_ path: String) -> [UInt8] {
  guard let data = FileManager.default.contents(atPath: path) else { fatalError("cannot read \(path)") }
  return [UInt8](data)
}

func loadReference(_ dir: String) throws -> ReferenceData {
  try ReferenceParser.parse(prefix: dir) { name in
    FileManager.default.contents(atPath: dir + "/" + name).map { [UInt8]($0) }
  }
}

/// The event lines of a file (skipped lines dropped), in seq order.
func eventLines(_ path: String) -> [ArraySlice<UInt8>] {
  var out: [ArraySlice<UInt8>] = []
  for (_, line) in LineReader(readBytes(path)) where !EventParser.isSkipped(line) { out.append(line) }
  return out
}

/// Applies one line the way the engine does: the TradeLine fast path, or the parsed event.
@discardableResult
func applyLine(_ k: inout V2Kernel, _ line: ArraySlice<UInt8>, seq: Int64, fastPath: Bool = true) -> Outcome {
  if fastPath, let trade = EventParser.tradeLine(line) {
    let copy = Array(line)
    return copy.withUnsafeBytes { k.applyTrade(trade, line: $0, seq: seq) }
  }
  return k.apply(EventParser.parse(line), seq: seq)
}

struct RunResult {
  var kernel: V2Kernel
  var effectsText: String
}

func runMarket(
  reference dir: String, events path: String, fault: PlantedFault? = nil, fastPath: Bool = true
) throws -> RunResult {
  var k = V2Kernel(reference: try loadReference(dir), plantedFault: fault)
  k.enableEffects()
  var effects = k.snapshotEffects()
  for (i, line) in eventLines(path).enumerated() {
    applyLine(&k, line, seq: Int64(i + 1), fastPath: fastPath)
    effects += k.takeEffects()
  }
  let text = String(decoding: EffectText.render(try EffectDecoder.decode(effects)), as: UTF8.self)
  return RunResult(kernel: k, effectsText: text)
}

func rowsText(_ k: V2Kernel) -> String {
  var rows = ""
  let hex = Array("0123456789abcdef".utf8)
  k.forEachEncodedRow { table, id, bytes in
    var h: [UInt8] = []
    h.reserveCapacity(bytes.count * 2)
    for b in bytes {
      h.append(hex[Int(b >> 4)])
      h.append(hex[Int(b & 15)])
    }
    rows += "\(table.name) \(id) " + String(decoding: h, as: UTF8.self) + "\n"
  }
  return rows
}

func renderedFiles(_ k: V2Kernel) -> [String: [UInt8]] {
  var files: [String: [UInt8]] = [:]
  for (name, bytes) in ReportWriter.render(kernel: k) { files[name] = bytes }
  return files
}
