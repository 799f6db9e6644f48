// Real sockets over tcp loopback (ephemeral ports) and inproc. No timing assertions
// beyond generous upper bounds; every wait has a deadline so a failure cannot hang.
import Dispatch
import Synchronization
import XCTest

@testable import ZeroMQTransport

private func bytes(_ text: String) -> [UInt8] { Array(text.utf8) }
private func text(_ bytes: [UInt8]) -> String { String(decoding: bytes, as: UTF8.self) }

/// Binds `socket` to an ephemeral loopback port and returns the resolved endpoint.
private func bindEphemeral(_ socket: ZMQSocket) throws -> String {
  try socket.bind("tcp://127.0.0.1:*")
  let endpoint = try XCTUnwrap(socket.lastEndpoint)
  XCTAssertTrue(endpoint.hasPrefix("tcp://127.0.0.1:"), endpoint)
  XCTAssertFalse(endpoint.hasSuffix(":*"), endpoint)
  return endpoint
}

/// Collects values from other threads.
private final class Collector<Value: Sendable>: Sendable {
  private let values = Mutex<[Value]>([])
  func append(_ value: Value) { values.withLock { $0.append(value) } }
  var all: [Value] { values.withLock { $0 } }
}

final class ZeroMQTransportTests: XCTestCase {
  func testDealerRouterRoundTripWithRoutingId() throws {
    let context = try ZMQContext()
    let router = try ZMQSocket(context: context, type: .router)
    let endpoint = try bindEphemeral(router)
    let dealer = try ZMQSocket(context: context, type: .dealer)
    try dealer.setRoutingId(bytes("client-7"))
    try dealer.connect(endpoint)

    XCTAssertTrue(try dealer.send([bytes("submit"), [], [0, 1, 2, 255]]))
    let request = try XCTUnwrap(router.receive(timeoutMs: 5000))
    XCTAssertEqual(request, [bytes("client-7"), bytes("submit"), [], [0, 1, 2, 255]])

    try router.setRouterMandatory(true)
    XCTAssertTrue(try router.send([request[0], bytes("ack"), bytes("42")]))
    XCTAssertEqual(try dealer.receive(timeoutMs: 5000), [bytes("ack"), bytes("42")])

    // An unknown routing id is an error with routerMandatory, not a silent drop.
    XCTAssertThrowsError(try router.send([bytes("nobody"), bytes("x")])) { error in
      XCTAssertTrue((error as? ZMQError)?.isHostUnreachable ?? false, "\(error)")
    }
  }

  func testPushPullTenThousandInOrder() throws {
    let context = try ZMQContext()
    let pull = try ZMQSocket(context: context, type: .pull)
    let endpoint = try bindEphemeral(pull)
    let push = try ZMQSocket(context: context, type: .push)
    try push.connect(endpoint)

    // The sender runs on its own thread (the high-water marks would block a single thread);
    // it keeps its socket open until the receiver has everything (linger is 0).
    let count = 10_000
    let handoff = ZMQSocketHandoff(push)
    let received = DispatchSemaphore(value: 0)
    let senderDone = DispatchSemaphore(value: 0)
    let senderErrors = Collector<String>()
    Thread.detachNewThread {
      let push = handoff.take()
      do {
        for i in 0..<count {
          var n = UInt32(i).bigEndian
          try push.send([withUnsafeBytes(of: &n) { Array($0) }, bytes("payload-\(i)")])
        }
      } catch { senderErrors.append("\(error)") }
      _ = received.wait(timeout: .now() + 20)
      push.close()
      senderDone.signal()
    }

    for i in 0..<count {
      guard let message = try pull.receive(timeoutMs: 5000) else {
        XCTFail("message \(i) did not arrive")
        break
      }
      let n = message[0].reduce(0) { $0 << 8 | Int($1) }
      if n != i || message[1] != bytes("payload-\(i)") {
        XCTFail("out of order: expected \(i), got \(n)")
        break
      }
    }
    received.signal()
    XCTAssertEqual(senderDone.wait(timeout: .now() + 10), .success)
    XCTAssertEqual(senderErrors.all, [])
  }

