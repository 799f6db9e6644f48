// Faults planted on purpose in a kernel, for N-version tests and chaos scenarios
// only (kernel names `v1-faulty`, `v1-faulty-transfer`, `v1-faulty-settlement`,
// `v1-faulty-action`, and the same for `v2`; KernelName in BusinessKernel.swift).
// Each one changes a business result in a way the self-check does not catch, so
// only voting on effects can find it.

public enum PlantedFault: String, Sendable, CaseIterable {
  /// The handling fee is truncated instead of rounded half-up (clearing.csv, settlement).
  case feeRounding = "fee"
  /// Bought STOCK and FUND shares are available at once (T+0) instead of at the next
  /// OPEN (holdings.csv `available`).
  case transfer
  /// A defaulting payer's bought shares are not withheld (SPEC §4.3 step 3;
  /// holdings.csv `available` and `withheld`).
  case settlement
  /// A bonus allocation rounds the largest remainder the wrong way: ties go to the
  /// account with the greatest id instead of the smallest (SPEC §4.4; holdings.csv,
  /// entitlements.csv).
  case corporateAction = "action"
}
