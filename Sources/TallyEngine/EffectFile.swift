// Writes effect records to a file as they are produced (`tally run --effects`):
// binary (docs/EFFECTS.md: the magic, then event records) or text.
import Foundation
import KernelAPI
import TallyFormat

public final class EffectFileWriter {
  public enum Format: String, Sendable, CaseIterable {
    case text, binary
  }

  let handle: FileHandle
  let format: Format
  public let path: String
  /// The text is rendered from decoded events: the decoder keeps the key dictionary
  /// from the first write (the snapshot) on.
  var decoder = EffectDecoder()

  public init(path: String, format: Format) throws(OutputError) {
    self.path = path
    self.format = format
    handle = try FileIO.openForWriting(path, what: "effects file ")
    if format == .binary { try write(raw: EffectFormat.fileMagic) }
  }

  deinit { try? handle.close() }

  /// Appends event records (as taken from the engine).
  public func write(_ records: [UInt8]) throws(OutputError) {
    if records.isEmpty { return }
    switch format {
    case .binary: try write(raw: records)
    case .text:
      let events: [EffectEvent]
      do { events = try decoder.decode(records) } catch {
        preconditionFailure("the engine wrote effects its decoder refuses: \(error)")
      }
      try write(raw: EffectText.render(events))
    }
  }

  func write(raw: [UInt8]) throws(OutputError) {
    do { try handle.write(contentsOf: Data(raw)) } catch {
      throw OutputError("cannot write effects file \(path): \(error)")
    }
  }

  public func close() throws(OutputError) {
    do { try handle.close() } catch { throw OutputError("cannot close \(path): \(error)") }
  }
}