  func testPubSubPrefixSubscription() throws {
    let context = try ZMQContext()
    let pub = try ZMQSocket(context: context, type: .pub)
    let endpoint = try bindEphemeral(pub)
    let sub = try ZMQSocket(context: context, type: .sub)
    try sub.subscribe(bytes("fills."))
    try sub.connect(endpoint)

    // Slow joiner: the subscription reaches the publisher some time after connect.
    var first: [[UInt8]]? = nil
    let deadline = Date().addingTimeInterval(5)
    while first == nil && Date() < deadline {
      try pub.send([bytes("orders.1"), bytes("x")])
      try pub.send([bytes("fills.0"), bytes("first")])
      first = try sub.receive(timeoutMs: 50)
    }
    XCTAssertEqual(first, [bytes("fills.0"), bytes("first")])

    // Drain whatever of the warm-up is still queued.
    while let m = try sub.receive(timeoutMs: 100) { XCTAssertEqual(text(m[0]), "fills.0") }
    for i in 1...20 {
      try pub.send([bytes("orders.\(i)"), bytes("no")])
      try pub.send([bytes("fills.\(i)"), bytes("yes")])
    }
    for i in 1...20 {
      let message = try XCTUnwrap(sub.receive(timeoutMs: 5000))
      XCTAssertEqual(message, [bytes("fills.\(i)"), bytes("yes")])
    }
    XCTAssertNil(try sub.receive(timeoutMs: 100))

    try sub.unsubscribe(bytes("fills."))
  }

  func testReceiveTimeoutReturnsNil() throws {
    let context = try ZMQContext()
    let pull = try ZMQSocket(context: context, type: .pull)
    _ = try bindEphemeral(pull)

    var start = Date()
    XCTAssertNil(try pull.receive(timeoutMs: 200))
    XCTAssertLessThan(Date().timeIntervalSince(start), 5)

    XCTAssertNil(try pull.receive(timeoutMs: 0))

    // The socket option bounds the blocking form.
    try pull.setReceiveTimeoutMs(150)
    start = Date()
    XCTAssertNil(try pull.receive())
    XCTAssertLessThan(Date().timeIntervalSince(start), 5)
  }

  func testSendDontWaitReturnsFalseWhenItWouldBlock() throws {
    let context = try ZMQContext()
    let dealer = try ZMQSocket(context: context, type: .dealer)  // no peer: would block
    XCTAssertFalse(try dealer.send([bytes("x")], dontWait: true))
    try dealer.setSendTimeoutMs(50)
    XCTAssertFalse(try dealer.send(frame: bytes("x")))
  }

  func testPollOverTwoSockets() throws {
    let context = try ZMQContext()
    let pullA = try ZMQSocket(context: context, type: .pull)
    let pullB = try ZMQSocket(context: context, type: .pull)
    try pullA.bind("inproc://poll-a")
    try pullB.bind("inproc://poll-b")
    let pushA = try ZMQSocket(context: context, type: .push)
    let pushB = try ZMQSocket(context: context, type: .push)
    try pushA.connect("inproc://poll-a")
    try pushB.connect("inproc://poll-b")

    XCTAssertEqual(try ZMQPoller.poll([pullA, pullB], timeoutMs: 50), [false, false])

    try pushB.send([bytes("to-b")])
    XCTAssertEqual(try ZMQPoller.poll([pullA, pullB], timeoutMs: 5000), [false, true])
    XCTAssertEqual(try pullB.receive(timeoutMs: 0), [bytes("to-b")])

    try pushA.send([bytes("to-a")])
    try pushB.send([bytes("to-b2")])
    var flags = [false, false]
    let deadline = Date().addingTimeInterval(5)
    while flags != [true, true] && Date() < deadline {
      flags = try ZMQPoller.poll([pullA, pullB], timeoutMs: 100)
    }
    XCTAssertEqual(flags, [true, true])
    XCTAssertEqual(try pullA.receive(timeoutMs: 0), [bytes("to-a")])
    XCTAssertEqual(try pullB.receive(timeoutMs: 0), [bytes("to-b2")])
    XCTAssertEqual(try ZMQPoller.poll([pullA, pullB], timeoutMs: 0), [false, false])
  }

