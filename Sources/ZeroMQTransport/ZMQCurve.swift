import CZeroMQ

#if canImport(Glibc)
  import Glibc
#elseif canImport(Musl)
  import Musl
#elseif canImport(Darwin)
  import Darwin
#endif

/// CURVE keys (Curve25519), as 40-character Z85 text, the form libzmq and its tools use.
public enum ZMQCurve {
  /// True when libzmq was built with CURVE (libsodium).
  public static var isAvailable: Bool { zmq_has("curve") != 0 }

  /// A fresh long-term keypair (zmq_curve_keypair).
  public static func keypair() throws -> (publicKey: String, secretKey: String) {
    var publicKey = [CChar](repeating: 0, count: 41)
    var secretKey = [CChar](repeating: 0, count: 41)
    defer { for i in secretKey.indices { secretKey[i] = 0 } }
    if zmq_curve_keypair(&publicKey, &secretKey) != 0 { throw ZMQError.last("zmq_curve_keypair") }
    return (text(publicKey), text(secretKey))
  }

  /// The public key that belongs to a secret key (zmq_curve_public).
  public static func publicKey(fromSecret secretKey: String) throws -> String {
    guard isValidKey(secretKey) else {
      throw ZMQError(errno: EINVAL, operation: "ZMQCurve.publicKey(fromSecret:): not a 40-character Z85 key")
    }
    var publicKey = [CChar](repeating: 0, count: 41)
    let rc = secretKey.withCString { zmq_curve_public(&publicKey, $0) }
    if rc != 0 { throw ZMQError.last("zmq_curve_public") }
    return text(publicKey)
  }

  /// True for 40 characters of valid Z85 that decode to a 32-byte key.
  public static func isValidKey(_ z85: String) -> Bool {
    decode(z85) != nil
  }

  /// The 32 key bytes, or nil when `z85` is not a 40-character Z85 key.
  static func decode(_ z85: String) -> [UInt8]? {
    guard z85.utf8.count == 40 else { return nil }
    var key = [UInt8](repeating: 0, count: 32)
    let ok = z85.withCString { zmq_z85_decode(&key, $0) != nil }
    return ok ? key : nil
  }

  /// Z85 text of a 32-byte key.
  static func encode(_ key: [UInt8]) -> String? {
    guard key.count == 32 else { return nil }
    var out = [CChar](repeating: 0, count: 41)
    let ok = key.withUnsafeBufferPointer { zmq_z85_encode(&out, $0.baseAddress, 32) != nil }
    return ok ? text(out) : nil
  }

  private static func text(_ chars: [CChar]) -> String {
    String(decoding: chars.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
  }
}
