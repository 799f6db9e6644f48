// The canonical encoding's writer (KernelAPI/StateCodec.swift): exact bytes for each
// kind of value, written out by hand, and a round trip through the reader over values at
// the edges. Digests, state folders and the wire all rest on these bytes, so a faster
// writer must give the same ones.
import KernelAPI
import XCTest

final class ByteWriterTests: XCTestCase {
  func testEachValueIsWrittenAsTheFormatSays() {
    var w = ByteWriter()
    w.u8(0xAB)
    w.bool(true)
    w.bool(false)
    w.i32(0x0102_0304)
    w.i32(-2)
    w.i64(0x0102_0304_0506_0708)
    w.i64(Int64.min)
    w.string("")
    w.string("A1")
    w.string("股")  // three UTF-8 bytes: E8 82 A1
    w.i128(-1)
    XCTAssertEqual(
      w.bytes,
      [
        0xAB, 1, 0,
        0x04, 0x03, 0x02, 0x01,
        0xFE, 0xFF, 0xFF, 0xFF,
        0x08, 0x07, 0x06, 0x05, 0x04, 0x03, 0x02, 0x01,
        0, 0, 0, 0, 0, 0, 0, 0x80,
        0, 0, 0, 0,
        2, 0, 0, 0, 0x41, 0x31,
        3, 0, 0, 0, 0xE8, 0x82, 0xA1,
      ] + [UInt8](repeating: 0xFF, count: 16))
  }

  func testValuesAtTheEdgesComeBackThroughTheReader() throws {
    let ints32: [Int32] = [0, 1, -1, Int32.min, Int32.max, 0x7F, 0x80, -0x80, 123_456_789]
    let ints64: [Int64] = [0, 1, -1, Int64.min, Int64.max, 1 << 32, -(1 << 40) + 7, 9_876_543_210_123]
    let strings = [
      "", "x", "A0000001", "600519", "贵州茅台股份有限公司 Kweichow Moutai", String(repeating: "é", count: 300),
    ]
    var w = ByteWriter(capacity: 1)  // grows from one byte
    for v in ints32 { w.i32(v) }
    for v in ints64 { w.i64(v) }
    for s in strings { w.string(s) }
    var r = ByteReader(w.bytes)
    for v in ints32 { XCTAssertEqual(try r.i32(), v) }
    for v in ints64 { XCTAssertEqual(try r.i64(), v) }
    for s in strings { XCTAssertEqual(try r.string(), s) }
    XCTAssertTrue(r.isAtEnd)
  }
}
