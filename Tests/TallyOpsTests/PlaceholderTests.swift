import XCTest

@testable import TallyOps
