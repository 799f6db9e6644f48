// MarketGenerator: a synthetic but realistic Shanghai A-share market (SPEC §1-§3)
// for demos, tests and benchmarks. Deterministic: the same options give the same
// bytes in any process; no clock, no system random, no Dictionary order.

public enum MarketGenerator {
  /// Writes <directory>/reference/{calendar,securities,participants,units,accounts,holdings}.csv
  /// and <directory>/events.txt. Creates directories as needed. Throws
  /// `MarketGeneratorError.invalidOption` for bad options and `.io` (naming the path)
  /// on I/O failure. `progress` is called once per generated day with a human line.
  public static func generate(
    _ options: MarketOptions, into directory: String, progress: (@Sendable (String) -> Void)? = nil
  ) throws -> MarketSummary {
    try options.validate()
    let referenceDirectory = directory + "/reference"
    try makeDirectories(referenceDirectory)
    var run = Run(options: options)
    try run.writeReference(into: referenceDirectory)
    progress?(
      "reference: \(run.summary.calendar.count) calendar days, \(run.summary.securities) securities, "
        + "\(options.participants) participants, \(options.accounts) accounts, \(run.summary.holdingLots) lots"
    )
    try run.writeEvents(to: directory + "/events.txt", progress: progress)
    return run.summary
  }
}
