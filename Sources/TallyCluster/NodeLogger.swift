// The nodes' logger: swift-log's `Logger` with the node's name as metadata (the
// structured logfmt handler with rotation is TallyOps's).
@_exported import Logging

extension Logger {
  /// A node's logger: every line carries `node=<name>`. Wall-clock time appears only
  /// in logs, never in state.
  public init(node: String) {
    self.init(label: "tally." + node)
    self[metadataKey: "node"] = .string(node)
  }

  /// `warning`, under the name the nodes have always used.
  public func warn(
    _ message: @autoclosure () -> Logger.Message, metadata: @autoclosure () -> Logger.Metadata? = nil,
    file: String = #fileID, function: String = #function, line: UInt = #line
  ) {
    warning(message(), metadata: metadata(), file: file, function: function, line: line)
  }
}
