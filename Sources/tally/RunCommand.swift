import ArgumentParser
import Foundation
import KernelAPI
import KernelV1
import KernelV2
import RocksDBStore
import TallyEngine
import TallyFormat

struct RunCommand: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "run",
    abstract: "Apply event files to a reference folder and write the seven output files (SPEC §5).",
    discussion: helpText(
      """
      Files are applied in the order given, as one sequence. Rejected events are normal
      outcomes (rejections.csv), not errors: the exit status is 0 when the run completed.

      With --state DIR the engine keeps its state in a RocksDB database at DIR and commits
      it in atomic batches. Kill the process at any moment and run the same command again:
      it resumes after the last committed event and writes the same outputs.

      Exit status 2: unusable reference folder, unreadable event file, or a state folder
      that does not belong to these inputs; 3: output or state folder cannot be written;
      64: bad arguments.
      """))

  @Option(name: .long, help: "The reference folder (calendar.csv, securities.csv, ...).")
  var reference: String

  @Option(name: .long, help: "The output folder (created if missing).")
  var out: String

  @Option(
    name: .long,
    help: "Keep the state in this folder (resumable): a log of the applied lines, RocksDB snapshots.")
  var state: String?

  @Option(name: .long, help: "With --state: commit after this many events.")
  var commitEvents = 10_000

  @Option(name: .long, help: "With --state: commit at least this often, in milliseconds.")
  var commitMs = 200

  @Option(
    name: .long,
    help:
      "With --state: write the state rows in a snapshot after this many events (commits in between log the event lines; a restart applies the lines logged since the last snapshot again). A completed run ends with a log commit, not a snapshot."
  )
  var snapshotEvents = Int(InputLogLimits.snapshotEventsDefault)

  @Flag(
    name: .long,
    help:
      "With --state: print the commit latencies (count, p50, p99, max: rows taken to write synced) on standard error."
  )
  var commitStats = false

  @Flag(inversion: .prefixedNo, help: "With --state: fsync every commit.")
  var sync = true

  @Flag(
    inversion: .prefixedNo,
    help:
      "With --state: write the kernel's image of its state into the folder when the run ends, and resume from it when it matches the folder, the reference files and this build (docs/STATE-LAYOUT.md, \"Kernel images\")."
  )
  var kernelImage = true

  @Option(
    name: .long,
    help: ArgumentHelp(
      "With --state: SST compression (none, snappy, lz4, zstd); for measurements.", visibility: .hidden))
  var stateCompression = "lz4"

  @Option(
    name: .long,
    help: ArgumentHelp("With --state: RocksDB memtable size in MiB; for measurements.", visibility: .hidden))
  var stateWriteBufferMib = 64

  @Option(
    name: .long,
    help: ArgumentHelp(
      "With --state: memtable kind (vector, skiplist); for measurements.", visibility: .hidden))
  var stateMemtable = "vector"

  @Option(
    name: .long,
    help: ArgumentHelp(
      "With --state: bloom filter bits per key (0: none); for measurements.", visibility: .hidden))
  var stateBloomBits = 10

  @Option(
    name: .long,
    help: "Clearing kernel: v1, v2; v1-faulty, v1-faulty-transfer, v1-faulty-settlement plant a fault.")
  var kernel = "v1"

  @Flag(name: .long, help: "Print the state digest (SHA-256 of the state checksum) after the run.")
  var digest = false

  @Option(name: .long, help: "Write the business effects of every event to this file (docs/EFFECTS.md).")
  var effects: String?

  @Option(name: .long, help: "Format of --effects: text or binary.")
  var effectsFormat = "text"

  @Option(
    name: .long,
    help: ArgumentHelp(
      "Write every canonical state row after the run to this file, one `table id hex` a line (docs/CANONICAL-ROWS.md): for comparing kernel versions row by row.",
      visibility: .hidden))
  var dumpRows: String?

  @Flag(name: .long, help: "Print no summary on standard error.")
  var quiet = false

  @Flag(name: .long, help: "Print how long each phase took (reference, events, outputs) on standard error.")
  var timings = false

  @Argument(help: "Event files (SPEC §3).")
  var events: [String]

  func validate() throws {
    guard !events.isEmpty else { throw ValidationError("give at least one event file") }
    guard EffectFileWriter.Format(rawValue: effectsFormat) != nil else {
      throw ValidationError("--effects-format must be text or binary")
    }
    guard commitEvents > 0, commitMs > 0, snapshotEvents > 0 else {
      throw ValidationError("--commit-events, --commit-ms and --snapshot-events must be > 0")
    }
    guard RocksDBOptions.Compression(rawValue: stateCompression) != nil else {
      throw ValidationError("--state-compression must be one of \(RocksDBOptions.Compression.names)")
    }
    guard ["vector", "skiplist"].contains(stateMemtable), (0...64).contains(stateBloomBits) else {
      throw ValidationError("--state-memtable must be vector or skiplist, --state-bloom-bits 0...64")
    }
    guard (1...4096).contains(stateWriteBufferMib) else {
      throw ValidationError("--state-write-buffer-mib must be 1...4096")
    }
  }

  func run() throws {
    let phaseClock = ContinuousClock()
    // The summary's time covers the whole run, from reading the reference folder to
    // the outputs written (only process start and exit are outside it).
    let runStarted = phaseClock.now
    var phaseStart = runStarted
    func phase(_ name: String) {
      guard timings else { return }
      let now = phaseClock.now
      note("tally run: \(name) \(String(format: "%.3f", (now - phaseStart).seconds)) s")
      phaseStart = now
    }
    let version: KernelDispatch.Version
    let fault: PlantedFault?
    do { (version, fault) = try KernelDispatch.resolve(self.kernel) } catch {
      throw ValidationError(error.description)
    }
    // The reference files as they are before they are read: a kernel image written at
    // the end is stamped with their digest only if they did not change meanwhile.
    let referenceStamps = ReferenceFiles.stamps(folder: self.reference)
    switch version {
    case .v1:
      try execute(V1Kernel.self, fault: fault, stamps: referenceStamps, since: runStarted, phase: phase)
    case .v2:
      try execute(V2Kernel.self, fault: fault, stamps: referenceStamps, since: runStarted, phase: phase)
    }
  }

  /// The reference folder, parsed and checked (exits with status 2 when unusable).
  func loadReference() -> ReferenceData {
    do { return try FileIO.loadReference(self.reference) } catch { fail("\(error)", code: 2) }
  }

  /// The state folder's kernel image for `kernelName`, when one is there and was
  /// written by this build; nil otherwise, with the reason printed when there was an
  /// image. (Its reference files are checked while it loads: `DurableEngine`'s
  /// `alsoCheck`.)
  func imageOfThisBuild<K: BusinessKernel>(_: K.Type, kernelName: String, folder: String) -> KernelImageFile
    .Mapped?
  {
    let image: KernelImageFile.Mapped
    do {
      guard let found = try KernelImageFile.open(folder: folder, kernelName: kernelName) else { return nil }
      image = found
    } catch {
      note("tally run: kernel image not used: \(error)")
      return nil
    }
    guard image.trailer.build == KernelImageFile.buildIdentity, image.trailer.layout == K.imageLayout else {
      note("tally run: kernel image not used: it was written by another build of tally")
      return nil
    }
    return image
  }

  /// The run proper, specialised for the kernel version.
  func execute<K: BusinessKernel>(
    _: K.Type, fault: PlantedFault?, stamps: [String],
    since runStarted: ContinuousClock.Instant,
    phase: (String) -> Void
  ) throws {
    let kernelName = KernelName.name(version: K.versionName, fault: fault)
    var effectFile: EffectFileWriter? = nil
    if let effects {
      do { effectFile = try EffectFileWriter(path: effects, format: .init(rawValue: effectsFormat)!) } catch {
        fail("\(error)", code: 3)
      }
    }
    let clock = ContinuousClock()
    let engine: Engine<K>
    /// With --state: the store, flushed while the outputs are written (see below).
    var durableStore: RocksDBStateStore? = nil
    var resumedFrom: Int64 = 0
    var replayed: Int64 = 0
    var commits = 0
    /// With --state: the image's size when the folder was opened from its kernel image.
    var openedFromImage: Int? = nil
    /// The reference files' digest when known (taken for a kernel image).
    var referenceFiles: [UInt8]? = nil
    /// With --state and --kernel-image: the image written while the outputs are.
    var imageWriting: BackgroundWork<String?>? = nil
    if let state {
      var storeOptions = RocksDBOptions()
      // Written in batches, read back only on restart: a vector memtable (measured against
      // a skip list, docs/PERFORMANCE.md).
      storeOptions.vectorMemtable = stateMemtable == "vector"
      storeOptions.bloomFilterBitsPerKey = stateBloomBits
      storeOptions.compression = RocksDBOptions.Compression(rawValue: stateCompression)!
      storeOptions.writeBufferBytes = stateWriteBufferMib << 20
      // Opened on another thread while the reference folder is read: creating a fresh
      // folder is a dozen small files, each synced (RocksDB's manifest, options,
      // identity), 35-200 ms on this VM's disk that every fresh `--state` run waited
      // for before reading its first file (strace, twenty-seventh session). The store
      // is used only after `wait()`.
      let storeOpening = BackgroundWork { () -> Result<RocksDBStateStore, any Error> in
        Result { try RocksDBStateStore(path: state, options: storeOptions) }
      }
      func openedStore() -> RocksDBStateStore {
        switch storeOpening.wait() {
        case .success(let store): return store
        case .failure(let error): fail("\(error)", code: 3)
        }
      }
      var durable: DurableEngine<K>? = nil
      if kernelImage, let image = imageOfThisBuild(K.self, kernelName: kernelName, folder: state) {
        let store = openedStore()
        // The reference files are read and hashed (not parsed) on the other core while
        // the kernel loads: the same bytes as the image's run read, the same reference.
        let (folder, wanted) = (self.reference, image.trailer.referenceFiles)
        let files = BackgroundWork { ReferenceFiles.digest(folder: folder) }
        do {
          durable = try DurableEngine<K>(
            store: store, image: image, plantedFault: fault, sync: sync,
            snapshotEvents: Int64(snapshotEvents),
            alsoCheck: {
              files.wait() == wanted ? nil : "the reference files differ from those it was made with"
            })
          referenceFiles = wanted  // what the check above found the files to be
          openedFromImage = image.body.count
        } catch let refused as ImageRefused {
          note("tally run: \(refused)")
        } catch {
          fail("\(error)", code: 2)
        }
      }
      /// A fresh folder's event reader, started before its opening state is built.
      var freshReader: EventLines.SplitBlockReader? = nil
      if durable == nil {
        let reference = loadReference()
        phase("reference folder read and checked")
        let store = openedStore()
        // A fresh folder applies every line, so its events are counted and their first
        // blocks split on the other core while the opening state is built, as in an
        // in-memory run: started after the open, the reader kept the apply thread
        // waiting at the start of the events (perf, twenty-seventh session). A folder
        // with state opens the long way first: which lines it applied is known then.
        if (try? store.value(for: StateKeys.format)) == nil {
          freshReader = EventLines.SplitBlockReader(files: events)
        }
        // The folder is marked with (or checked against) the SHA-256 of the reference
        // files' bytes (`ReferenceMarker`), hashed on the other core while the opening
        // state is built, and vouched for by their stamps: unchanged since the run began,
        // they are the bytes just parsed. The kernel image reuses the digest.
        let folder = self.reference
        let files: @Sendable () throws -> [UInt8] = {
          try ReferenceFiles.digest(folder: folder, unchangedSince: stamps)
        }
        do {
          durable = try DurableEngine<K>(
            store: store, reference: reference, plantedFault: fault, sync: sync, layout: .segmentLog,
            snapshotEvents: Int64(snapshotEvents), referenceFiles: files)
        } catch {
          fail("\(error)", code: 2)
        }
        if let marker = try? store.value(for: StateKeys.reference), ReferenceMarker.isFiles(marker) {
          referenceFiles = ReferenceMarker.digest(ofFiles: marker)
        }
      }
      guard let durable else { preconditionFailure("the folder is open, from its image or the long way") }
      let store = openedStore()
      resumedFrom = durable.committedSeq
      replayed = durable.replayedEvents
      if let cut = durable.cutTail {
        note(
          "tally run: the state folder's input log ended in an unfinished entry, cut: \(cut); its events are applied again from the event files"
        )
      }
      if let bytes = openedFromImage {
        phase(
          "state opened from its kernel image (seq \(resumedFrom), \(bytes >> 20) MiB, loaded and verified in "
            + String(format: "%.3f", durable.openDurations.opening.seconds) + " s)")
      } else {
        phase(
          "state opened (opening state "
            + String(format: "%.3f", durable.openDurations.opening.seconds)
            + " s, \(replayed) logged events applied again "
            + String(format: "%.3f", durable.openDurations.replay.seconds) + " s)")
      }
      // A run that will write a kernel image and does not know the reference files'
      // digest yet (a folder marked with the canonical fingerprint, made before the
      // files' digest became the marker) hashes the files for it now, on a thread of the
      // lowest priority: it takes what the apply and the reader leave of
      // the cores (at normal priority it took the apply's core ~15% of the time the
      // events applied, perf, twenty-third session), and whatever is left of it runs
      // while the image's body is written; at the end the other core writes the image
      // while this one renders the outputs. The files are checked against their stamps
      // before the image's trailer is written.
      let referenceFolder = self.reference
      let referenceDigest =
        kernelImage && referenceFiles == nil
        ? BackgroundWork(yielding: true) { ReferenceFiles.digest(folder: referenceFolder) } : nil
      if let effectFile {
        durable.enableEffects()
        do { try effectFile.write(durable.engine.state.snapshotEffects()) } catch {
          fail("\(error)", code: 3)
        }
      }
      var seq: Int64 = 0
      var sinceCommit = 0
      var lastCommit = clock.now
      let interval = Duration.milliseconds(commitMs)
      do {
        // Read and split on the other core while this one applies (`forEachSplitBlock`);
        // lines the state has applied are not split, only counted.
        // The reader's thread also resolves the trades' identifiers (the kernel's
        // `TradeResolver`, if it has one).
        func apply(_ block: EventLines.SplitBlock) throws {
          let (bytes, lines) = (block.bytes, block.lines)
          // Offered in pieces that end where a commit may fall (every 256 applied events
          // the clock is read, at commitEvents a commit is due), so that blocks commit
          // exactly where lines one at a time did.
          var next = lines.startIndex
          while next < lines.endIndex {
            let room = min(256 - sinceCommit % 256, commitEvents - sinceCommit)
            let end = min(next + room, lines.endIndex)
            let applied = try durable.offer(
              lines: lines[next..<end], of: bytes, firstSeq: seq + 1, split: block.isSplit ? block.split : nil
            )
            seq += Int64(end - next)
            next = end
            guard applied > 0 else { continue }
            sinceCommit += applied
            if sinceCommit >= commitEvents || (sinceCommit & 255 == 0 && clock.now - lastCommit >= interval) {
              // Written and synced while the next events apply; the final commit waits.
              try durable.commitInBackground()
              commits += 1
              sinceCommit = 0
              lastCommit = clock.now
            }
          }
          if let effectFile { try effectFile.write(durable.takeEffects()) }
        }
        // (A folder found to hold applied lines after all takes the general path; the
        // early reader, dropped, stops.)
        if let freshReader, durable.engine.appliedSeq == 0 {
          freshReader.resolve(with: durable.engine.state.tradeResolver())
          try freshReader.forEach(willRead: { durable.reserveCapacity(events: $0) }, apply)
        } else {
          freshReader = nil
          try EventLines.forEachSplitBlock(
            files: events, splitAfter: durable.engine.appliedSeq,
            resolver: durable.engine.state.tradeResolver(),
            willRead: { durable.reserveCapacity(events: $0) }, apply)
        }
        try durable.finishStream()
        try effectFile?.write(durable.takeEffects())
        // The last commit logs the last lines; no snapshot at the end (a restart applies
        // the logged lines again faster than it lays a day's rows over the opening state:
        // docs/PERFORMANCE.md).
        try durable.commit()
        commits += 1
      } catch let error as DurableError {
        fail("\(error)", code: error.description.contains("commit") ? 3 : 2)
      } catch {
        fail("\(error)", code: 2)
      }
      engine = durable.engine
      // A folder opened from its image with nothing new applied keeps that image.
      let imageCurrent = openedFromImage != nil && durable.committedSeq == resumedFrom
      if kernelImage, !imageCurrent, let referencePrint = try? store.value(for: StateKeys.reference) {
        // The image is written on the other core while this one writes the outputs. It
        // reads the state only (a copy of the engine's value, sharing its storage).
        let (state, seq, folder) = (durable.engine.state, durable.committedSeq, self.state!)
        let knownFiles = referenceFiles
        imageWriting = BackgroundWork { () -> String? in
          // The digest is waited for once the body is written (it may still be running,
          // at low priority), then the files checked against their stamps: unchanged
          // since the run began, the digest is of the bytes the run read.
          let files = { () throws -> [UInt8] in
            let files =
              knownFiles ?? referenceDigest?.wait() ?? ReferenceFiles.digest(folder: referenceFolder)
            guard ReferenceFiles.stamps(folder: referenceFolder) == stamps else {
              throw ReferenceFilesChanged()
            }
            return files
          }
          do {
            guard
              let bytes = try KernelImageFile.write(
                state, folder: folder, seq: seq, referencePrint: referencePrint, referenceFiles: files)
            else { return nil }
            return "kernel image written (\(bytes >> 20) MiB)"
          } catch is ReferenceFilesChanged {
            return "kernel image not written: the reference files changed during the run"
          } catch {
            return "kernel image not written: \(error)"
          }
        }
      }
      if commitStats || timings {
        note(Self.commitStatsLine(durable.commitNanos, snapshots: durable.snapshotNanos))
      }
      durableStore = store
    } else {
      var reference = loadReference()
      phase("reference folder read and checked")
      // The events are counted and their first blocks split on the other core while
      // this one builds the opening state (`SplitBlockReader`).
      let eventReader = EventLines.SplitBlockReader(files: events)
      var memory = Engine<K>(reference: reference, plantedFault: fault)
      if let effectFile {
        memory.enableEffects()
        do { try effectFile.write(memory.state.snapshotEffects()) } catch { fail("\(error)", code: 3) }
      }
      memory.setChangeTracking(false)  // nothing is committed
      reference.holdings = []  // in the state now: millions of rows not to keep twice
      // From here on the reader's thread also resolves the trades' identifiers.
      eventReader.resolve(with: memory.state.tradeResolver())
      phase("opening state built")
      do {
        // Read and split on the other core while this one applies.
        try eventReader.forEach(willRead: { memory.reserveCapacity(events: $0) }) { block in
          precondition(block.isSplit, "every block of an in-memory run is split")
          memory.apply(split: block.split, of: block.bytes)
          // The effects file is written a block at a time (its bytes do not depend on
          // where it is cut).
          if let effectFile { try effectFile.write(memory.takeEffects()) }
        }
        if let effectFile { try effectFile.write(memory.takeEffects()) }
      } catch let error as OutputError {
        fail("\(error)", code: 3)
      } catch {
        fail("\(error)", code: 2)
      }
      engine = memory
    }
    do { try effectFile?.close() } catch { fail("\(error)", code: 3) }
    phase(state == nil ? "events applied" : "new events applied")
    // With --state, the last commits are in RocksDB's write-ahead log only; opened
    // again, the store would replay and flush them first. The flush runs on the other
    // core while this one writes the outputs, and ends before the process does (exiting
    // under it aborts the process).
    let flushing = durableStore.map { store in
      BackgroundWork { () -> (any Error)? in
        do { try store.flush() } catch { return error }
        return nil
      }
    }
    var outputError: OutputError? = nil
    do { try engine.writeOutputs(to: out) } catch { outputError = error }
    let flushError = flushing?.wait() ?? nil
    if let error = outputError ?? flushError { fail("\(error)", code: 3) }
    phase("outputs rendered and written")
    if let imageWriting {
      let said = imageWriting.wait()
      if let said, timings || said.contains("not written") { note("tally run: \(said)") }
      phase("kernel image written")
    }
    if digest { print(engine.stateDigest.hexString) }
    if let dumpRows {
      var text: [UInt8] = []
      engine.state.forEachEncodedRow { table, id, bytes in
        text += Array("\(table.name) \(id) \(bytes.hexString)\n".utf8)
      }
      do {
        let handle = try FileIO.openForWriting(dumpRows, what: "row dump ")
        try handle.write(contentsOf: Data(text))
        try handle.close()
      } catch let error as OutputError {
        fail("\(error)", code: 3)
      } catch {
        fail("cannot write row dump \(dumpRows): \(error)", code: 3)
      }
    }
    if !quiet {
      let s = engine.statistics
      var text =
        "tally run: \(s.events) events applied now, \(s.applied) applied (\(s.tradesApplied) trades), "
      text += "\(s.rejected) rejected; last seq \(engine.appliedSeq)"
      if state != nil {
        text += "; resumed after seq \(resumedFrom), \(commits) commits"
        if replayed > 0 { text += " (\(replayed) logged events applied again at open)" }
      }
      let elapsed = clock.now - runStarted
      text += "; outputs in \(out) (\(String(format: "%.3f", elapsed.seconds)) s from reference to outputs)"
      note(text)
    }
    // The process ends here instead of returning: the state (millions of rows, lots and
    // identifiers) and the reference data are not freed an allocation at a time on the
    // way out (~0.1 s of the 1M-account day, perf). The store is closed first (its
    // files complete, its background threads stopped); `exit` flushes standard output.
    durableStore?.close()
    Foundation.exit(0)
  }
}

extension RunCommand {
  /// One line, `key=value` fields, read back by `tally bench`.
  /// Commits (log entries) and snapshots are counted apart: a snapshot writes the rows of
  /// millions of events, a commit the lines of `--commit-events`.
  static func commitStatsLine(_ nanos: [Int64], snapshots: [Int64] = []) -> String {
    let ms = nanos.map { Double($0) / 1e6 }
    let snapshotMs = snapshots.map { Double($0) / 1e6 }
    return "tally run: commit stats commits=\(ms.count) p50_ms=\(fmt(nearestRankPercentile(ms, 50), 3)) "
      + "p99_ms=\(fmt(nearestRankPercentile(ms, 99), 3)) max_ms=\(fmt(ms.max() ?? 0, 3)) "
      + "snapshots=\(snapshotMs.count) snapshot_max_ms=\(fmt(snapshotMs.max() ?? 0, 3))"
  }
}

extension Duration {
  var seconds: Double { Double(components.seconds) + Double(components.attoseconds) / 1e18 }
}

/// The reference files' stamps changed between the start of a run and its kernel image:
/// the image is not written.
struct ReferenceFilesChanged: Error {}