  func testMaxMessageBytesDropsOversizedMessages() throws {
    let context = try ZMQContext()
    let pull = try ZMQSocket(context: context, type: .pull)
    try pull.setMaxMessageBytes(1024)
    let endpoint = try bindEphemeral(pull)
    let push = try ZMQSocket(context: context, type: .push)
    try push.connect(endpoint)

    try push.send([bytes("small-before")])
    XCTAssertEqual(try pull.receive(timeoutMs: 5000), [bytes("small-before")])

    let big = [UInt8](repeating: 0xAB, count: 4096)
    try push.send([big])
    // The receiver drops the connection; the pusher reconnects, and small messages
    // get through again. (Some sent right after the big one may die with the connection.)
    var gotAfter = false
    let deadline = Date().addingTimeInterval(5)
    var i = 0
    while !gotAfter && Date() < deadline {
      _ = try push.send([bytes("small-after-\(i)")], dontWait: true)
      i += 1
      while let message = try pull.receive(timeoutMs: 100) {
        XCTAssertLessThanOrEqual(message[0].count, 1024, "an oversized message arrived")
        if text(message[0]).hasPrefix("small-after-") { gotAfter = true }
      }
    }
    XCTAssertTrue(gotAfter, "no small message arrived after the oversized one")
  }

  func testCurveWithAllowedClientKeyTalks() throws {
    let context = try ZMQContext()
    let server = try ZMQCurve.keypair()
    let client = try ZMQCurve.keypair()
    let refusals = Collector<ZAPAuthenticator.Refusal>()
    let auth = try ZAPAuthenticator(
      context: context, allowedClientKeys: [client.publicKey], onRefusal: { refusals.append($0) })
    try auth.start()
    defer { auth.stop() }

    let router = try ZMQSocket(context: context, type: .router)
    try router.asCurveServer(secretKey: server.secretKey)
    let endpoint = try bindEphemeral(router)
    let dealer = try ZMQSocket(context: context, type: .dealer)
    try dealer.asCurveClient(
      serverPublicKey: server.publicKey, publicKey: client.publicKey, secretKey: client.secretKey)
    try dealer.connect(endpoint)

    try dealer.send([bytes("hello over curve")])
    let request = try XCTUnwrap(router.receive(timeoutMs: 5000))
    XCTAssertEqual(request.count, 2)
    XCTAssertEqual(request[1], bytes("hello over curve"))
    try router.send([request[0], bytes("welcome")])
    XCTAssertEqual(try dealer.receive(timeoutMs: 5000), [bytes("welcome")])
    XCTAssertEqual(refusals.all.count, 0)
  }

  func testCurveWithUnlistedClientKeyIsRefused() throws {
    let context = try ZMQContext()
    let server = try ZMQCurve.keypair()
    let known = try ZMQCurve.keypair()
    let stranger = try ZMQCurve.keypair()
    let refusals = Collector<ZAPAuthenticator.Refusal>()
    let auth = try ZAPAuthenticator(
      context: context, allowedClientKeys: [known.publicKey], onRefusal: { refusals.append($0) })
    try auth.start()
    try auth.start()  // no-op while running
    defer { auth.stop() }

    let router = try ZMQSocket(context: context, type: .router)
    try router.asCurveServer(secretKey: server.secretKey)
    let endpoint = try bindEphemeral(router)
    let dealer = try ZMQSocket(context: context, type: .dealer)
    try dealer.asCurveClient(
      serverPublicKey: server.publicKey, publicKey: stranger.publicKey, secretKey: stranger.secretKey)
    try dealer.connect(endpoint)
    try dealer.send([bytes("let me in")])

    XCTAssertNil(try router.receive(timeoutMs: 500))
    let deadline = Date().addingTimeInterval(5)
    while refusals.all.isEmpty && Date() < deadline { usleep(10_000) }
    let refusal = try XCTUnwrap(refusals.all.first)
    XCTAssertEqual(refusal.mechanism, "CURVE")
    XCTAssertEqual(refusal.clientPublicKey, stranger.publicKey)
    XCTAssertEqual(refusal.address, "127.0.0.1")
    XCTAssertEqual(refusal.domain, ZMQSocket.defaultZapDomain)
    XCTAssertTrue(refusal.description.contains(stranger.publicKey), refusal.description)
    XCTAssertNil(try router.receive(timeoutMs: 100))
    XCTAssertNil(try dealer.receive(timeoutMs: 0))

    auth.stop()
    auth.stop()  // idempotent
    XCTAssertFalse(auth.isRunning)
  }

