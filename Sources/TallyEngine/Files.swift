// File I/O for the embedded mode: reference folders, event files, output folders.
// Errors name the path and what went wrong.
import Foundation
import TallyCore
import TallyFormat

public enum FileIO {
  public static func read(_ path: String) throws(InputError) -> [UInt8] {
    do {
      return [UInt8](try Data(contentsOf: URL(fileURLWithPath: path)))
    } catch {
      throw InputError(file: path, line: 0, problem: "cannot read: \(describe(error))")
    }
  }

  static func describe(_ error: any Error) -> String {
    if let e = error as? CocoaError, let underlying = e.userInfo[NSUnderlyingErrorKey] as? NSError {
      return underlying.localizedDescription
    }
    return (error as NSError).localizedDescription
  }

  /// Loads and validates a reference folder (SPEC §2).
  public static func loadReference(_ folder: String) throws(InputError) -> ReferenceData {
    var isDirectory: ObjCBool = false
    guard FileManager.default.fileExists(atPath: folder, isDirectory: &isDirectory), isDirectory.boolValue
    else {
      throw InputError(file: folder, line: 0, problem: "reference folder does not exist or is not a folder")
    }
    return try ReferenceParser.parse(prefix: folder) { name in
      let path = folder + "/" + name
      return FileManager.default.isReadableFile(atPath: path) ? (try? read(path)) : nil
    }
  }

  /// Writes files into `folder` (created if needed), each atomically.
  public static func writeFolder(_ folder: String, files: [(name: String, bytes: [UInt8])])
    throws(OutputError)
  {
    do {
      try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
    } catch {
      throw OutputError("cannot create output folder \(folder): \(describe(error))")
    }
    for file in files {
      let path = folder + "/" + file.name
      do {
        try Data(file.bytes).write(to: URL(fileURLWithPath: path), options: .atomic)
      } catch {
        throw OutputError("cannot write \(path): \(describe(error))")
      }
    }
  }
}

public struct OutputError: Error, CustomStringConvertible, Sendable {
  public var description: String
  public init(_ description: String) { self.description = description }
}
