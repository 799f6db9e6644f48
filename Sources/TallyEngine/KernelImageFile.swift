// A kernel image on disk (docs/STATE-LAYOUT.md, "Kernel images"): the file a durable
// run leaves beside its state folder's input log when it ends, and what the next
// resume of that folder loads instead of parsing the reference folder and applying
// the logged events again (issue 8's resume). A cache, never the truth: a resume uses
// an image only when everything below checks, and otherwise rebuilds the state the long
// way, which needs nothing from the image.
//
// File: the kernel's image (its own layout, KernelAPI's KernelImage.swift), then a
// trailer: `ByteWriter` fields (below), the trailer's length (u64 LE) and the magic.
// The trailer names the kernel (version and planted fault), the build (the executable's
// identity and the kernel's layout signature: an image is read only by the build that
// wrote it), the seq the state is at, the store's reference fingerprint, a SHA-256 of
// the reference folder's files as they were read, and the image's length and chunk checksums.
// Written to a temporary name and renamed, without fsync: a crash may leave a file that
// is cut or holds old blocks, which its checksums then refuse.
import Crypto
import Dispatch
import Foundation
import KernelAPI
import SegmentLog
import TallyFormat

public enum KernelImageFile {
  static let magic = Array("tally-kernel-image/1".utf8)
  /// The image's file in a state folder, per kernel name (a folder resumed with
  /// another kernel keeps each one's image).
  public static func path(folder: String, kernelName: String) -> String {
    folder + "/kernel-image-" + kernelName
  }

  /// What the trailer holds.
  public struct Trailer: Equatable, Sendable {
    public var kernelName: String
    public var build: String
    public var layout: String
    public var seq: Int64
    public var referencePrint: [UInt8]
    public var referenceFiles: [UInt8]
    public var bodyBytes: Int64
    public var bodyDigest: [UInt8]

    func encode() -> [UInt8] {
      var w = ByteWriter(capacity: 512)
      // A digest as its length, then its bytes (`ByteReader.bytes(Int(i32()))` reads it).
      func digest(_ d: [UInt8]) {
        w.i32(Int32(d.count))
        w.raw(d)
      }
      w.string(kernelName)
      w.string(build)
      w.string(layout)
      w.i64(seq)
      digest(referencePrint)
      digest(referenceFiles)
      w.i64(bodyBytes)
      digest(bodyDigest)
      return w.bytes
    }

    init(
      kernelName: String, build: String, layout: String, seq: Int64, referencePrint: [UInt8],
      referenceFiles: [UInt8], bodyBytes: Int64, bodyDigest: [UInt8]
    ) {
      self.kernelName = kernelName
      self.build = build
      self.layout = layout
      self.seq = seq
      self.referencePrint = referencePrint
      self.referenceFiles = referenceFiles
      self.bodyBytes = bodyBytes
      self.bodyDigest = bodyDigest
    }

    init(decoding bytes: [UInt8]) throws {
      var r = ByteReader(bytes)
      kernelName = try r.string()
      build = try r.string()
      layout = try r.string()
      seq = try r.i64()
      referencePrint = try r.bytes(Int(r.i32()))
      referenceFiles = try r.bytes(Int(r.i32()))
      bodyBytes = try r.i64()
      bodyDigest = try r.bytes(Int(r.i32()))
      guard r.isAtEnd else { throw DurableError("kernel image trailer has trailing bytes") }
    }
  }

  /// This build's identity: the executable's size, modification time and inode (a new
  /// build is another file). Cheap; an image from another build is never read.
  public static let buildIdentity: String = {
    var info = stat()
    guard stat("/proc/self/exe", &info) == 0 else { return "unknown-build" }
    return
      "\(TallyVersion.string)/\(info.st_size)/\(info.st_mtim.tv_sec).\(info.st_mtim.tv_nsec)/\(info.st_ino)"
  }()