  func testCurveFailsClosedWithoutAuthenticator() throws {
    let context = try ZMQContext()
    let server = try ZMQCurve.keypair()
    let client = try ZMQCurve.keypair()
    let router = try ZMQSocket(context: context, type: .router)
    try router.asCurveServer(secretKey: server.secretKey)  // requireAuthenticator: true
    let endpoint = try bindEphemeral(router)
    let dealer = try ZMQSocket(context: context, type: .dealer)
    try dealer.asCurveClient(
      serverPublicKey: server.publicKey, publicKey: client.publicKey, secretKey: client.secretKey)
    try dealer.connect(endpoint)
    try dealer.send([bytes("anyone home?")])
    XCTAssertNil(try router.receive(timeoutMs: 300))

    // Opting out: encryption without client authentication.
    let open = try ZMQSocket(context: context, type: .router)
    try open.asCurveServer(secretKey: server.secretKey, requireAuthenticator: false)
    let openEndpoint = try bindEphemeral(open)
    let other = try ZMQSocket(context: context, type: .dealer)
    try other.asCurveClient(
      serverPublicKey: server.publicKey, publicKey: client.publicKey, secretKey: client.secretKey)
    try other.connect(openEndpoint)
    try other.send([bytes("hi")])
    XCTAssertEqual(try open.receive(timeoutMs: 5000)?.last, bytes("hi"))
  }

  func testCurveClientWithWrongServerKeyGetsNothingThrough() throws {
    let context = try ZMQContext()
    let server = try ZMQCurve.keypair()
    let impostor = try ZMQCurve.keypair()
    let client = try ZMQCurve.keypair()
    let auth = try ZAPAuthenticator(
      context: context, allowedClientKeys: [client.publicKey], onRefusal: { _ in })
    try auth.start()
    let router = try ZMQSocket(context: context, type: .router)
    try router.asCurveServer(secretKey: server.secretKey)
    let endpoint = try bindEphemeral(router)
    let dealer = try ZMQSocket(context: context, type: .dealer)
    try dealer.asCurveClient(
      serverPublicKey: impostor.publicKey, publicKey: client.publicKey, secretKey: client.secretKey)
    try dealer.connect(endpoint)
    try dealer.send([bytes("hello")])
    XCTAssertNil(try router.receive(timeoutMs: 300))
  }

  func testPlainSocketsStillWorkBesideAnAuthenticator() throws {
    let context = try ZMQContext()
    let auth = try ZAPAuthenticator(context: context, allowedClientKeys: [], onRefusal: { _ in })
    try auth.start()
    let pull = try ZMQSocket(context: context, type: .pull)
    let endpoint = try bindEphemeral(pull)
    let push = try ZMQSocket(context: context, type: .push)
    try push.connect(endpoint)
    try push.send([bytes("plain")])
    XCTAssertEqual(try pull.receive(timeoutMs: 5000), [bytes("plain")])
    // A second authenticator in the same context cannot bind the ZAP endpoint.
    let second = try ZAPAuthenticator(context: context, allowedClientKeys: [], onRefusal: { _ in })
    XCTAssertThrowsError(try second.start()) { error in
      XCTAssertTrue("\(error)".contains(ZAPAuthenticator.endpoint), "\(error)")
    }
  }

