// Dates are `YYYYMMDD` integers everywhere in the core (they sort like the text),
// converted to day numbers only to count calendar days (SPEC §4.5 holding days).

public enum CalendarDate {
  /// True for a real Gregorian date written as YYYYMMDD.
  @inlinable public static func isValid(_ date: Int32) -> Bool {
    let year = date / 10000
    let month = (date / 100) % 100
    let day = date % 100
    guard year >= 1, month >= 1, month <= 12, day >= 1 else { return false }
    return day <= daysInMonth(year: year, month: month)
  }

  @inlinable public static func daysInMonth(year: Int32, month: Int32) -> Int32 {
    switch month {
    case 1, 3, 5, 7, 8, 10, 12: return 31
    case 4, 6, 9, 11: return 30
    default:
      let leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0
      return leap ? 29 : 28
    }
  }

  /// Days since 1970-01-01 (proleptic Gregorian), for a valid date.
  public static func dayNumber(_ date: Int32) -> Int64 {
    // Howard Hinnant's days_from_civil.
    var y = Int64(date / 10000)
    let m = Int64((date / 100) % 100)
    let d = Int64(date % 100)
    if m <= 2 { y -= 1 }
    let era = (y >= 0 ? y : y - 399) / 400
    let yoe = y - era * 400
    let mp = (m + 9) % 12
    let doy = (153 * mp + 2) / 5 + d - 1
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy
    return era * 146097 + doe - 719468
  }

  /// Calendar days from `earlier` to `later` (negative if `later` is before).
  public static func daysBetween(_ earlier: Int32, _ later: Int32) -> Int64 {
    dayNumber(later) - dayNumber(earlier)
  }
}
