// V1's image of its whole state (KernelAPI's KernelImage.swift): what a resume loads
// instead of parsing the reference folder and applying the logged events again.
//
// What is written: the reference values V1 keeps (calendar, fee rows), the globals,
// every table with its change tracking (a loaded kernel reports the same rows changed
// as the one written: the next snapshot must hold them), the lot pool slot for slot
// (free list included, so that later lots take the same slots) and the clearings of
// restored trade rows. The large tables (positions, the lot pool's nodes, trades, lot
// slices) are packed as varints (ImagePacking.swift: 384 → ~150 MB on the 1M-account
// day, and the image's bytes are what a run pays to write it), and so are the clearing
// rows (once copied whole, with padding that carried stray bytes). Accounts are written
// field by field and the small tables as their canonical rows: no record is copied with
// its padding, so the same state always writes the same image. The derived indexes are
// not written: they are rebuilt from the tables, by the same `rebuildIndexes` a restart
// from stored rows uses, so an image adds no second way of building them.

import KernelAPI

extension V1Kernel {
  static let imageMagic: StaticString = "tally-v1-image/3"

  /// The plain types copied whole, with their layout in this build.
  public static var imageLayout: String {
    func entry<T>(_ name: String, _: T.Type) -> (name: String, size: Int, stride: Int, alignment: Int) {
      (name, MemoryLayout<T>.size, MemoryLayout<T>.stride, MemoryLayout<T>.alignment)
    }
    return imageLayoutSignature([
      entry("ClearingRecord", ClearingRecord.self), entry("TradeClearing", TradeClearing.self),
      entry("UInt64", UInt64.self), entry("Int32", Int32.self),
    ])
  }

  public func writeImage(to w: inout ImageWriter) -> Bool {
    w.tag(Self.imageMagic)
    w.array(calendar)
    w.i64(Int64(feeRows.count))
    for f in feeRows {
      w.u8(f.kind.rawValue)
      w.u8(f.fee.rawValue)
      w.u8(f.side.rawValue)
      w.string(f.rateText)
      w.i32(f.effectiveDate)
    }
    w.tag("globals")
    var row = ByteWriter(capacity: 256)
    globals.encode(into: &row)
    w.byteString(row.bytes)
    w.bool(globalsDirty)

    func canonical<R: CanonicalRow>(_ name: StaticString, _ table: Table<R>, _ w: inout ImageWriter) {
      w.tag(name)
      w.i64(Int64(table.count))
      var row = ByteWriter(capacity: 256)
      for r in table.rows {
        row.reset()
        r.encode(into: &row)
        w.byteString(row.bytes)
      }
      table.writeTracking(to: &w)
    }
    canonical("participants", participants, &w)
    canonical("units", units, &w)
    canonical("securities", securities, &w)
    canonical("settlement", settlementRows, &w)
    canonical("actions", actions, &w)
    canonical("entitlements", entitlements, &w)
    canonical("rejections", rejections, &w)
    canonical("days", days, &w)

    w.tag("accounts")
    w.i64(Int64(accounts.count))
    for a in accounts.rows { w.ident(a.id) }
    w.array(accounts.rows.map { $0.kind.rawValue })
    accounts.writeTracking(to: &w)

    w.tag("positions")
    writePackedPositions(&w)
    positions.writeTracking(to: &w)
    w.tag("clearing")
    writePackedClearing(&w)
    clearingRows.writeTracking(to: &w)
    w.tag("slices")
    writePackedSlices(&w)
    slices.writeTracking(to: &w)

    w.tag("trades")
    writePackedTrades(&w)
    trades.writeTracking(to: &w)
    w.array(restoredTradeClearing)

    w.tag("lots")
    lotPool.writeImage(to: &w)
    w.tag("end")
    return true
  }