  func testCurveKeys() throws {
    XCTAssertTrue(ZMQCurve.isAvailable)
    let pair = try ZMQCurve.keypair()
    XCTAssertEqual(pair.publicKey.count, 40)
    XCTAssertEqual(pair.secretKey.count, 40)
    XCTAssertNotEqual(pair.publicKey, pair.secretKey)
    XCTAssertTrue(ZMQCurve.isValidKey(pair.publicKey))
    XCTAssertEqual(try ZMQCurve.publicKey(fromSecret: pair.secretKey), pair.publicKey)
    XCTAssertFalse(ZMQCurve.isValidKey("short"))
    XCTAssertFalse(ZMQCurve.isValidKey(String(repeating: "~", count: 40)))  // '~' is not Z85
    XCTAssertFalse(ZMQCurve.isValidKey(pair.publicKey + "0"))
    XCTAssertThrowsError(try ZMQCurve.publicKey(fromSecret: "nope"))
    XCTAssertThrowsError(
      try ZAPAuthenticator(context: ZMQContext(), allowedClientKeys: ["bad key"], onRefusal: { _ in }))
  }

  func testInvalidEndpointErrorNamesTheEndpoint() throws {
    let context = try ZMQContext()
    let socket = try ZMQSocket(context: context, type: .router)
    for endpoint in ["tcp://no-such-interface-xyz:1", "bogus://whatever", "tcp://127.0.0.1"] {
      XCTAssertThrowsError(try socket.bind(endpoint)) { error in
        let error = error as? ZMQError
        XCTAssertNotNil(error)
        XCTAssertTrue(error?.description.contains(endpoint) ?? false, "\(String(describing: error))")
        XCTAssertTrue(error?.description.contains("zmq_bind") ?? false)
        XCTAssertNotEqual(error?.errno, 0)
      }
    }
    XCTAssertThrowsError(try socket.connect("bogus://elsewhere")) { error in
      XCTAssertTrue("\(error)".contains("bogus://elsewhere"), "\(error)")
    }
    XCTAssertNil(socket.lastEndpoint)
  }

  func testCloseIsIdempotent() throws {
    let context = try ZMQContext()
    let socket = try ZMQSocket(context: context, type: .dealer)
    try socket.bind("inproc://closing")
    XCTAssertFalse(socket.isClosed)
    socket.close()
    socket.close()
    XCTAssertTrue(socket.isClosed)
    // zmq_close is asynchronous: libzmq's reaper releases the inproc name shortly after.
    let again = try ZMQSocket(context: context, type: .dealer)
    var bound = false
    let deadline = Date().addingTimeInterval(5)
    while !bound && Date() < deadline {
      do {
        try again.bind("inproc://closing")
        bound = true
      } catch { usleep(5_000) }
    }
    XCTAssertTrue(bound)
  }

  func testUnbindAndDisconnect() throws {
    let context = try ZMQContext()
    let pull = try ZMQSocket(context: context, type: .pull)
    let endpoint = try bindEphemeral(pull)
    let push = try ZMQSocket(context: context, type: .push)
    try push.connect(endpoint)
    try push.send([bytes("one")])
    XCTAssertEqual(try pull.receive(timeoutMs: 5000), [bytes("one")])
    try push.disconnect(endpoint)
    try pull.unbind(endpoint)
    XCTAssertThrowsError(try pull.unbind(endpoint)) { error in
      XCTAssertTrue("\(error)".contains("zmq_unbind \(endpoint)"), "\(error)")
    }
  }

  func testContextShutdownUnblocksAReceiver() throws {
    let context = try ZMQContext()
    let pull = try ZMQSocket(context: context, type: .pull)
    try pull.bind("inproc://blocked")
    DispatchQueue.global().asyncAfter(deadline: .now() + 0.1) { context.shutdown() }
    XCTAssertThrowsError(try pull.receive()) { error in
      XCTAssertTrue((error as? ZMQError)?.isContextTerminated ?? false, "\(error)")
    }
    pull.close()
    XCTAssertThrowsError(try ZMQSocket(context: context, type: .pull))
  }
}