  /// Writes `kernel`'s image to `folder` (replacing an older one). Returns its size in
  /// bytes, or nil when the version keeps no image.
  ///
  /// Through the page cache, each piece straight from the kernel's storage. (Tried and
  /// dropped: `O_DIRECT` from aligned buffers on a writer thread. It spared the kernel's
  /// copy into fresh page-cache pages, ~0.5 s of CPU a 384 MB image on this machine, but
  /// the disk then took 0.6-1.2 s, and the outputs written meanwhile waited on it:
  /// docs/PERFORMANCE.md, thirteenth session.)
  /// `referenceFiles` (the reference files' digest) is asked for once the body is
  /// written, so that it may still be computing while the body is; a throw abandons the
  /// image (the temporary file is removed) and is thrown on.
  public static func write<K: BusinessKernel>(
    _ kernel: K, folder: String, seq: Int64, referencePrint: [UInt8], referenceFiles: () throws -> [UInt8]
  ) throws -> Int? {
    let final = path(folder: folder, kernelName: kernel.kernelName)
    let temporary = final + ".tmp"
    let fd = Glibc.open(temporary, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
    guard fd >= 0 else {
      throw DurableError("cannot create \(temporary): \(String(cString: strerror(errno)))")
    }
    var failure: Int32 = 0
    func put(_ b: UnsafeRawBufferPointer) {
      var done = 0
      while done < b.count && failure == 0 {
        let n = Glibc.write(fd, b.baseAddress! + done, b.count - done)
        if n < 0 {
          if errno != EINTR { failure = errno }
          continue
        }
        done += n
      }
    }
    var chunks = ChunkDigests()
    var w = ImageWriter(sink: { bytes in
      chunks.update(bytes)
      put(bytes)
    })
    guard kernel.writeImage(to: &w) else {
      close(fd)
      unlink(temporary)
      return nil
    }
    w.flush()
    let bodyBytes = w.count
    let files: [UInt8]
    do { files = try referenceFiles() } catch {
      close(fd)
      unlink(temporary)
      throw error
    }
    let trailer = Trailer(
      kernelName: kernel.kernelName, build: buildIdentity, layout: K.imageLayout, seq: seq,
      referencePrint: referencePrint, referenceFiles: files, bodyBytes: Int64(bodyBytes),
      bodyDigest: chunks.finalize()
    ).encode()
    var tail = trailer
    for i in 0..<8 { tail.append(UInt8(truncatingIfNeeded: UInt64(trailer.count) >> (8 * UInt64(i)))) }
    tail += magic
    tail.withUnsafeBytes { put($0) }
    let closed = close(fd)
    guard failure == 0, closed == 0, rename(temporary, final) == 0 else {
      let e = failure != 0 ? failure : errno
      unlink(temporary)
      throw DurableError("cannot write kernel image \(final): \(String(cString: strerror(e)))")
    }
    return bodyBytes + tail.count
  }

  /// An image file mapped, its trailer read (not yet its body's digest).
  public final class Mapped: @unchecked Sendable {
    let file: MappedFile
    public let trailer: Trailer
    /// The kernel's image (the file without its trailer).
    public let body: UnsafeRawBufferPointer

    /// Nil when there is no image file; throws when it is not a whole image.
    init?(path: String) throws {
      guard FileManager.default.fileExists(atPath: path) else { return nil }
      guard let file = MappedFile(path) else { throw DurableError("kernel image \(path) cannot be mapped") }
      let all = file.bytes
      let fixed = magic.count + 8
      guard all.count >= fixed, all[(all.count - magic.count)...].elementsEqual(magic) else {
        throw DurableError("kernel image \(path) has no trailer (cut short)")
      }
      let lengthAt = all.count - fixed
      var length: UInt64 = 0
      for i in 0..<8 { length |= UInt64(all[lengthAt + i]) << (8 * UInt64(i)) }
      guard length <= UInt64(lengthAt) else {
        throw DurableError("kernel image \(path) has a bad trailer length")
      }
      let trailerAt = lengthAt - Int(length)
      trailer = try Trailer(decoding: Array(all[trailerAt..<lengthAt]))
      guard trailer.bodyBytes == Int64(trailerAt) else {
        throw DurableError(
          "kernel image \(path) holds \(trailerAt) bytes before its trailer, which says \(trailer.bodyBytes) of image"
        )
      }
      self.file = file
      body = UnsafeRawBufferPointer(rebasing: all[..<Int(trailer.bodyBytes)])
    }

    /// Whether the body's chunk checksums are the trailer's (reads the whole image, its
    /// chunks on every core at once).
    public func bodyVerifies() -> Bool {
      let count = (body.count + ChunkDigests.chunkBytes - 1) / ChunkDigests.chunkBytes
      guard trailer.bodyDigest.count == count * 8 else { return false }
      let sums = UnsafeMutableBufferPointer<UInt64>.allocate(capacity: max(count, 1))
      defer { sums.deallocate() }
      let (body, out) = (HandedOver(body), HandedOver(sums))
      DispatchQueue.concurrentPerform(iterations: count) { i in
        let start = i * ChunkDigests.chunkBytes
        let end = min(start + ChunkDigests.chunkBytes, body.value.count)
        var sum = StreamChecksum()
        sum.update(UnsafeRawBufferPointer(rebasing: body.value[start..<end]))
        out.value[i] = sum.value  // each iteration writes only its own element
      }
      var expected = ByteReader(trailer.bodyDigest)
      for i in 0..<count {
        guard let v = try? expected.i64(), UInt64(bitPattern: v) == sums[i] else { return false }
      }
      return true
    }
  }

  /// Opens `folder`'s image for `kernelName`; nil when there is none.
  public static func open(folder: String, kernelName: String) throws -> Mapped? {
    try Mapped(path: path(folder: folder, kernelName: kernelName))
  }
}

/// A checksum of each 32 MiB of an image, concatenated (8 bytes each): a resume checks
/// the chunks on both cores at once before it loads the image (a load of unchecked
/// bytes could stop on a kernel's precondition, and so stop every resume after it).
struct ChunkDigests {
  static let chunkBytes = 32 << 20
  private var sum = StreamChecksum()
  private var inChunk = 0
  private var digests = ByteWriter()

