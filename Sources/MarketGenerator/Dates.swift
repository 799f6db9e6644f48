// Calendar arithmetic on YYYYMMDD integers, in whole days (no Foundation dates, no time zones).

enum CivilDate {
  /// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's algorithm).
  static func days(year: Int, month: Int, day: Int) -> Int {
    let y = month <= 2 ? year - 1 : year
    let era = (y >= 0 ? y : y - 399) / 400
    let yoe = y - era * 400
    let mp = (month + 9) % 12
    let doy = (153 * mp + 2) / 5 + day - 1
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy
    return era * 146_097 + doe - 719_468
  }

  /// The date of a day number, as (year, month, day).
  static func civil(_ z0: Int) -> (year: Int, month: Int, day: Int) {
    let z = z0 + 719_468
    let era = (z >= 0 ? z : z - 146_096) / 146_097
    let doe = z - era * 146_097
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100)
    let mp = (5 * doy + 2) / 153
    let d = doy - (153 * mp + 2) / 5 + 1
    let m = mp < 10 ? mp + 3 : mp - 9
    return (yoe + era * 400 + (m <= 2 ? 1 : 0), m, d)
  }

  static func isLeap(_ y: Int) -> Bool { (y % 4 == 0 && y % 100 != 0) || y % 400 == 0 }

  static func daysInMonth(_ y: Int, _ m: Int) -> Int {
    switch m {
    case 2: return isLeap(y) ? 29 : 28
    case 4, 6, 9, 11: return 30
    default: return 31
    }
  }

  /// The day number of a YYYYMMDD value, or nil when it is not a real date.
  static func dayNumber(_ yyyymmdd: Int32) -> Int? {
    let v = Int(yyyymmdd)
    guard v >= 1000_01_01, v <= 9999_12_31 else { return nil }
    let y = v / 10_000
    let m = v / 100 % 100
    let d = v % 100
    guard m >= 1, m <= 12, d >= 1, d <= daysInMonth(y, m) else { return nil }
    return days(year: y, month: m, day: d)
  }

  static func yyyymmdd(_ dayNumber: Int) -> Int32 {
    let c = civil(dayNumber)
    return Int32(c.year * 10_000 + c.month * 100 + c.day)
  }

  /// 0 = Sunday ... 6 = Saturday (1970-01-01 was a Thursday).
  static func weekday(_ dayNumber: Int) -> Int { ((dayNumber % 7) + 11) % 7 }

  static func isWeekend(_ dayNumber: Int) -> Bool {
    let w = weekday(dayNumber)
    return w == 0 || w == 6
  }

  /// Fixed-date public holidays of the Shanghai exchange that fall on the same
  /// Gregorian day every year (New Year, Labour Day week, National Day week).
  /// The lunar holidays (Spring Festival, Qingming, Dragon Boat, Mid-Autumn) move
  /// and are not modelled.
  static func isFixedHoliday(_ dayNumber: Int) -> Bool {
    let c = civil(dayNumber)
    switch (c.month, c.day) {
    case (1, 1): return true
    case (5, 1...5): return true
    case (10, 1...7): return true
    default: return false
    }
  }
}