  public static func loadImage(from r: inout ImageReader, plantedFault: PlantedFault?) throws(DecodeError)
    -> V1Kernel?
  {
    try r.expect(Self.imageMagic)
    let calendar = try r.array(of: Int32.self, maxCount: 1 << 20)
    let feeCount = try r.count(max: 1 << 20)
    var feeRows: [FeeRateRow] = []
    for _ in 0..<feeCount {
      let kind = try r.u8()
      let fee = try r.u8()
      let side = try r.u8()
      let rate = try r.string()
      let date = try r.i32()
      guard let k = SecurityKind(rawValue: kind), let f = FeeKind(rawValue: fee),
        let s = FeeSide(rawValue: side)
      else { throw DecodeError(description: "image fee row has an unknown kind, fee or side") }
      feeRows.append(FeeRateRow(kind: k, fee: f, side: s, rateText: rate, effectiveDate: date))
    }
    var k = V1Kernel(
      reference: ReferenceData(
        calendar: calendar, securities: [], participants: [], units: [], accounts: [], holdings: [],
        feeRows: feeRows), plantedFault: plantedFault)
    try r.expect("globals")
    var g = ByteReader(try r.byteString())
    k.globals = try GlobalRecord(from: &g)
    guard g.isAtEnd else { throw DecodeError(description: "image globals have trailing bytes") }
    k.globalsDirty = try r.bool()

    func canonical<R: CanonicalRow>(_ name: StaticString, _ r: inout ImageReader) throws(DecodeError)
      -> Table<R>
    {
      try r.expect(name)
      let n = try r.count(max: Int(Int32.max))
      var rows: [R] = []
      rows.reserveCapacity(n)
      for _ in 0..<n {
        var b = ByteReader(try r.byteString())
        rows.append(try R(from: &b))
        guard b.isAtEnd else { throw DecodeError(description: "image \(name) row has trailing bytes") }
      }
      return try Table(rows: rows, trackingFrom: &r)
    }
    k.participants = try canonical("participants", &r)
    k.units = try canonical("units", &r)
    k.securities = try canonical("securities", &r)
    k.settlementRows = try canonical("settlement", &r)
    k.actions = try canonical("actions", &r)
    k.entitlements = try canonical("entitlements", &r)
    k.rejections = try canonical("rejections", &r)
    k.days = try canonical("days", &r)

    try r.expect("accounts")
    let accountCount = try r.count(max: Int(Int32.max))
    var ids: [Ident] = []
    ids.reserveCapacity(accountCount)
    for _ in 0..<accountCount { ids.append(try r.ident()) }
    let kinds = try r.array(of: UInt8.self, maxCount: accountCount)
    guard kinds.count == accountCount else {
      throw DecodeError(description: "image accounts lack their kinds")
    }
    var accounts: [AccountRecord] = []
    accounts.reserveCapacity(accountCount)
    for i in 0..<accountCount {
      guard let kind = AccountKind(rawValue: kinds[i]) else {
        throw DecodeError(description: "image account \(i) has kind \(kinds[i])")
      }
      accounts.append(AccountRecord(id: ids[i], kind: kind))
    }
    ids = []
    k.accounts = try Table(rows: accounts, trackingFrom: &r)

    try r.expect("positions")
    k.positions = try Table(rows: try readPackedPositions(&r), trackingFrom: &r)
    try r.expect("clearing")
    k.clearingRows = try Table(rows: try readPackedClearing(&r), trackingFrom: &r)
    try r.expect("slices")
    k.slices = try Table(rows: try readPackedSlices(&r), trackingFrom: &r)

    try r.expect("trades")
    var tradeIds = TradeIdBytes()
    let trades = try readPackedTrades(&r, tradeIds: &tradeIds)
    k.tradeIds = tradeIds
    k.trades = try Table(rows: trades, trackingFrom: &r)
    k.restoredTradeClearing = try r.array(of: TradeClearing.self)

    try r.expect("lots")
    k.lotPool = try LotPool(imageFrom: &r)
    try r.expect("end")
    guard r.isAtEnd else { throw DecodeError(description: "image has bytes after its end") }
    try k.checkImageReferences()
    k.rebuildIndexes()
    return k
  }

  /// Every row id a loaded table holds points into its table, so that the rebuilt
  /// indexes and the next event never index out of range (the image's checksum already
  /// caught a damaged file: this catches an image that is whole but wrong).
  private func checkImageReferences() throws(DecodeError) {
    let (accountCount, securityCount) = (Int32(accounts.count), Int32(securities.count))
    let participantCount = Int32(participants.count)
    for (i, p) in positions.rows.enumerated() {
      guard p.account >= 0, p.account < accountCount, p.security >= 0, p.security < securityCount,
        p.firstLot >= LotPool.none, p.lastLot >= LotPool.none, p.firstLot < lotPool.slotCount,
        p.lastLot < lotPool.slotCount
      else { throw DecodeError(description: "image position \(i) points outside its tables") }
    }
    for (i, t) in trades.rows.enumerated() {
      guard t.security >= 0, t.security < securityCount, t.buyAccount >= 0, t.buyAccount < accountCount,
        t.sellAccount >= 0, t.sellAccount < accountCount, t.buyParticipant >= 0,
        t.buyParticipant < participantCount, t.sellParticipant >= 0, t.sellParticipant < participantCount,
        t.sliceStart >= 0, t.sliceCount >= 0, Int(t.sliceStart) + Int(t.sliceCount) <= slices.count
      else { throw DecodeError(description: "image trade \(i) points outside its tables") }
      guard !t.clearingRestored || (t.priceOrClearing >= 0 && t.priceOrClearing < restoredTradeClearing.count)
      else { throw DecodeError(description: "image trade \(i) has no restored clearing") }
    }
    for (i, c) in clearingRows.rows.enumerated() {
      guard c.participant >= 0, c.participant < participantCount, c.security >= 0, c.security < securityCount
      else { throw DecodeError(description: "image clearing row \(i) points outside its tables") }
    }
  }
}