  mutating func update(_ bytes: UnsafeRawBufferPointer) {
    var rest = bytes
    while !rest.isEmpty {
      let n = min(rest.count, Self.chunkBytes - inChunk)
      sum.update(UnsafeRawBufferPointer(rebasing: rest[..<n]))
      inChunk += n
      rest = UnsafeRawBufferPointer(rebasing: rest[n...])
      if inChunk == Self.chunkBytes {
        digests.i64(Int64(bitPattern: sum.value))
        sum = StreamChecksum()
        inChunk = 0
      }
    }
  }

  mutating func finalize() -> [UInt8] {
    if inChunk > 0 { digests.i64(Int64(bitPattern: sum.value)) }
    return digests.bytes
  }
}

/// The reference folder's files as bytes, for a kernel image: SHA-256 of each file the
/// parser reads (name, whether present, length, bytes), in the parser's order. Equal
/// digests: the same bytes, so the same reference data, without parsing it.
public enum ReferenceFiles {
  public static let names = ReferenceParser.requiredFiles + ["fees.csv"]

  public static func digest(folder: String) -> [UInt8] {
    var sha = Crypto.SHA256()
    for name in names {
      var header = ByteWriter()
      header.string(name)
      if let file = MappedFile(folder + "/" + name) {
        header.u8(1)
        header.i64(Int64(file.bytes.count))
        sha.update(data: header.bytes)
        sha.update(bufferPointer: file.bytes)
      } else {
        // Missing, empty or not a regular file: the parser reads none of it.
        let empty = FileManager.default.isReadableFile(atPath: folder + "/" + name)
        header.u8(empty ? 2 : 0)
        sha.update(data: header.bytes)
      }
    }
    return Array(sha.finalize())
  }

  /// The files' digest, vouched for by their stamps: unchanged since `stamps` were
  /// taken (before the files were parsed), the digest is of the bytes parsed. A state
  /// folder's marker (`ReferenceMarker`) is made or checked with it.
  public static func digest(folder: String, unchangedSince stamps: [String]) throws -> [UInt8] {
    let digest = digest(folder: folder)
    guard self.stamps(folder: folder) == stamps else {
      throw DurableError("the reference folder \(folder) changed while it was read; run again")
    }
    return digest
  }

  /// Each file's size, modification time and inode: unchanged between the start and the
  /// end of a run, the digest taken at the end is of the bytes the run read.
  public static func stamps(folder: String) -> [String] {
    names.map { name in
      var info = stat()
      guard stat(folder + "/" + name, &info) == 0 else { return "\(name):none" }
      return "\(name):\(info.st_size):\(info.st_mtim.tv_sec).\(info.st_mtim.tv_nsec):\(info.st_ino)"
    }
  }
}
