// CurveZMQ on every link when the config names a key folder ([security] keys).
// One server keypair for every bound socket, one node keypair that nodes use to
// connect to each other, one client keypair for operators' tools (submit, report,
// status); a server admits only the node key and the keys in `authorized_clients`
// (one Z85 key a line). Refusals are logged by the node that refused.
import Foundation
import ZeroMQTransport

public struct CurveKeys: Sendable, Equatable {
  public var serverPublic: String
  public var serverSecret: String
  public var nodePublic: String
  public var nodeSecret: String
  public var clientPublic: String
  public var clientSecret: String
  public var authorizedClients: [String]

  static let files = [
    "server.public", "server.secret", "node.public", "node.secret", "client.public", "client.secret",
  ]

  public static func load(_ dir: String) throws(ConfigError) -> CurveKeys {
    func read(_ name: String) throws(ConfigError) -> String {
      guard let data = FileManager.default.contents(atPath: dir + "/" + name) else {
        throw ConfigError("\(dir)/\(name): missing (make the folder with `tally keygen --out \(dir)`)")
      }
      let key = String(decoding: data, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
      guard ZMQCurve.isValidKey(key) else {
        throw ConfigError("\(dir)/\(name): not a 40-character Z85 CURVE key")
      }
      return key
    }
    var authorized: [String] = []
    if let data = FileManager.default.contents(atPath: dir + "/authorized_clients") {
      for (n, line) in String(decoding: data, as: UTF8.self).split(separator: "\n").enumerated() {
        let key = line.trimmingCharacters(in: .whitespaces)
        if key.isEmpty || key.hasPrefix("#") { continue }
        guard ZMQCurve.isValidKey(key) else {
          throw ConfigError("\(dir)/authorized_clients:\(n + 1): not a 40-character Z85 CURVE key")
        }
        authorized.append(key)
      }
    }
    return CurveKeys(
      serverPublic: try read("server.public"), serverSecret: try read("server.secret"),
      nodePublic: try read("node.public"), nodeSecret: try read("node.secret"),
      clientPublic: try read("client.public"), clientSecret: try read("client.secret"),
      authorizedClients: authorized)
  }

  /// Writes a fresh key folder (secret files mode 0600).
  public static func generate(into dir: String) throws {
    try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
    for role in ["server", "node", "client"] {
      let pair = try ZMQCurve.keypair()
      try pair.publicKey.write(toFile: dir + "/\(role).public", atomically: true, encoding: .utf8)
      try pair.secretKey.write(toFile: dir + "/\(role).secret", atomically: true, encoding: .utf8)
      try FileManager.default.setAttributes([.posixPermissions: 0o600], ofItemAtPath: dir + "/\(role).secret")
      if role == "client" {
        try ("# client public keys admitted by the cluster, one per line\n" + pair.publicKey + "\n")
          .write(toFile: dir + "/authorized_clients", atomically: true, encoding: .utf8)
      }
    }
  }
}

public enum Secure {
  /// A socket that binds: CURVE server when keys are configured.
  public static func server(_ socket: ZMQSocket, _ keys: CurveKeys?) throws {
    guard let keys else { return }
    try socket.asCurveServer(secretKey: keys.serverSecret)
  }

  /// A node connecting to another node.
  public static func node(_ socket: ZMQSocket, _ keys: CurveKeys?) throws {
    guard let keys else { return }
    try socket.asCurveClient(
      serverPublicKey: keys.serverPublic, publicKey: keys.nodePublic, secretKey: keys.nodeSecret)
  }

  /// An operator's tool connecting to the cluster (submit, report, status).
  public static func client(_ socket: ZMQSocket, _ keys: CurveKeys?) throws {
    guard let keys else { return }
    try socket.asCurveClient(
      serverPublicKey: keys.serverPublic, publicKey: keys.clientPublic, secretKey: keys.clientSecret)
  }

  /// Starts the ZAP handler of a node's context: admits the node key and the
  /// authorized client keys, logs every refusal.
  public static func authenticator(context: ZMQContext, keys: CurveKeys?, log: Logger) throws
    -> ZAPAuthenticator?
  {
    guard let keys else { return nil }
    let auth = try ZAPAuthenticator(
      context: context, allowedClientKeys: [keys.nodePublic, keys.clientPublic] + keys.authorizedClients,
      onRefusal: { refusal in log.warn("refused a connection: \(refusal)") },
      onError: { error in log.error("authenticator stopped: \(error)") })
    try auth.start()
    return auth
  }
}
