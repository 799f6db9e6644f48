// SPEC §5 output files rendered to bytes: header, LF line ends, amounts with
// exactly two fraction digits.
import TallyCore

public enum ReportWriter {
  public static let fileNames = [
    "clearing.csv", "settlement.csv", "balances.csv", "holdings.csv", "entitlements.csv", "tax.csv",
    "rejections.csv",
  ]

  /// Fen as `-1234.50`, `0.07`, `0.00`.
  public static func money(_ fen: Int64) -> String { money(Int128(fen)) }

  public static func money(_ fen: Int128) -> String {
    let magnitude = fen.magnitude
    let yuan = magnitude / 100
    let cents = magnitude % 100
    return (fen < 0 ? "-" : "") + String(yuan) + "." + (cents < 10 ? "0" : "") + String(cents)
  }

  static func date(_ d: Int32) -> String { d == 0 ? "" : dateText(d) }

  /// File name → bytes, for the seven files.
  public static func render(_ r: Report) -> [(name: String, bytes: [UInt8])] {
    var files: [(String, [UInt8])] = []
    func file(_ name: String, _ header: String, _ lines: [String]) {
      var bytes: [UInt8] = Array(header.utf8)
      bytes.append(10)
      for line in lines {
        bytes.append(contentsOf: line.utf8)
        bytes.append(10)
      }
      files.append((name, bytes))
    }
    file(
      "clearing.csv",
      "trade_date,settle_date,participant,security,buy_quantity,sell_quantity,buy_amount,sell_amount,handling_fee,regulatory_fee,transfer_fee,stamp_duty",
      r.clearing.map {
        [
          date($0.tradeDate), date($0.settleDate), $0.participant, $0.security, String($0.buyQuantity),
          String($0.sellQuantity), money($0.buyAmount), money($0.sellAmount), money($0.fees.handling),
          money($0.fees.regulatory), money($0.fees.transfer), money($0.fees.stamp),
        ].joined(separator: ",")
      })
    file(
      "settlement.csv", "trade_date,settle_date,participant,net_amount,status,settled_on",
      r.settlement.map {
        [
          date($0.tradeDate), date($0.settleDate), $0.participant, money($0.netFen), $0.status.word,
          date($0.settledOn),
        ].joined(separator: ",")
      })
    file("balances.csv", "participant,balance", r.balances.map { $0.participant + "," + money($0.balanceFen) })
    file(
      "holdings.csv", "account,security,quantity,available,withheld",
      r.holdings.map {
        [$0.account, $0.security, String($0.quantity), String($0.available), String($0.withheld)]
          .joined(separator: ",")
      })
    file(
      "entitlements.csv", "security,record_date,pay_date,account,kind,value",
      r.entitlements.map {
        [
          $0.security, date($0.recordDate), date($0.payDate), $0.account, $0.kind.word,
          $0.kind == .cash ? money($0.value) : String($0.value),
        ].joined(separator: ",")
      })
    file(
      "tax.csv", "trade_date,trade_id,account,security,quantity,tax",
      r.tax.map {
        [date($0.tradeDate), $0.tradeId, $0.account, $0.security, String($0.quantity), money($0.taxFen)]
          .joined(separator: ",")
      })
    file(
      "rejections.csv", "seq,record,ref,reason",
      r.rejections.map { [String($0.seq), $0.record, $0.ref, $0.reason.code].joined(separator: ",") })
    return files
  }
}
