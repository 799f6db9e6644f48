// The one version string: `tally --version`, the nodes' `tally_build_info` metric
// and their first log line. Bump it with each release.

public enum TallyVersion {
  public static let string = "0.12.0"
}
